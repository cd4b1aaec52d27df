"""Tasks of the members app: keeping rule-given tags true, and tagging long
lists chosen in the admin (`run_tag_job`).

Nightly, beat runs `apply_tag_rules_everywhere`, which queues one
`apply_tag_rules_for_shop` per active shop. After a purchase is completed or
refunded, the outbox consumer `reevaluate_member_tags` queues the same task for
that member only. Both are safe to run twice: the service changes nothing the
second time.
"""

from __future__ import annotations

import functools
import logging

from celery import shared_task
from django.db import transaction

from members.services import tags as services
from shops.models import Shop
from shops.tenancy import shop_task

__all__ = [
    "apply_tag_rules_everywhere",
    "apply_tag_rules_for_shop",
    "reevaluate_member_tags",
    "register_tag_consumers",
    "run_tag_job",
]

logger = logging.getLogger(__name__)


@shop_task(name="members.apply_tag_rules_for_shop")
def apply_tag_rules_for_shop(
    *, shop: Shop, tag_id: int | None = None, member_ids: list[int] | None = None
) -> dict:
    tag = None
    if tag_id is not None:
        from members.models import Tag

        tag = Tag.objects.filter(pk=tag_id).first()
        if tag is None:  # deleted since: nothing to keep true
            return {"added": 0, "removed": 0}
    return services.apply_tag_rules(shop=shop, tag=tag, member_ids=member_ids)


# A million members take about a minute; the job row is the record of the
# work, and its status claim makes a redelivered task a no-op.
@shop_task(name="members.run_tag_job", soft_time_limit=25 * 60)
def run_tag_job(*, shop: Shop, job_id: int) -> str:
    return services.run_tag_job(shop=shop, job_id=job_id)


@shared_task(name="members.apply_tag_rules_everywhere")
def apply_tag_rules_everywhere() -> int:
    """Queue one evaluation per active shop; returns how many were queued."""
    queued = 0
    for shop_id in Shop.objects.filter(is_active=True).values_list("pk", flat=True):
        apply_tag_rules_for_shop.delay(shop_id=shop_id)
        queued += 1
    return queued


def _enqueue_member(shop_id: int, member_id: int) -> None:
    try:
        apply_tag_rules_for_shop.delay(shop_id=shop_id, member_ids=[member_id])
    except Exception as exc:
        # The purchase is committed; the nightly run catches this member up.
        logger.warning("Tag rules for member %s left for tonight: %r", member_id, exc)


def reevaluate_member_tags(event) -> None:
    """Outbox consumer: re-check the purchase's member's rule tags, after commit."""
    member = (event.payload or {}).get("member") or {}
    member_id = member.get("id") if isinstance(member, dict) else None
    if not isinstance(member_id, int):
        return
    transaction.on_commit(
        functools.partial(_enqueue_member, event.shop_id, member_id), robust=True
    )


def register_tag_consumers() -> None:
    """Attach the consumer (called from members.events.register())."""
    from members.events import PURCHASE_COMPLETED, PURCHASE_REFUNDED
    from shops.services.events import register_event_consumer

    # A refund lowers the total spent, which "total spend at least" reads.
    register_event_consumer(PURCHASE_COMPLETED, reevaluate_member_tags)
    register_event_consumer(PURCHASE_REFUNDED, reevaluate_member_tags)
