"""Settling purchases: record, complete, refund or cancel a purchase, re-evaluate
the member's tier and earn or reverse points, all in ONE transaction.

This is the one explicit service at the top of the members <- tiers <- points
chain (DESIGN.md: no signals for core flows). Its four functions take exactly
the arguments of `members.services.purchases`' and return the same objects,
so the purchases API and admin call this module instead of that one (see
`PurchaseViewSet.services` and `PurchaseAdmin.services`), and a POS gets the
member's new tier and balance in the same response.

Each returned purchase carries `tier_change` (a TierChange or None) and
`points_entry` (the points entry this call wrote, or None); a refund carries
`points_entry` too.
"""

from __future__ import annotations

from django.db import transaction

from members.models import PurchaseStatus
from members.services import purchases
from points.services.cash import return_order_payment
from points.services.earning import earn_for_purchase
from points.services.reversal import reverse_for_refund
from tiers.models import TierChangeReason
from tiers.services.evaluation import evaluate_member


def record_purchase(*, acting_user=None, actor_label: str = "", **kwargs):
    def settle(purchase):
        purchase.tier_change = purchase.points_entry = None
        if purchase.status == PurchaseStatus.COMPLETED:
            _settle_completed(purchase, acting_user, actor_label)

    # Settled inside the recording's own transaction (no savepoint on the
    # POS's hot path); a replayed order number is not settled again.
    purchase = purchases.record_purchase(
        acting_user=acting_user, actor_label=actor_label, then=settle, **kwargs
    )
    if purchase.replayed:
        purchase.tier_change = purchase.points_entry = None
    return purchase


def complete_purchase(*, purchase, acting_user=None, actor_label: str = ""):
    with transaction.atomic():
        was_pending = purchase.status == PurchaseStatus.PENDING
        purchase = purchases.complete_purchase(
            purchase=purchase, acting_user=acting_user, actor_label=actor_label
        )
        purchase.tier_change = purchase.points_entry = None
        if was_pending and purchase.status == PurchaseStatus.COMPLETED:
            _settle_completed(purchase, acting_user, actor_label)
        return purchase


def cancel_purchase(*, purchase, reason: str = "", acting_user=None, actor_label=""):
    with transaction.atomic():
        purchase = purchases.cancel_purchase(
            purchase=purchase,
            reason=reason,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        purchase.tier_change = None
        # Points paid towards a cancelled order go back to the member.
        purchase.points_entry = return_order_payment(
            purchase=purchase, acting_user=acting_user, actor_label=actor_label
        )
        return purchase


def refund_purchase(*, purchase, acting_user=None, actor_label: str = "", **kwargs):
    with transaction.atomic():
        refund = purchases.refund_purchase(
            purchase=purchase,
            acting_user=acting_user,
            actor_label=actor_label,
            **kwargs,
        )
        refund.points_entry = refund.points_returned = None
        purchase = refund.purchase
        purchase.tier_change = purchase.points_entry = None
        if refund.replayed:
            return refund
        purchase.tier_change = evaluate_member(
            member=purchase.member,
            reason=TierChangeReason.REFUND,
            purchase=purchase,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        refund.points_entry = reverse_for_refund(
            refund=refund, acting_user=acting_user, actor_label=actor_label
        )
        # Points paid towards the order go back in proportion to the refund.
        refund.points_returned = return_order_payment(
            purchase=purchase,
            refund=refund,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        return refund


def _settle_completed(purchase, acting_user, actor_label) -> None:
    purchase.tier_change = evaluate_member(
        member=purchase.member,
        reason=TierChangeReason.PURCHASE,
        purchase=purchase,
        acting_user=acting_user,
        actor_label=actor_label,
    )
    # Earned at the tier reached by this purchase (the multiplier of the new tier).
    purchase.points_entry = earn_for_purchase(
        purchase=purchase, acting_user=acting_user, actor_label=actor_label
    )
