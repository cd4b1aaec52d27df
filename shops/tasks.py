"""Celery tasks of the shops app: thin, idempotent, each calls one service.

The outbox and delivery tasks take a row id only: the row names its shop, and
the service scopes itself to it (see shops.services.events).
"""

from celery import shared_task
from django.conf import settings

from shops.services import events

RELAY_MAX_BATCHES = 20


@shared_task
def process_outbox_event(event_id: int) -> bool:
    return events.process_outbox_event(event_id=event_id)


# A hard limit below WEBHOOK_SENDING_STALE_SECONDS: a send that could outlive
# its claim might be sent twice.
@shared_task(soft_time_limit=240, time_limit=300)
def send_webhook_delivery(delivery_id: int) -> str | None:
    return events.send_webhook_delivery(delivery_id=delivery_id)


@shared_task
def relay_outbox() -> int:
    """Hand pending outbox events to the queue, batch after batch while full."""
    events.outbox.relay_started()
    total = 0
    for _ in range(RELAY_MAX_BATCHES):
        relayed = events.relay_outbox()
        total += relayed
        if relayed < events.outbox.RELAY_BATCH_SIZE:
            break
    return total


@shared_task
def retry_due_webhook_deliveries() -> int:
    return events.enqueue_due_deliveries()


@shared_task
def purge_idempotency_records() -> int:
    from datetime import timedelta

    from shops.api.idempotency import purge_expired_records

    return purge_expired_records(
        older_than=timedelta(days=settings.IDEMPOTENCY_KEEP_DAYS)
    )
