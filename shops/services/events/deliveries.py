"""Webhook deliveries: fan out, claim, send signed, retry with back-off."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from shops import webhook_signing
from shops.models import (
    OutboxEvent,
    Shop,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from shops.models.events import DeliveryStatus
from shops.tenancy import shop_scope

from .endpoints import is_refused_host
from .registry import ALL_EVENTS, EVENT_TYPES, TEST_TOPIC, register_event_consumer

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 2000
SWEEP_CHUNK_SIZE = 300
SWEEP_MAX_CHUNKS = 20
# The fast path enqueues a new delivery right after the commit; the sweeper
# leaves it that long before it enqueues it again (a lost hand-over).
PENDING_GRACE = timedelta(seconds=60)


def retry_delay(attempt_count: int) -> timedelta:
    """Wait after the `attempt_count`-th failed attempt: 30 s, 1 min, 2 min, ..."""
    seconds = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempt_count - 1, 0)
    return timedelta(seconds=min(seconds, settings.WEBHOOK_RETRY_MAX_SECONDS))


def fan_out_webhooks(event: OutboxEvent) -> list[int]:
    """One delivery per endpoint of the event's shop that wants it; sent on commit.

    Runs inside the consumer's transaction and the event's shop scope.
    """
    if event.topic not in EVENT_TYPES:  # internal, for the app's own consumers
        return []
    endpoints = WebhookEndpoint.objects.filter(shop_id=event.shop_id)
    if event.topic == TEST_TOPIC:
        # A test goes to the endpoint it was asked for, subscribed or not.
        targets = list(endpoints.filter(pk=event.payload.get("endpoint_id")))
    else:
        targets = [e for e in endpoints.filter(is_active=True) if e.wants(event.topic)]
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                shop_id=event.shop_id, event=event, endpoint=e, next_attempt_at=now
            )
            for e in targets
        ],
        ignore_conflicts=True,
    )
    ids = list(
        WebhookDelivery.objects.filter(
            event=event, status=DeliveryStatus.PENDING
        ).values_list("pk", flat=True)
    )
    if ids:
        transaction.on_commit(functools.partial(enqueue_deliveries, ids), robust=True)
    return ids


register_event_consumer(ALL_EVENTS, fan_out_webhooks)


def enqueue_deliveries(delivery_ids: Iterable[int]) -> int:
    """Queue a send for each delivery; stop quietly at a broker error.

    What is not queued stays due, and the sweeper queues it later.
    """
    from shops.tasks import send_webhook_delivery

    queued = 0
    for delivery_id in delivery_ids:
        try:
            send_webhook_delivery.delay(delivery_id)
        except Exception as exc:
            logger.warning(
                "Webhook delivery %s left for the sweeper: %r", delivery_id, exc
            )
            break
        queued += 1
    return queued


def _stale_before(now):
    return now - timedelta(seconds=settings.WEBHOOK_SENDING_STALE_SECONDS)


def claim_delivery(*, delivery_id: int) -> WebhookDelivery | None:
    """Mark a due delivery `sending` in one conditional UPDATE; None if not ours.

    Of two workers given the same delivery, the database lets one UPDATE match
    and the other match nothing, so the request is sent once.
    """
    now = timezone.now()
    due = (
        Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING])
        & (Q(next_attempt_at__lte=now) | Q(next_attempt_at=None))
    ) | Q(status=DeliveryStatus.SENDING, claimed_at__lt=_stale_before(now))
    # By id from the queue: the claimed row names its shop, which scopes the rest.
    deliveries = WebhookDelivery.objects.unscoped()
    if not deliveries.filter(due, pk=delivery_id).update(
        status=DeliveryStatus.SENDING, claimed_at=now
    ):
        return None
    return deliveries.select_related("event", "endpoint", "shop").get(pk=delivery_id)


def event_body(event: OutboxEvent, shop: Shop) -> bytes:
    """The JSON an endpoint receives; these exact bytes are signed."""
    document = {
        "id": event.pk,
        "type": event.topic,
        "created_at": event.created_at,
        "shop": shop.slug,
        "data": event.payload,
    }
    return json.dumps(
        document, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _post(delivery: WebhookDelivery) -> dict:
    """One HTTP attempt; returns the fields of its WebhookAttempt."""
    event, endpoint = delivery.event, delivery.endpoint
    result = {"status_code": None, "response_excerpt": "", "error": ""}
    started = time.monotonic()
    if not endpoint.is_active and event.topic != TEST_TOPIC:
        result["error"] = "The endpoint is turned off."
    elif not settings.WEBHOOKS_ALLOW_PRIVATE_URLS and is_refused_host(
        urlsplit(endpoint.url).hostname or ""
    ):
        result["error"] = "The address resolves to a local or private network."
    else:
        body = event_body(event, delivery.shop)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Regulars-Webhooks/1",
            "Regulars-Event-Id": str(event.pk),
            "Regulars-Event-Type": event.topic,
            webhook_signing.SIGNATURE_HEADER: webhook_signing.sign(
                endpoint.secret, body
            ),
        }
        try:
            with requests.post(
                endpoint.url,
                data=body,
                headers=headers,
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                allow_redirects=False,
                stream=True,
            ) as response:
                result["status_code"] = response.status_code
                raw = response.raw.read(EXCERPT_CHARS * 4, decode_content=True) or b""
                result["response_excerpt"] = raw.decode("utf-8", "replace")[
                    :EXCERPT_CHARS
                ]
        except requests.RequestException as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS]
    result["duration_ms"] = int((time.monotonic() - started) * 1000)
    return result


def _record(delivery: WebhookDelivery, attempt: dict) -> str:
    now = timezone.now()
    code = attempt["status_code"]
    with transaction.atomic():
        WebhookAttempt.objects.create(shop=delivery.shop, delivery=delivery, **attempt)
        delivery.attempt_count += 1
        delivery.claimed_at = None
        if code is not None and 200 <= code < 300:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif delivery.attempt_count >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = now + retry_delay(delivery.attempt_count)
        delivery.save(
            update_fields=[
                "attempt_count",
                "claimed_at",
                "status",
                "delivered_at",
                "next_attempt_at",
            ]
        )
    return delivery.status


def send_webhook_delivery(*, delivery_id: int) -> str | None:
    """Claim, POST, record the attempt. Returns the new status, None if not claimed."""
    delivery = claim_delivery(delivery_id=delivery_id)
    if delivery is None:
        return None
    with shop_scope(delivery.shop):
        return _record(delivery, _post(delivery))


def enqueue_due_deliveries(
    *, chunk_size: int = SWEEP_CHUNK_SIZE, max_chunks: int = SWEEP_MAX_CHUNKS
) -> int:
    """Queue every delivery whose time has come, in chunks; returns how many.

    Due: a retry whose wait is over, a new one the fast path did not queue,
    and one stuck in `sending` because its worker died.
    """
    now = timezone.now()
    due = (
        Q(status=DeliveryStatus.RETRYING, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now - PENDING_GRACE)
        | Q(status=DeliveryStatus.PENDING, next_attempt_at=None)
        | Q(status=DeliveryStatus.SENDING, claimed_at__lt=_stale_before(now))
    )
    # Platform-wide on purpose: the sweeper serves every shop. It reads ids
    # only; each send scopes itself to its delivery's shop.
    rows = WebhookDelivery.objects.unscoped().filter(due).order_by("id")
    queued, last_id = 0, 0
    for _ in range(max_chunks):
        ids = list(
            rows.filter(pk__gt=last_id).values_list("pk", flat=True)[:chunk_size]
        )
        if not ids:
            break
        done = enqueue_deliveries(ids)
        queued += done
        if done < len(ids):
            break
        last_id = ids[-1]
    return queued


def retry_webhook_deliveries(
    *, shop: Shop, deliveries: Iterable[WebhookDelivery], acting_user=None
) -> int:
    """Send the given undelivered deliveries again now; returns how many."""
    with shop_scope(shop), transaction.atomic():
        ids = list(
            WebhookDelivery.objects.filter(
                pk__in=[d.pk for d in deliveries],
                status__in=[
                    DeliveryStatus.PENDING,
                    DeliveryStatus.RETRYING,
                    DeliveryStatus.FAILED,
                ],
            ).values_list("pk", flat=True)
        )
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now()
        )
        transaction.on_commit(functools.partial(enqueue_deliveries, ids), robust=True)
    return len(ids)
