"""Points as cash (积分抵现): quoting, paying part of an order with points, and
giving the points back when the order is cancelled or refunded.

The rate: `policy.cash_points` points are worth `policy.cash_value`. Only
whole points that are worth whole cents are used: points come in steps of
`cash_points / gcd(cash_points, cash_value in cents)` (20 points = 1.00: any
number of points, each worth 0.05; 3 points = 0.10: multiples of 3). All
figures are computed in integers (points, cents), never floats.

Returns: the points a payment took come back with their original expiry
(`ledger.restore_consumptions`). Each return's entry carries the key
`redemption:<id>:<why>`, so what a payment has already given back is the sum
of those entries, a refund returns at most once, and a cancellation after
partial refunds gives back only the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, Purchase, PurchaseStatus, Refund
from points.models import (
    EntryKind,
    EntrySource,
    PointsEntry,
    PointsPolicy,
    Redemption,
    RedemptionKind,
    RedemptionStatus,
)
from points.services import ledger
from points.services.rewards import (
    RedemptionRefused,
    account_of,
    check_member,
    check_store,
    clean_key,
    conflict,
    lock_account,
    refuse,
    spendable,
)
from shops.errors import NotFound
from shops.models import Store

CENT = Decimal("0.01")
MAX_ORDER_TOTAL = Decimal("9999999999.99")
KEY_PREFIX = "order_payment:"


@dataclass(frozen=True)
class Quote:
    """How many points an order may be paid with, and what they are worth."""

    order_total: Decimal
    cash_points: int  # the rate: cash_points points ...
    cash_value: Decimal  # ... are worth cash_value
    step: int  # points are used in multiples of this (whole cents)
    min_points: int  # fewest points a payment may use (a multiple of step)
    max_share: Decimal  # percent of the order payable with points
    spendable: int  # the member's points they can spend now
    max_points: int  # most points usable on this order (0: none)
    max_value: Decimal  # what max_points are worth
    points: int | None = None  # the points asked about, if any
    value: Decimal | None = None  # what they are worth
    allowed: bool | None = None  # True when asked about (refusals raise)


def policy_of(shop_id: int) -> PointsPolicy:
    """The shop's points policy, or the defaults when it has none saved."""
    policy = PointsPolicy.objects.filter(shop_id=shop_id).first()
    return policy if policy is not None else PointsPolicy(shop_id=shop_id)


def clean_order_total(value) -> Decimal:
    message = _("Give the order total as an amount above 0, such as 88.50.")
    if isinstance(value, bool | float) or value is None:
        refuse("invalid_order_total", message, field="order_total")
    try:
        total = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        refuse("invalid_order_total", message, field="order_total")
    if (
        not total.is_finite()
        or total <= 0
        or total > MAX_ORDER_TOTAL
        or total.quantize(CENT) != total
    ):
        refuse("invalid_order_total", message, field="order_total")
    return total.quantize(CENT)


def clean_points(points) -> int:
    if isinstance(points, bool) or not isinstance(points, int | str):
        points = None
    try:
        points = int(points)
    except (TypeError, ValueError):
        points = 0
    if points <= 0:
        refuse(
            "invalid_points",
            _("Give the points as a whole number above 0."),
            field="points",
        )
    return points


class _Rate:
    """The policy's rate in integers: value_cents(points), points_for(cents)."""

    def __init__(self, policy: PointsPolicy):
        self.points = int(policy.cash_points)
        self.cents = int(Decimal(policy.cash_value) * 100)
        self.step = self.points // math.gcd(self.points, self.cents)

    def value_cents(self, points: int) -> Fraction:
        return Fraction(points * self.cents, self.points)

    def points_for(self, cents: int) -> int:
        """The most points, in whole steps, worth at most `cents`."""
        most = cents * self.points // self.cents
        return most - most % self.step


def _money(cents) -> Decimal:
    return (Decimal(int(cents)) / 100).quantize(CENT)


def quote(
    *, member: Member, order_total, points=None, account=None, policy=None
) -> Quote:
    """What `member` may pay of an order of `order_total` with points.

    With `points`: they are checked, and refused (`RedemptionRefused`) when not
    a whole number above 0 (`invalid_points`), worth more than the order
    (`quote_above_total`), not a multiple of the step (`invalid_points`), below
    the shop's minimum (`points_below_min`), more than the member can spend
    (`insufficient_points`) or above the order's share (`points_above_max`).
    """
    total = clean_order_total(order_total)
    if points is not None:
        points = clean_points(points)
    policy = policy or policy_of(member.shop_id)
    account = account or account_of(member)
    rate = _Rate(policy)
    total_cents = int(total * 100)
    share = Decimal(policy.cash_max_share)
    share_cents = int(total * share)  # total * share% in cents, rounded down
    min_points = -(-int(policy.cash_min_points) // rate.step) * rate.step
    have = spendable(account)
    max_points = min(rate.points_for(share_cents), have - have % rate.step)
    if max_points < max(min_points, rate.step):
        max_points = 0

    value = None
    if points is not None:
        worth = rate.value_cents(points)
        if worth > total_cents:
            refuse(
                "quote_above_total",
                _("%(points)d points are worth more than the order total.")
                % {"points": points},
                field="points",
            )
        if points % rate.step:
            refuse(
                "invalid_points",
                _("Use points in multiples of %(step)d (worth whole cents).")
                % {"step": rate.step},
                field="points",
            )
        if points < min_points:
            refuse(
                "points_below_min",
                _("Pay with at least %(min)d points.") % {"min": min_points},
                field="points",
            )
        if points > have:
            refuse(
                "insufficient_points",
                _("The member has %(have)d points to spend.") % {"have": have},
                field="points",
            )
        if points > max_points:
            refuse(
                "points_above_max",
                _("At most %(max)d points (%(share)s%% of the order) can be used.")
                % {"max": max_points, "share": format(share.normalize(), "f")},
                field="points",
            )
        value = _money(worth)
    return Quote(
        order_total=total,
        cash_points=rate.points,
        cash_value=Decimal(policy.cash_value).quantize(CENT),
        step=rate.step,
        min_points=min_points,
        max_share=share,
        spendable=have,
        max_points=max_points,
        max_value=_money(rate.value_cents(max_points)),
        points=points,
        value=value,
        allowed=None if points is None else True,
    )


def pay_with_points(
    *,
    member: Member,
    external_order_id: str,
    order_total,
    points,
    store: Store | None = None,
    idempotency_key: str = "",
    acting_user=None,
    actor_label: str = "",
) -> Redemption:
    """Pay part of order `external_order_id` with `points` (checked by `quote`).

    Idempotent by key and by order: a second payment for the same order with
    the same points and store returns the first (`replayed = True`); with
    different ones it is refused (`order_paid`, or
    `idempotency_conflict` for a reused key). Refusals change nothing.
    """
    order = external_order_id.strip() if isinstance(external_order_id, str) else ""
    if not order or len(order) > 64 or "\x00" in order:
        refuse(
            "invalid_order",
            _("Give the order number (up to 64 characters)."),
            field="external_order_id",
        )
    total = clean_order_total(order_total)
    points = clean_points(points)
    key = clean_key(idempotency_key)
    check_store(store, member)
    check_member(member)
    body = (member.pk, order, points, store.pk if store else None)
    with transaction.atomic():
        # The account lock serialises this member's payments, so two requests
        # for one order cannot both pay.
        account = ledger.account_for(member, lock=True)
        first = _paid_before(member, order, KEY_PREFIX + key if key else "")
        if first is not None:
            same = (
                first.member_id,
                first.external_order_id,
                first.points,
                first.store_id,
            ) == body
            if not same:
                if first.by_key:
                    conflict()
                refuse(
                    "order_paid",
                    _("This order was already paid with %(points)d points.")
                    % {"points": first.points},
                )
            first.replayed = True
            return first
        purchase = (
            Purchase.objects.filter(shop_id=member.shop_id, external_order_id=order)
            .only("pk", "member_id", "status")
            .first()
        )
        if purchase is not None and purchase.member_id != member.pk:
            raise NotFound()
        if purchase is not None and purchase.status in (
            PurchaseStatus.CANCELLED,
            PurchaseStatus.REFUNDED,
        ):
            refuse("order_closed", _("This order was cancelled or refunded."))
        figures = quote(
            member=member, order_total=total, points=points, account=account
        )
        debit = ledger.debit(
            member=member,
            points=points,
            kind=EntryKind.REDEEM,
            source=EntrySource.ORDER_PAYMENT,
            reason=str(
                _("Paid %(value)s towards order %(order)s")
                % {"value": figures.value, "order": order}
            ),
            purchase=purchase,
            idempotency_key=KEY_PREFIX + key if key else "",
            acting_user=acting_user,
            actor_label=actor_label,
        )
        redemption = Redemption.objects.create(
            shop_id=member.shop_id,
            member=member,
            kind=RedemptionKind.ORDER_PAYMENT,
            points=points,
            cash_value=figures.value,
            external_order_id=order,
            purchase=purchase,
            store=store,
            debit=debit,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        redemption.replayed = False
        return redemption


def _paid_before(member: Member, order: str, key: str) -> Redemption | None:
    """The completed payment for this order, or the one written with `key`."""
    if key:
        entry = (
            PointsEntry.objects.filter(shop_id=member.shop_id, idempotency_key=key)
            .only("pk")
            .first()
        )
        if entry is not None:
            first = Redemption.objects.filter(
                shop_id=member.shop_id, debit=entry
            ).first()
            if first is None:
                conflict()
            first.by_key = True
            return first
    first = (
        Redemption.objects.filter(
            shop_id=member.shop_id,
            external_order_id=order,
            kind=RedemptionKind.ORDER_PAYMENT,
            status=RedemptionStatus.COMPLETED,
        )
        .order_by("id")
        .first()
    )
    if first is not None:
        first.by_key = False
    return first


# ------------------------------------------------------------------ returns


def returned_points(redemption: Redemption) -> int:
    """Points of `redemption` already given back (by refunds or a cancel): the
    ledger marks what it restores of a debit with `restore:<debit id>`."""
    return (
        PointsEntry.objects.filter(
            shop_id=redemption.shop_id,
            account_id=redemption.debit.account_id,
            reference=f"restore:{redemption.debit_id}",
        ).aggregate(total=Sum("points"))["total"]
        or 0
    )


def give_back(
    *,
    redemption: Redemption,
    points: int,
    reason,
    source: str,
    idempotency_key: str,
    acting_user=None,
    actor_label: str = "",
) -> PointsEntry | None:
    """Give back `points` of what `redemption` took, each to its original lot's
    expiry."""
    if points <= 0:
        return None
    return ledger.restore_consumptions(
        debit_entry=redemption.debit,
        reason=str(reason)[:200],
        kind=EntryKind.REVERSE,
        source=source,
        acting_user=acting_user,
        actor_label=actor_label,
        idempotency_key=idempotency_key,
        # Of what the debit took: the ledger gives back round(taken x fraction),
        # exactly `points` at this precision.
        fraction=None
        if points == redemption.points
        else Decimal(points) / Decimal(redemption.points),
    )


def return_rest(
    *,
    redemption: Redemption,
    reason,
    idempotency_key: str,
    acting_user=None,
    actor_label: str = "",
) -> PointsEntry | None:
    """Give back what `redemption` took and has not given back yet (the caller
    holds the redemption's row lock)."""
    source = (
        EntrySource.REWARD
        if redemption.kind == RedemptionKind.REWARD
        else EntrySource.ORDER_PAYMENT
    )
    return give_back(
        redemption=redemption,
        points=redemption.points - returned_points(redemption),
        reason=reason,
        source=source,
        idempotency_key=idempotency_key,
        acting_user=acting_user,
        actor_label=actor_label,
    )


def return_order_payment(
    *,
    purchase: Purchase,
    refund: Refund | None = None,
    acting_user=None,
    actor_label: str = "",
) -> PointsEntry | None:
    """Give back the points paid towards `purchase`'s order (called by the
    settlement in the transaction that cancels or refunds it).

    Cancelled (`refund` None): all of them, and the payment is cancelled.
    Refunded: the refunded share of what was paid, cumulative over the
    purchase's refunds (points = floor(paid points x refunded / paid amount),
    minus what earlier refunds returned; a full refund returns the rest and
    cancels the payment). Once per refund. None when nothing was paid with
    points (or nothing is due).
    """
    paid = Redemption.objects.filter(
        shop_id=purchase.shop_id,
        external_order_id=purchase.external_order_id,
        member_id=purchase.member_id,
        kind=RedemptionKind.ORDER_PAYMENT,
        status=RedemptionStatus.COMPLETED,
    )
    first = paid.select_related("debit").order_by("pk").first()
    if first is None:
        return None
    # The member and account before the payments' rows (rewards' lock order).
    lock_account(first)
    payments = list(
        paid.select_related("debit").order_by("pk").select_for_update(of=("self",))
    )
    entry = None
    for payment in payments:
        written = _return_one(payment, purchase, refund, acting_user, actor_label)
        entry = written or entry
    return entry


def _return_one(payment, purchase, refund, acting_user, actor_label):
    everything = refund is None or purchase.refunded_amount >= purchase.paid_amount
    if refund is None:
        key = f"redemption:{payment.pk}:cancel"
        reason = _("Order %(order)s cancelled") % {"order": purchase.external_order_id}
    else:
        key = f"redemption:{payment.pk}:refund:{refund.pk}"
        reason = _("Order %(order)s refunded") % {"order": purchase.external_order_id}
        replay = PointsEntry.objects.filter(
            shop_id=payment.shop_id, idempotency_key=key
        ).first()
        if replay is not None:
            return replay
    returned = returned_points(payment)
    if everything:
        due = payment.points - returned
    else:
        share = Fraction(str(purchase.refunded_amount)) / Fraction(
            str(purchase.paid_amount)
        )
        due = math.floor(payment.points * share) - returned
    entry = give_back(
        redemption=payment,
        points=due,
        reason=reason,
        source=EntrySource.REFUND if refund is not None else EntrySource.ORDER_PAYMENT,
        idempotency_key=key,
        acting_user=acting_user,
        actor_label=actor_label,
    )
    if everything:
        payment.status = RedemptionStatus.CANCELLED
        payment.cancelled_at = timezone.now()
        payment.save(update_fields=["status", "cancelled_at"])
    if payment.purchase_id is None:
        payment.purchase = purchase
        payment.save(update_fields=["purchase"])
    return entry


__all__ = [
    "Quote",
    "RedemptionRefused",
    "pay_with_points",
    "quote",
    "return_order_payment",
]
