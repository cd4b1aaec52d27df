"""Idempotency-Key: a retried write returns the first result and writes once."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from shops.api import webhooks
from shops.api.idempotency import purge_expired_records
from shops.models import IdempotencyRecord, WebhookEndpoint
from tests.factories import make_api_key

URL = "/api/v1/webhook-endpoints"
BODY = {"url": "https://example.com/hook", "events": ["*"]}


def client_for(shop) -> APIClient:
    _key, plain = make_api_key(shop=shop)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


def post(api, body, key="order-1"):
    headers = {} if key is None else {"Idempotency-Key": key}
    return api.post(URL, body, format="json", headers=headers)


def endpoints():
    return WebhookEndpoint.objects.unscoped()


@pytest.mark.django_db
def test_a_replay_returns_the_first_result_and_creates_once(shop):
    api = client_for(shop)

    first = post(api, BODY)
    again = post(api, {"events": ["*"], "url": "https://example.com/hook"})

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert endpoints().count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422(shop):
    api = client_for(shop)
    post(api, BODY)

    response = post(api, {**BODY, "description": "changed"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert endpoints().count() == 1


@pytest.mark.django_db
def test_a_retry_refused_now_gets_the_first_answer(shop, monkeypatch):
    api = client_for(shop)
    first = post(api, BODY)

    def refuse(**kwargs):
        raise ValidationError({"url": "No more endpoints."})

    # Whatever would refuse the request now (a limit reached, stock gone),
    # the retry of a request that went through is answered as it was.
    monkeypatch.setattr(webhooks, "register_webhook_endpoint", refuse)
    again = post(api, BODY)

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert endpoints().count() == 1


@pytest.mark.django_db
def test_a_failed_request_is_not_stored_and_can_be_retried(shop):
    api = client_for(shop)

    refused = post(api, {**BODY, "url": "ftp://example.com"})
    retried = post(api, BODY)

    assert refused.status_code == 400
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert endpoints().count() == 1


@pytest.mark.django_db
def test_keys_are_per_shop(shop, other_shop):
    mine, theirs = client_for(shop), client_for(other_shop)

    post(mine, BODY)
    response = post(theirs, BODY)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert endpoints().count() == 2


@pytest.mark.django_db
def test_without_a_key_every_post_creates(shop):
    api = client_for(shop)

    post(api, BODY, key=None)
    post(api, BODY, key=None)

    assert endpoints().count() == 2
    assert not IdempotencyRecord.objects.unscoped().exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_empty_or_too_long_key_is_400(shop, key):
    response = post(client_for(shop), BODY, key=key)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not endpoints().exists()


@pytest.mark.django_db
def test_purge_deletes_only_old_records_of_every_shop(shop, other_shop):
    post(client_for(shop), BODY, key="old")
    post(client_for(other_shop), BODY, key="old")
    post(client_for(shop), BODY, key="new")
    IdempotencyRecord.objects.unscoped().filter(key="old").update(
        created_at=timezone.now() - timedelta(days=8)
    )

    purged = purge_expired_records(older_than=timedelta(days=7))

    assert purged == 2
    assert list(IdempotencyRecord.objects.unscoped().values_list("key", flat=True)) == [
        "new"
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_with_one_key_create_one_endpoint(shop, monkeypatch):
    # Given a handler slow enough that both requests are in flight together
    original = webhooks.register_webhook_endpoint

    def slow_register(**kwargs):
        endpoint = original(**kwargs)
        time.sleep(0.5)
        return endpoint

    monkeypatch.setattr(webhooks, "register_webhook_endpoint", slow_register)
    _key, plain = make_api_key(shop=shop)
    start = threading.Barrier(2)
    responses = []

    def call():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
        start.wait()
        try:
            responses.append(post(client, BODY, key="concurrent"))
        finally:
            connection.close()

    # When two threads post with the same key at once
    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then one endpoint exists, and both got the same answer
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert endpoints().count() == 1
