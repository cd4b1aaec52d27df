"""Bad input gets a 4xx in the one error shape, never a 500 or an HTML page."""

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from shops.api import throttling
from tests.factories import StoreFactory, make_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(shop) -> APIClient:
    _key, plain = make_api_key(shop=shop)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]


def test_malformed_json_is_400_malformed_request(api):
    response = api.post(
        "/api/v1/webhook-endpoints", "{not json", content_type="application/json"
    )

    assert error_of(response, 400)["code"] == "malformed_request"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        ('{"url": NaN}', "application/json"),
        ('{"url": "x"}'.encode("utf-16"), "application/json; charset=nope"),
    ],
    ids=["deep-nesting", "nan", "unknown-charset"],
)
def test_pathological_json_is_400_not_500(api, body, content_type):
    response = api.post("/api/v1/webhook-endpoints", body, content_type=content_type)

    assert error_of(response, 400)["code"] == "malformed_request"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_huge_body_is_413(api):
    body = '{"description": "' + "x" * 5000 + '"}'

    response = api.post(
        "/api/v1/webhook-endpoints", body, content_type="application/json"
    )

    assert error_of(response, 413)["code"] == "request_too_large"


def test_a_non_json_body_is_415(api):
    response = api.post("/api/v1/webhook-endpoints", "url=x", content_type="text/plain")

    assert error_of(response, 415)["code"] == "unsupported_media_type"


def test_wrong_field_types_are_400_with_messages_per_field(api):
    response = api.post(
        "/api/v1/webhook-endpoints",
        {"url": ["not", "a", "string"], "events": "member.created", "extra": 1},
        format="json",
    )

    error = error_of(response, 400)
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"url", "events"}


def test_a_service_refusal_is_400_with_the_field(api):
    response = api.post(
        "/api/v1/webhook-endpoints",
        {"url": "ftp://example.com/hook", "events": ["*"]},
        format="json",
    )

    error = error_of(response, 400)
    assert error["code"] == "invalid"
    assert "url" in error["fields"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nothing-here", "/api/v1/stores/", "/api/v1/stores/abc", "/api/v2/shop"],
)
def test_unknown_api_paths_are_json_404(api, path):
    response = api.get(path)

    assert error_of(response, 404)["code"] == "not_found"


def test_unknown_pages_outside_the_api_stay_html(client, db):
    response = client.get("/no-such-page-anywhere")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_a_method_the_endpoint_lacks_is_405(api):
    response = api.put("/api/v1/shop", {}, format="json")

    assert error_of(response, 405)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "query",
    ["cursor=garbage", "cursor=cD1hYmM%3D", "cursor=cD0tMQ%3D%3D"],
    ids=["not-base64", "position-not-a-number", "negative-position"],
)
def test_bad_cursors_are_400(api, shop, query):
    StoreFactory(shop=shop)

    response = api.get(f"/api/v1/stores?{query}")

    assert error_of(response, 400)["code"] == "invalid_cursor"


def test_a_huge_id_is_404_not_500(api):
    response = api.get("/api/v1/stores/99999999999999999999999999")

    assert error_of(response, 404)["code"] == "not_found"


def test_too_many_requests_is_429_with_retry_after(api):
    cache.clear()
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "2/min"}
    rest = {**api_settings.user_settings, "DEFAULT_THROTTLE_RATES": rates}
    with override_settings(REST_FRAMEWORK=rest):
        statuses = [api.get("/api/v1/shop").status_code for _ in range(2)]
        response = api.get("/api/v1/shop")

    assert statuses == [200, 200]
    assert error_of(response, 429)["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    cache.clear()


def test_the_throttle_counts_per_key(api, shop):
    cache.clear()
    _other, plain = make_api_key(shop=shop, name="Web shop")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "1/min"}
    rest = {**api_settings.user_settings, "DEFAULT_THROTTLE_RATES": rates}
    with override_settings(REST_FRAMEWORK=rest):
        api.get("/api/v1/shop")
        throttled = api.get("/api/v1/shop")
        fresh = other.get("/api/v1/shop")

    assert throttled.status_code == 429
    assert fresh.status_code == 200
    cache.clear()


def busy_key(shop, rate, monkeypatch):
    """A till's key at `rate` in one fixed minute: (client, counter key, settings)."""
    cache.clear()
    throttling._taken.clear()
    monkeypatch.setattr(throttling.time, "time", lambda: 60 * 29_000_000 + 1.0)
    key, plain = make_api_key(shop=shop, name="Till")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": rate}
    rest = {**api_settings.user_settings, "DEFAULT_THROTTLE_RATES": rates}
    return client, f"throttle:api_key:{key.prefix}:29000000", rest


def test_a_busy_key_counts_its_requests_ten_at_a_time(shop, monkeypatch):
    till, counter, rest = busy_key(shop, "10000/min", monkeypatch)

    with override_settings(REST_FRAMEWORK=rest):
        statuses = {till.get("/api/v1/shop").status_code for _ in range(25)}

    assert statuses == {200}
    # Three round trips to the counter, not 25; the last five are this
    # process's to use in the minute.
    assert cache.get(counter) == 30
    cache.clear()


def test_processes_together_never_admit_more_than_the_rate(shop, monkeypatch):
    till, counter, rest = busy_key(shop, "1000/min", monkeypatch)
    # Other processes took 995 of the minute's 1,000.
    cache.set(counter, 995, timeout=120)

    with override_settings(REST_FRAMEWORK=rest):
        statuses = [till.get("/api/v1/shop").status_code for _ in range(7)]

    assert statuses == [200] * 5 + [429] * 2
    cache.clear()
