"""The transactional outbox: events commit with the change and are handed over
once, now or by the relay, whatever the broker does."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from shops.models import OutboxEvent, WebhookDelivery
from shops.services import events
from shops.services.events import emit_event, process_outbox_event, relay_outbox
from shops.tenancy import get_current_shop
from tests.factories import WebhookEndpointFactory
from tests.shops.webhook_receiver import WebhookReceiver, broker_at, tasks_in_process

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def receiver():
    with WebhookReceiver() as r, tasks_in_process():
        yield r


def pending(shop=None):
    rows = OutboxEvent.objects.unscoped().filter(relayed_at=None)
    return rows.filter(shop=shop) if shop else rows


def test_an_event_emitted_in_a_rolled_back_transaction_leaves_no_trace(
    shop, receiver, django_capture_on_commit_callbacks
):
    WebhookEndpointFactory(shop=shop, url=receiver.url)

    def change_that_fails():
        with transaction.atomic():
            emit_event(shop=shop, topic="webhook.test", payload={})
            raise RuntimeError("the change failed")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        change_that_fails()

    assert callbacks == []
    assert not OutboxEvent.objects.unscoped().exists()
    assert not WebhookDelivery.objects.unscoped().exists()
    assert receiver.requests == []


def test_a_committed_event_is_handed_over_and_delivered_once(
    shop, receiver, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        event = events.send_test_event(endpoint=endpoint)

    event.refresh_from_db()
    assert event.relayed_at is not None
    assert event.processed_at is not None
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.unscoped().get(event=event).status == "delivered"


def test_an_unknown_topic_is_refused_at_once(shop):
    with pytest.raises(ValueError, match="register_event_type"):
        emit_event(shop=shop, topic="member.typo", payload={})


def test_with_the_broker_away_the_change_commits_fast_and_the_event_waits(
    shop, django_capture_on_commit_callbacks
):
    started = time.monotonic()
    with broker_at(CLOSED_PORT_BROKER):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            event = emit_event(shop=shop, topic="webhook.test", payload={})
        relayed = relay_outbox()

    # Bounded, not timed: the request must not hang on a missing broker.
    assert time.monotonic() - started < 10
    assert relayed == 0
    assert list(pending()) == [event]


def test_the_relay_stops_at_the_first_broker_error_and_keeps_the_rest(
    shop, monkeypatch
):
    rows = [
        OutboxEvent.objects.unscoped().create(shop=shop, topic="webhook.test")
        for _ in range(3)
    ]
    published = []

    def publish(event_id):
        if len(published) == 1:
            raise OperationalError("connection refused")
        published.append(event_id)

    monkeypatch.setattr(events.outbox, "_publish", publish)

    assert relay_outbox() == 1
    assert published == [rows[0].pk]
    assert list(pending().order_by("id")) == rows[1:]


def test_the_relay_hands_over_again_an_event_lost_after_relaying(shop, monkeypatch):
    lost = OutboxEvent.objects.unscoped().create(
        shop=shop,
        topic="webhook.test",
        relayed_at=timezone.now() - timedelta(hours=1),
    )
    OutboxEvent.objects.unscoped().create(
        shop=shop, topic="webhook.test", relayed_at=timezone.now()
    )
    published = []
    monkeypatch.setattr(events.outbox, "_publish", published.append)

    relay_outbox()

    assert published == [lost.pk]


def test_processing_an_event_twice_fans_it_out_once(shop, receiver):
    WebhookEndpointFactory(shop=shop, url=receiver.url)
    event = OutboxEvent.objects.unscoped().create(shop=shop, topic="webhook.test")
    event.payload = {"endpoint_id": WebhookEndpointFactory(shop=shop).pk}
    event.save()

    assert process_outbox_event(event_id=event.pk) is True
    assert process_outbox_event(event_id=event.pk) is False
    assert WebhookDelivery.objects.unscoped().filter(event=event).count() == 1


def test_a_registered_consumer_runs_once_in_the_events_shop(shop, monkeypatch):
    seen = []
    monkeypatch.setitem(events.EVENT_TYPES, "test.thing", "A thing")
    monkeypatch.setattr(events.registry, "EVENT_CONSUMERS", [])
    events.register_event_consumer(
        "test.thing",
        lambda event: seen.append((event.topic, get_current_shop())),
    )
    event = OutboxEvent.objects.unscoped().create(shop=shop, topic="test.thing")

    process_outbox_event(event_id=event.pk)
    process_outbox_event(event_id=event.pk)

    assert seen == [("test.thing", shop)]


def test_the_command_relays_pending_events(shop, monkeypatch, capsys):
    OutboxEvent.objects.unscoped().create(shop=shop, topic="webhook.test")
    published = []
    monkeypatch.setattr(events.outbox, "_publish", published.append)

    call_command("relay_outbox", skip_checks=True)

    assert len(published) == 1
    assert "Relayed 1 events." in capsys.readouterr().out
    assert not pending().exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_never_publish_an_event_twice(shop, monkeypatch):
    OutboxEvent.objects.unscoped().bulk_create(
        [OutboxEvent(shop=shop, topic="webhook.test") for _ in range(40)]
    )
    published = []
    lock = threading.Lock()

    def slow_publish(event_id):
        time.sleep(0.005)
        with lock:
            published.append(event_id)

    monkeypatch.setattr(events.outbox, "_publish", slow_publish)
    start = threading.Barrier(2)
    counts = []

    def relay():
        start.wait()
        try:
            counts.append(relay_outbox(batch_size=25))
            counts.append(relay_outbox(batch_size=25))
        finally:
            connection.close()

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(published) == sorted(set(published))
    assert len(published) == sum(counts) == 40
    assert not pending().exists()


def test_a_burst_of_commits_queues_one_relay_run_until_it_starts(
    shop, monkeypatch, django_capture_on_commit_callbacks
):
    kicked = []
    monkeypatch.setattr(events.outbox, "kick_relay", lambda: kicked.append(1) or True)

    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            emit_event(shop=shop, topic="webhook.test", payload={})
    assert kicked == [1]  # one relay run will read all five

    events.outbox.relay_started()  # the run begins reading: a later commit needs
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        emit_event(shop=shop, topic="webhook.test", payload={})
    assert kicked == [1, 1]


def test_when_the_relay_cannot_be_queued_the_next_commit_tries_again(
    shop, monkeypatch, django_capture_on_commit_callbacks
):
    kicked = []
    monkeypatch.setattr(events.outbox, "kick_relay", lambda: kicked.append(1) and False)

    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            emit_event(shop=shop, topic="webhook.test", payload={})

    assert kicked == [1, 1]
    assert pending(shop).count() == 2  # beat's relay hands them over later


def test_a_transaction_with_several_events_asks_for_one_relay_run(
    shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for _ in range(3):
            emit_event(shop=shop, topic="webhook.test", payload={})

    assert callbacks.count(events.outbox.request_relay) == 1
    assert pending(shop).count() == 3


def test_the_relay_is_still_asked_for_when_the_savepoint_that_asked_rolls_back(
    shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        with transaction.atomic():
            emit_event(shop=shop, topic="webhook.test", payload={"gone": True})
            transaction.set_rollback(True)
        emit_event(shop=shop, topic="webhook.test", payload={"kept": True})

    kept = [c for c in callbacks if c is events.outbox.request_relay]
    # Django dropped the rolled-back savepoint's callback; the second event
    # asked again.
    assert len(kept) >= 1
    assert [e.payload for e in pending(shop)] == [{"kept": True}]
