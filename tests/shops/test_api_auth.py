"""Integrator authentication: the API key decides who calls and for which shop."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from shops.models import ApiKey, ApiKeyScope
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)


def test_a_valid_key_reads_its_shop(shop):
    _key, plain = make_api_key(shop=shop, scope=ApiKeyScope.READ)

    response = client_with(f"Api-Key {plain}").get("/api/v1/shop")

    assert response.status_code == 200
    assert response.json()["slug"] == "tea-house"


def test_no_key_is_401_not_authenticated(shop):
    response = client_with(None).get("/api/v1/shop")

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize(
    "header",
    [
        "Api-Key",
        "Api-Key a b",
        "Api-Key not-a-key",
        "Api-Key abc.def\x00",
        "Api-Key AAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
    ],
    ids=["empty", "two-parts", "malformed", "nul-byte", "unknown"],
)
def test_malformed_or_unknown_keys_are_401(shop, header):
    response = client_with(header).get("/api/v1/shop")

    assert_error(response, 401, "authentication_failed")


def test_a_wrong_secret_with_a_real_prefix_is_401(shop):
    key, _plain = make_api_key(shop=shop)
    wrong = f"{key.prefix}.{'x' * 32}"

    response = client_with(f"Api-Key {wrong}").get("/api/v1/shop")

    assert_error(response, 401, "authentication_failed")


def test_a_revoked_key_is_401(shop):
    key, plain = make_api_key(shop=shop)
    ApiKey.unscoped_keyring.filter(pk=key.pk).update(revoked=True)

    response = client_with(f"Api-Key {plain}").get("/api/v1/shop")

    assert_error(response, 401, "authentication_failed")


def test_an_expired_key_is_401(shop):
    key, plain = make_api_key(shop=shop)
    ApiKey.unscoped_keyring.filter(pk=key.pk).update(
        expiry_date=timezone.now() - timedelta(seconds=1)
    )

    response = client_with(f"Api-Key {plain}").get("/api/v1/shop")

    assert_error(response, 401, "authentication_failed")


def test_a_key_of_an_inactive_shop_is_401(shop):
    _key, plain = make_api_key(shop=shop)
    shop.is_active = False
    shop.save()

    response = client_with(f"Api-Key {plain}").get("/api/v1/shop")

    assert_error(response, 401, "authentication_failed")


def test_a_read_key_that_writes_is_403_insufficient_scope(shop):
    _key, plain = make_api_key(shop=shop, scope=ApiKeyScope.READ)

    response = client_with(f"Api-Key {plain}").post(
        "/api/v1/webhook-endpoints",
        {"url": "https://example.com/hook", "events": ["*"]},
        format="json",
    )

    assert_error(response, 403, "insufficient_scope")


def test_a_signed_in_staff_session_without_a_key_is_401(shop, client):
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory()
    MembershipFactory(shop=shop, user=user)
    client.force_login(user)

    response = client.get("/api/v1/shop")

    assert response.status_code == 401


def test_last_used_is_recorded_but_not_written_on_every_request(shop):
    key, plain = make_api_key(shop=shop)
    client = client_with(f"Api-Key {plain}")

    client.get("/api/v1/shop")
    first_use = ApiKey.unscoped_keyring.get(pk=key.pk).last_used_at
    with CaptureQueriesContext(connection) as again:
        client.get("/api/v1/shop")

    assert first_use is not None
    assert ApiKey.unscoped_keyring.get(pk=key.pk).last_used_at == first_use
    assert not [q for q in again.captured_queries if q["sql"].startswith("UPDATE")]


def test_last_used_is_written_again_after_a_minute(shop):
    key, plain = make_api_key(shop=shop)
    long_ago = timezone.now() - timedelta(minutes=5)
    ApiKey.unscoped_keyring.filter(pk=key.pk).update(last_used_at=long_ago)

    client_with(f"Api-Key {plain}").get("/api/v1/shop")

    assert ApiKey.unscoped_keyring.get(pk=key.pk).last_used_at > long_ago
