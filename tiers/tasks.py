"""Celery tasks of the tiers app: thin, idempotent, each calls one service.

Beat runs `tiers.run_period_ends_everywhere` (period ends, grace ends and
manual locks that run out) and then `tiers.recalculate_everywhere` (one
set-based recalculation per shop with a ladder) every night; both fan out one
task per shop. A recalculation started from the admin or the API is a
`TierRecalculation` row whose id `tiers.recalculate_shop` takes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from shops.models import Shop
from shops.tenancy import shop_scope, shop_task
from tiers.models import (
    RecalculationStatus,
    Tier,
    TierChangeReason,
    TierRecalculation,
)
from tiers.services import periods, recalculation, sql
from tiers.services.figures import local_today

logger = logging.getLogger(__name__)


def _shops_with_ladders():
    # Platform-wide on purpose: which shops have tiers at all.
    shop_ids = Tier.objects.unscoped().values("shop_id").distinct()
    return Shop.objects.filter(is_active=True, pk__in=shop_ids).order_by("pk")


@shared_task(name="tiers.recalculate_shop", soft_time_limit=25 * 60)
def recalculate_shop(recalculation_id: int) -> dict | None:
    """Run one recorded recalculation; a finished one is not run again."""
    row = TierRecalculation.objects.unscoped().filter(pk=recalculation_id).first()
    if row is None or row.status == RecalculationStatus.DONE:
        return None
    shop = Shop.objects.get(pk=row.shop_id)
    with shop_scope(shop):
        try:
            up, down = recalculation.recalculate_shop(
                shop=shop,
                reason=row.reason,
                as_of=row.as_of,
                recalculation=row,
                acting_user=row.created_by,
            )
        except Exception as exc:
            logger.exception("Tier recalculation %s failed", recalculation_id)
            row.status = RecalculationStatus.FAILED
            row.error = repr(exc)[:2000]
            row.finished_at = timezone.now()
            row.save(update_fields=["status", "error", "finished_at"])
            raise
    return {"up": up, "down": down}


@shop_task(name="tiers.run_period_ends")
def run_period_ends(*, shop) -> dict:
    return {
        kind: list(moves) for kind, moves in periods.run_period_ends(shop=shop).items()
    }


@shared_task(name="tiers.run_period_ends_everywhere")
def run_period_ends_everywhere() -> int:
    queued = 0
    for shop in _shops_with_ladders():
        run_period_ends.delay(shop_id=shop.pk)
        queued += 1
    return queued


# A recalculation still waiting after this long lost its message (the broker
# was away when it was queued): the nightly run queues it again.
STALE_AFTER = timedelta(minutes=30)


@shared_task(name="tiers.recalculate_everywhere")
def recalculate_everywhere() -> int:
    """One nightly recalculation per shop with a ladder; a shop already
    recalculated (or being recalculated) for its today is skipped. Queued
    recalculations whose message was lost are queued again, and the work
    tables of runs whose worker was killed are dropped."""
    dropped = sql.drop_leftover_tables()
    if dropped:
        logger.warning("Dropped work tables of killed recalculations: %s", dropped)
    stale = TierRecalculation.objects.unscoped().filter(
        status=RecalculationStatus.QUEUED,
        created_at__lt=timezone.now() - STALE_AFTER,
    )
    for recalculation_id in stale.values_list("pk", flat=True):
        recalculate_shop.delay(recalculation_id)
    queued = 0
    for shop in _shops_with_ladders():
        with shop_scope(shop):
            today = local_today(shop)
            if (
                TierRecalculation.objects.filter(
                    shop=shop,
                    reason=TierChangeReason.RECALCULATION,
                    as_of=today,
                    created_by=None,
                )
                .exclude(status=RecalculationStatus.FAILED)
                .exists()
            ):
                continue
            recalculation.start_recalculation(
                shop=shop, reason=TierChangeReason.RECALCULATION
            )
            queued += 1
    return queued
