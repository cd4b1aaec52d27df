"""Expiry of due lots and release of pending points (beat: config/settings.py).

Thin and safe to run twice: the services find nothing left to do the second
time. The *_everywhere tasks queue one task per active shop.
"""

from __future__ import annotations

from celery import shared_task

from points.services import expiry, ledger
from shops.models import Shop
from shops.tenancy import shop_task

__all__ = [
    "expire_due_lots",
    "expire_due_lots_everywhere",
    "release_pending",
    "release_pending_everywhere",
]


@shop_task(name="points.expire_due_lots")
def expire_due_lots(*, shop: Shop) -> int:
    """Expire the shop's due lots; returns the points expired."""
    return expiry.expire_due_lots(shop=shop)


@shared_task(name="points.expire_due_lots_everywhere")
def expire_due_lots_everywhere() -> int:
    return _each_active_shop(expire_due_lots)


@shop_task(name="points.release_pending")
def release_pending(*, shop: Shop) -> int:
    """Points whose return window ended become spendable; returns accounts."""
    return ledger.release_pending(shop=shop)


@shared_task(name="points.release_pending_everywhere")
def release_pending_everywhere() -> int:
    return _each_active_shop(release_pending)


def _each_active_shop(task) -> int:
    queued = 0
    for shop_id in Shop.objects.filter(is_active=True).values_list("pk", flat=True):
        task.delay(shop_id=shop_id)
        queued += 1
    return queued
