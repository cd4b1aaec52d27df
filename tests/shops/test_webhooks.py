"""Webhook endpoints and deliveries: signed, retried with back-off, sent once,
and only ever to the event's own shop."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from shops import webhook_signing
from shops.models import OutboxEvent, WebhookAttempt, WebhookDelivery
from shops.services import events
from shops.services.events import (
    enqueue_due_deliveries,
    register_webhook_endpoint,
    retry_delay,
    send_test_event,
    send_webhook_delivery,
    update_webhook_endpoint,
)
from tests.factories import WebhookEndpointFactory
from tests.shops.webhook_receiver import WebhookReceiver, tasks_in_process


@pytest.fixture
def receiver():
    with WebhookReceiver() as r, tasks_in_process():
        yield r


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run a change in a transaction and then its after-commit work, as live."""

    def run(change):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return change()

    return run


def delivery_of(event):
    return WebhookDelivery.objects.unscoped().get(event=event)


def make_due(delivery):
    WebhookDelivery.objects.unscoped().filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


# --- Signing ---------------------------------------------------------------


def test_a_delivered_event_is_signed_json_with_its_headers(shop, receiver, commit):
    endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)

    event = commit(lambda: send_test_event(endpoint=endpoint))

    headers, body = receiver.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["Regulars-Event-Id"] == str(event.pk)
    assert headers["Regulars-Event-Type"] == "webhook.test"
    assert webhook_signing.verify(endpoint.secret, body, headers["Regulars-Signature"])
    document = json.loads(body)
    assert document["id"] == event.pk
    assert document["type"] == "webhook.test"
    assert document["shop"] == shop.slug
    assert document["data"]["endpoint_id"] == endpoint.pk
    assert document["created_at"]


def test_a_tampered_body_or_another_secret_fails_verification():
    body = b'{"id":1,"data":{"points":10}}'
    header = webhook_signing.sign("whsec_right", body)

    assert webhook_signing.verify("whsec_right", body, header)
    assert not webhook_signing.verify("whsec_right", body.replace(b"10", b"99"), header)
    assert not webhook_signing.verify("whsec_wrong", body, header)
    assert not webhook_signing.verify("whsec_right", body, "garbage")


def test_an_old_timestamp_fails_verification_as_a_replay():
    body = b"{}"
    header = webhook_signing.sign("s", body, timestamp=int(time.time()) - 3600)

    assert not webhook_signing.verify("s", body, header)
    assert webhook_signing.verify("s", body, header, tolerance=7200)


# --- Retries ---------------------------------------------------------------


def test_the_retry_wait_doubles_from_30_seconds_and_is_capped():
    waits = [retry_delay(n).total_seconds() for n in range(1, 12)]

    assert waits[:4] == [30, 60, 120, 240]
    assert max(waits) == 4 * 60 * 60


def test_a_500_then_a_200_is_retried_later_then_delivered(shop, commit):
    with WebhookReceiver(statuses=[500]) as receiver, tasks_in_process():
        endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)

        event = commit(lambda: send_test_event(endpoint=endpoint))
        delivery = delivery_of(event)
        assert delivery.status == "retrying"
        assert delivery.next_attempt_at > timezone.now()
        assert enqueue_due_deliveries() == 0  # not due yet

        make_due(delivery)
        assert enqueue_due_deliveries() == 1

    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert delivery.attempt_count == 2
    attempts = WebhookAttempt.objects.unscoped().filter(delivery=delivery)
    assert sorted(a.status_code for a in attempts) == [200, 500]
    assert all(a.duration_ms >= 0 for a in attempts)


def test_a_delivery_fails_for_good_after_the_last_attempt(shop, commit, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    with WebhookReceiver(default=503) as receiver, tasks_in_process():
        endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)
        event = commit(lambda: send_test_event(endpoint=endpoint))
        for _ in range(2):
            make_due(delivery_of(event))
            enqueue_due_deliveries()

    delivery = delivery_of(event)
    assert delivery.status == "failed"
    assert delivery.attempt_count == 3
    assert delivery.next_attempt_at is None
    assert len(receiver.requests) == 3
    assert enqueue_due_deliveries() == 0


def test_an_unreachable_endpoint_records_the_error_and_retries(shop, commit):
    endpoint = WebhookEndpointFactory(shop=shop, url="http://127.0.0.1:1/hook")

    with tasks_in_process():
        event = commit(lambda: send_test_event(endpoint=endpoint))

    delivery = delivery_of(event)
    attempt = WebhookAttempt.objects.unscoped().get(delivery=delivery)
    assert delivery.status == "retrying"
    assert attempt.status_code is None
    assert "ConnectionError" in attempt.error


def test_retry_now_sends_a_failed_delivery_again(shop, commit, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    with WebhookReceiver(statuses=[500]) as receiver, tasks_in_process():
        endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)
        event = commit(lambda: send_test_event(endpoint=endpoint))
        assert delivery_of(event).status == "failed"

        retried = commit(
            lambda: events.retry_webhook_deliveries(
                shop=shop, deliveries=[delivery_of(event)]
            )
        )

    assert retried == 1
    assert delivery_of(event).status == "delivered"


def test_a_delivered_delivery_is_not_sent_again(shop, receiver, commit):
    endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)
    event = commit(lambda: send_test_event(endpoint=endpoint))

    assert send_webhook_delivery(delivery_id=delivery_of(event).pk) is None
    assert len(receiver.requests) == 1


def test_a_delivery_stuck_sending_after_its_worker_died_is_sent_again(shop, receiver):
    endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)
    event = OutboxEvent.objects.unscoped().create(shop=shop, topic="webhook.test")
    delivery = WebhookDelivery.objects.unscoped().create(
        shop=shop,
        event=event,
        endpoint=endpoint,
        status="sending",
        claimed_at=timezone.now() - timedelta(hours=1),
    )

    assert enqueue_due_deliveries() == 1

    delivery.refresh_from_db()
    assert delivery.status == "delivered"


# --- Who gets what ----------------------------------------------------------


def test_an_event_of_one_shop_never_reaches_another_shops_endpoint(
    shop, other_shop, commit
):
    with (
        WebhookReceiver() as ours,
        WebhookReceiver() as theirs,
        tasks_in_process(),
    ):
        mine = WebhookEndpointFactory(shop=shop, url=ours.url, events=["*"])
        WebhookEndpointFactory(shop=other_shop, url=theirs.url, events=["*"])

        commit(lambda: send_test_event(endpoint=mine))
        commit(
            lambda: events.emit_event(
                shop=shop, topic="webhook.test", payload={"endpoint_id": mine.pk}
            )
        )

    assert len(ours.requests) == 2
    assert theirs.requests == []
    assert not WebhookDelivery.objects.unscoped().filter(shop=other_shop).exists()


def test_endpoints_get_only_the_events_they_chose(shop, receiver, commit, monkeypatch):
    monkeypatch.setitem(events.EVENT_TYPES, "member.created", "A member signed up")
    monkeypatch.setitem(events.EVENT_TYPES, "points.earned", "Points were earned")
    wants_members = WebhookEndpointFactory(
        shop=shop, url=receiver.url, events=["member.created"]
    )
    WebhookEndpointFactory(shop=shop, url=receiver.url, events=["points.earned"])
    WebhookEndpointFactory(shop=shop, url=receiver.url, events=["*"], is_active=False)

    event = commit(
        lambda: events.emit_event(shop=shop, topic="member.created", payload={"id": 1})
    )

    assert [d.endpoint for d in WebhookDelivery.objects.unscoped()] == [wants_members]
    assert delivery_of(event).status == "delivered"


def test_a_test_event_goes_only_to_the_endpoint_it_names(shop, receiver, commit):
    first = WebhookEndpointFactory(shop=shop, url=receiver.url)
    WebhookEndpointFactory(shop=shop, url=receiver.url)

    commit(lambda: send_test_event(endpoint=first))

    assert [d.endpoint for d in WebhookDelivery.objects.unscoped()] == [first]


# --- Registering endpoints --------------------------------------------------


def test_an_endpoint_is_registered_with_its_own_secret(shop):
    endpoint = register_webhook_endpoint(
        shop=shop, url=" https://example.com/hooks ", events=["webhook.test", "*"]
    )

    assert endpoint.url == "https://example.com/hooks"
    assert endpoint.events == ["*"]
    assert endpoint.secret.startswith("whsec_")


@pytest.mark.parametrize(
    ("url", "events_", "field"),
    [
        ("ftp://example.com/x", ["*"], "url"),
        ("", ["*"], "url"),
        ("https://example.com/x", [], "events"),
        ("https://example.com/x", ["no.such.event"], "events"),
    ],
)
def test_bad_endpoint_input_is_refused_with_a_field_message(shop, url, events_, field):
    with pytest.raises(ValidationError) as caught:
        register_webhook_endpoint(shop=shop, url=url, events=events_)

    assert field in caught.value.message_dict


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ],
)
def test_private_addresses_are_refused_in_production(shop, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False

    with pytest.raises(ValidationError) as caught:
        register_webhook_endpoint(shop=shop, url=url, events=["*"])

    assert "url" in caught.value.message_dict


def test_an_update_changes_only_what_is_given(shop):
    endpoint = register_webhook_endpoint(
        shop=shop, url="https://example.com/a", events=["*"], description="POS"
    )

    update_webhook_endpoint(endpoint=endpoint, url="https://example.com/b")

    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description) == ("https://example.com/b", "POS")
    with pytest.raises(ValidationError):
        update_webhook_endpoint(endpoint=endpoint, events=[])


def test_a_deactivated_endpoint_gets_no_new_events(shop, receiver, commit):
    endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)
    events.deactivate_webhook_endpoint(endpoint=endpoint)

    commit(lambda: events.emit_event(shop=shop, topic="webhook.test", payload={}))

    assert receiver.requests == []


# --- Concurrency (PostgreSQL) -----------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_one_delivery_send_it_once(shop):
    with WebhookReceiver(delay=0.3) as receiver:
        endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)
        event = OutboxEvent.objects.unscoped().create(shop=shop, topic="webhook.test")
        delivery = WebhookDelivery.objects.unscoped().create(
            shop=shop, event=event, endpoint=endpoint, next_attempt_at=timezone.now()
        )
        start = threading.Barrier(2)
        results = []

        def worker():
            start.wait()
            try:
                results.append(send_webhook_delivery(delivery_id=delivery.pk))
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert sorted(map(str, results)) == ["None", "delivered"]
    assert len(receiver.requests) == 1
    assert WebhookAttempt.objects.unscoped().filter(delivery=delivery).count() == 1
