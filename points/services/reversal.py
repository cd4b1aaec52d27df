"""Taking back the points a refunded purchase earned, in proportion.

target = round(earned * refunded so far / paid amount) (half up), less what
earlier refunds of the purchase took back. The points come from the
purchase's own lot first (even while pending), then from the member's other
spendable lots. When they were already spent, the shop's refund policy
decides: "go negative" takes them all (the balance goes below zero, and the
next credits pay it back); "take remaining" takes what is there and says in
the entry's reason how many could not be taken back.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from members.models import Member
from points.models import EntryKind, EntrySource, PointsEntry, RefundPolicy
from points.services import ledger, rules


def earned_by(purchase) -> PointsEntry | None:
    """The entry that credited the purchase's points, if any."""
    return (
        PointsEntry.objects.unscoped()
        .filter(shop_id=purchase.shop_id, idempotency_key=f"purchase:{purchase.pk}")
        .first()
    )


def reverse_for_refund(*, refund, acting_user=None, actor_label=""):
    """Take back the refund's share of the purchase's points (None: nothing
    to take back). Idempotent per refund (key "refund:<id>")."""
    purchase = refund.purchase
    shop = purchase.shop
    earned = earned_by(purchase)
    if earned is None or not purchase.paid_amount:
        return None
    member = purchase.member
    if not Member.shop.is_cached(member):
        member.shop = shop
    key = f"refund:{refund.pk}"
    with transaction.atomic():
        account = ledger.account_for(member, lock=True)
        first = (
            PointsEntry.objects.unscoped()
            .filter(shop_id=shop.pk, idempotency_key=key)
            .first()
        )
        if first is not None:
            first.replayed = True
            return first
        share = Decimal(earned.points) * purchase.refunded_amount / purchase.paid_amount
        target = min(
            int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP)), earned.points
        )
        before = (
            PointsEntry.objects.unscoped()
            .filter(
                shop_id=shop.pk,
                account_id=account.pk,
                purchase_id=purchase.pk,
                kind=EntryKind.REVERSE,
                source=EntrySource.REFUND,
            )
            .aggregate(total=Sum("points"))["total"]
            or 0
        )
        wanted = target + before  # earlier reversals are negative
        if wanted <= 0:
            return None
        policy = rules.policy_for(shop, cached=False)
        order = purchase.external_order_id
        go_negative = policy.refund_policy == RefundPolicy.GO_NEGATIVE
        points, reason = wanted, _("Refund of order %(order)s") % {"order": order}
        if not go_negative:
            there = ledger.takeable(account, prefer_lots_of=earned)
            points = min(wanted, there)
            if points < wanted:
                reason = _(
                    "Refund of order %(order)s: %(missing)d points were already "
                    "spent and not taken back"
                ) % {"order": order, "missing": wanted - points}
            if points <= 0:
                return None
        return ledger.debit(
            member=member,
            points=points,
            kind=EntryKind.REVERSE,
            source=EntrySource.REFUND,
            reason=reason,
            purchase=purchase,
            reference=f"refund:{refund.pk}",
            idempotency_key=key,
            acting_user=acting_user,
            actor_label=actor_label,
            allow_negative=go_negative,
            prefer_lots_of=earned,
        )


__all__ = ["earned_by", "reverse_for_refund"]
