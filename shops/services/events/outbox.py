"""The transactional outbox: write the event with the change, hand it over later.

`on_commit(delay)` alone would lose the event when the broker is away or the
process dies right after the commit; here the row is the record of the work,
the post-commit kick is only the fast path, and the relay is the guarantee.

The fast path asks for ONE relay run, not one message per event: a busy till
posting hundreds of purchases a second would otherwise pay a broker message
and a second commit (marking the row relayed) per request. `request_relay`
sets a short-lived flag in the cache with an atomic add; only the request that
sets it queues a relay task, and the relay deletes the flag BEFORE it reads
the pending rows. So an event committed before the relay reads is seen by it,
and one committed after finds the flag gone and queues the next run.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from shops import rawsql
from shops.models import OutboxEvent, Shop
from shops.tenancy import shop_scope

from .registry import EVENT_TYPES, consumers_for

logger = logging.getLogger(__name__)

RELAY_BATCH_SIZE = 500
# A relayed event still unprocessed after this long was lost on the way (a
# broker restarted without persistence, a consumer that raised): hand it over
# again. The consumer's `processed_at` guard makes a duplicate harmless.
REPUBLISH_AFTER = timedelta(minutes=10)
# Set while a relay run is queued and not yet started (see the module
# docstring). Expires on its own in case that run is lost.
RELAY_REQUESTED_KEY = "outbox:relay-requested"
RELAY_REQUESTED_SECONDS = 2


def emit_event(*, shop: Shop, topic: str, payload: dict) -> OutboxEvent:
    """Record `topic` for `shop` in the caller's transaction.

    Call it inside the service's `transaction.atomic()`: a rollback takes the
    event with it. After the commit the event is handed to Celery (in-process
    when no broker is configured); if that fails the relay picks it up.
    """
    if topic not in EVENT_TYPES:
        raise ValueError(
            f"Unknown event type {topic!r}: register it with register_event_type()."
        )
    event = OutboxEvent(shop=shop, topic=topic, payload=payload)
    rawsql.insert(event)  # every event-emitting request: not the ORM's INSERT
    relay_after_commit()
    return event


def emit_events(*, shop: Shop, topic: str, payloads: list[dict]) -> int:
    """Record one `topic` event per payload in the caller's transaction, in bulk.

    For bulk writes (imports): one INSERT, and after the commit one relay run
    instead of one hand-over per event, so ten thousand events cost one
    message. Returns how many events were recorded.
    """
    if topic not in EVENT_TYPES:
        raise ValueError(
            f"Unknown event type {topic!r}: register it with register_event_type()."
        )
    if not payloads:
        return 0
    OutboxEvent.objects.unscoped().bulk_create(
        [OutboxEvent(shop=shop, topic=topic, payload=p) for p in payloads],
        batch_size=1000,
    )
    transaction.on_commit(kick_relay, robust=True)
    return len(payloads)


def relay_after_commit() -> None:
    """`request_relay` after the caller's transaction commits: once for the
    transaction, however many events it wrote (a purchase writes two or
    three), so one cache round trip, not one per event."""
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        open_now = set(connection.savepoint_ids)
        for savepoints, callback, _robust in connection.run_on_commit:
            # Registered where it outlives every savepoint open now.
            if callback is request_relay and savepoints <= open_now:
                return
    transaction.on_commit(request_relay, robust=True)


def request_relay() -> bool:
    """After a commit that wrote events: make sure a relay run starts after it,
    queueing one only if none is queued and not yet started. Never raises."""
    try:
        if not cache.add(RELAY_REQUESTED_KEY, 1, RELAY_REQUESTED_SECONDS):
            return True  # a queued run has not read the outbox yet: it will
    except Exception as exc:  # the cache is away: ask anyway
        logger.warning("Outbox relay flag not set: %r", exc)
    if kick_relay():
        return True
    relay_started()  # nothing is queued: let the next commit try again
    return False


def relay_started() -> None:
    """Called by a relay run before it reads the outbox. Never raises."""
    try:
        cache.delete(RELAY_REQUESTED_KEY)
    except Exception as exc:
        logger.warning("Outbox relay flag not cleared: %r", exc)


def kick_relay() -> bool:
    """Ask for a relay run now. Never raises: beat runs the relay anyway."""
    from shops.tasks import relay_outbox as relay_task

    try:
        relay_task.delay()
    except Exception as exc:
        logger.warning("Outbox relay not started, beat will run it: %r", exc)
        return False
    return True


def _publish(event_id: int) -> None:
    from shops.tasks import process_outbox_event

    process_outbox_event.delay(event_id)


def relay_outbox(*, batch_size: int = RELAY_BATCH_SIZE) -> int:
    """Hand up to `batch_size` pending events to Celery, oldest first.

    Stops at the first broker error and leaves the rest pending. Rows locked by
    another relay are skipped, so two relays never publish the same event.
    Returns how many events were handed over.
    """
    now = timezone.now()
    handed: list[int] = []
    with transaction.atomic():
        # Platform-wide on purpose: one relay serves every shop's outbox in
        # commit order. It reads only ids and publishes them; the consumer
        # scopes itself to each event's own shop.
        pending = list(
            OutboxEvent.objects.unscoped()
            .filter(
                Q(relayed_at=None)
                | Q(processed_at=None, relayed_at__lt=now - REPUBLISH_AFTER)
            )
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:batch_size]
        )
        for event_id in pending:
            try:
                _publish(event_id)
            except Exception as exc:
                logger.warning(
                    "Outbox relay stopped, %s events left pending: %r",
                    len(pending) - len(handed),
                    exc,
                )
                break
            handed.append(event_id)
        if handed:
            OutboxEvent.objects.unscoped().filter(pk__in=handed).update(
                relayed_at=timezone.now()
            )
    return len(handed)


def process_outbox_event(*, event_id: int) -> bool:
    """Run the event's consumers once. Returns False when there was nothing to do.

    The row lock makes a second copy of the task wait, then see `processed_at`
    and stop, so a republished event is not fanned out twice.
    """
    with transaction.atomic():
        # By id from the queue: the row itself names its shop, which then
        # scopes every consumer.
        event = (
            OutboxEvent.objects.unscoped()
            .select_for_update()
            .filter(pk=event_id)
            .first()
        )
        if event is None or event.processed_at is not None:
            return False
        shop = Shop.objects.get(pk=event.shop_id)
        with shop_scope(shop):
            for consumer in consumers_for(event.topic):
                consumer(event)
        event.processed_at = timezone.now()
        event.save(update_fields=["processed_at"])
    return True
