"""Record, complete and cancel a purchase."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import (
    Member,
    MemberStatus,
    Purchase,
    PurchaseChannel,
    PurchaseLine,
    PurchaseStatus,
)
from shops import rawsql
from shops.models import Shop, Store

from .checks import (
    CLOCK_SKEW,
    MemberErased,
    MemberNotFound,
    OrderExists,
    PurchaseStateError,
    _clean_lines,
    _same_content,
    money,
)
from .figures import _count_purchase


def record_purchase(
    *,
    shop: Shop,
    member: Member,
    external_order_id: str,
    amount,
    discount=0,
    paid_amount=None,
    currency: str | None = None,
    lines: Iterable = (),
    store: Store | None = None,
    channel: str = PurchaseChannel.STORE,
    occurred_at: datetime | None = None,
    complete: bool = True,
    note: str = "",
    acting_user=None,
    actor_label: str = "",
    then=None,
) -> Purchase:
    """Record a purchase, pending or completed at once (see the module docstring).

    A repeated `external_order_id` with the same content returns the first
    purchase (with `replayed = True`); with different content it is refused
    (`OrderExists`). Nothing is written when anything is refused.

    `then(purchase)`, if given, runs inside the same transaction right after a
    new purchase is written (not on a replay): how the settlement adds the
    tier and points without a savepoint of its own.
    """
    if member.shop_id != shop.pk:
        raise MemberNotFound()
    if member.status == MemberStatus.ERASED:
        raise MemberErased()
    order = external_order_id.strip() if isinstance(external_order_id, str) else ""
    if not order or len(order) > 64 or "\x00" in order:
        raise ValidationError(
            {"external_order_id": _("Give the order number (up to 64 characters).")}
        )
    amount = money(amount, field="amount")
    discount = money(discount, field="discount")
    if discount > amount:
        raise ValidationError(
            {"discount": _("The discount cannot be more than the amount.")}
        )
    if paid_amount is None:
        paid_amount = amount - discount
    else:
        paid_amount = money(paid_amount, field="paid_amount")
        if paid_amount > amount:
            raise ValidationError(
                {"paid_amount": _("The paid amount cannot be more than the amount.")}
            )
    if currency is not None and str(currency).upper() != shop.currency:
        raise ValidationError(
            {
                "currency": _("This shop takes %(currency)s only.")
                % {"currency": shop.currency}
            }
        )
    if store is not None and store.shop_id != shop.pk:
        raise ValidationError({"store": _("No such store in this shop.")})
    if channel not in PurchaseChannel.values:
        raise ValidationError({"channel": _("Unknown channel.")})
    now = timezone.now()
    if occurred_at is None:
        occurred_at = now
    elif not isinstance(occurred_at, datetime) or timezone.is_naive(occurred_at):
        raise ValidationError({"occurred_at": _("Give the time with its time zone.")})
    elif occurred_at > now + CLOCK_SKEW:
        raise ValidationError(
            {"occurred_at": _("The time of purchase cannot be in the future.")}
        )
    if not isinstance(note, str) or len(note) > 200 or "\x00" in note:
        raise ValidationError({"note": _("The note is up to 200 characters.")})
    line_rows = _clean_lines(shop, lines)

    purchase = Purchase(
        shop=shop,
        member=member,
        store=store,
        external_order_id=order,
        amount=amount,
        discount=discount,
        paid_amount=paid_amount,
        currency=shop.currency,
        channel=channel,
        occurred_at=occurred_at,
        note=note,
        created_by=acting_user,
        status=PurchaseStatus.PENDING,
    )
    with transaction.atomic(savepoint=False):
        if complete:
            purchase.status = PurchaseStatus.COMPLETED
            purchase.completed_at = now
        # By hand (compiling the ORM's INSERT cost more than running it), and
        # idempotent by order number in the same statement: a number already
        # recorded (or being recorded by a concurrent request, which the
        # statement waits for) inserts nothing and aborts nothing.
        inserted = rawsql.insert(purchase, unless_exists=ORDER_NUMBER)
        if inserted:
            _write_rest(purchase, line_rows, complete)
            if then is not None:
                then(purchase)
    if not inserted:
        # Outside the block, which wrote nothing: a refusal leaves a caller's
        # transaction usable.
        return _recorded_before(purchase, member, line_rows)
    return purchase


def _write_rest(purchase: Purchase, line_rows: list, complete: bool) -> None:
    """The lines, and for a completed purchase the member's figures and event."""
    for line in line_rows:
        line.purchase = purchase
    if line_rows:
        PurchaseLine.objects.bulk_create(line_rows)
    # As prefetch_related() leaves it: the response lists the lines without
    # reading them back. The queryset's filter is deferred, as Django's related
    # managers defer theirs: compiling it (a tenth of a millisecond) would be
    # wasted on a queryset that never runs, yet a caller that filters it
    # further still reads only this purchase's lines.
    cached = PurchaseLine.objects.unscoped()
    cached._defer_next_filter = True
    cached = cached.filter(shop_id=purchase.shop_id, purchase=purchase)
    cached._result_cache, cached._prefetch_done = line_rows, True
    purchase._prefetched_objects_cache = {"lines": cached}
    if complete:
        _count_purchase(purchase)
    purchase.replayed = False


ORDER_NUMBER = ("shop_id", "external_order_id")


def _recorded_before(purchase: Purchase, member: Member, line_rows) -> Purchase:
    """The first purchase with this order number, when its content is the same."""
    existing = Purchase.objects.filter(
        external_order_id=purchase.external_order_id
    ).first()
    if existing is None or not _same_content(existing, purchase, line_rows):
        raise OrderExists(
            fields={"external_order_id": [str(OrderExists.default_message)]}
        )
    existing.replayed = True
    existing.member = member
    return existing


def _lock(purchase: Purchase) -> Purchase:
    """The purchase's row, locked, re-read (its status may have changed)."""
    locked = Purchase.objects.select_for_update().get(pk=purchase.pk)
    locked.member = purchase.member
    return locked


def complete_purchase(
    *, purchase: Purchase, acting_user=None, actor_label: str = ""
) -> Purchase:
    """Pending -> completed: it counts from now. Already completed: unchanged."""
    with transaction.atomic():
        purchase = _lock(purchase)
        if purchase.status == PurchaseStatus.CANCELLED:
            raise PurchaseStateError(
                _("This purchase was cancelled; it cannot be completed."),
                code="purchase_cancelled",
            )
        if purchase.status == PurchaseStatus.REFUNDED:
            raise PurchaseStateError(
                _("This purchase was refunded; it cannot be completed."),
                code="purchase_refunded",
            )
        if purchase.status != PurchaseStatus.PENDING:
            return purchase
        purchase.status = PurchaseStatus.COMPLETED
        purchase.completed_at = timezone.now()
        purchase.save(update_fields=["status", "completed_at"])
        _count_purchase(purchase)
        return purchase


def cancel_purchase(
    *, purchase: Purchase, reason: str = "", acting_user=None, actor_label: str = ""
) -> Purchase:
    """Pending -> cancelled (it never counted). A completed purchase is refunded."""
    with transaction.atomic():
        purchase = _lock(purchase)
        if purchase.status == PurchaseStatus.CANCELLED:
            return purchase
        if purchase.status != PurchaseStatus.PENDING:
            raise PurchaseStateError(
                _("A completed purchase cannot be cancelled; refund it instead."),
                code="purchase_completed",
            )
        purchase.status = PurchaseStatus.CANCELLED
        purchase.cancelled_at = timezone.now()
        if reason:
            purchase.note = str(reason)[:200]
        purchase.save(update_fields=["status", "cancelled_at", "note"])
        return purchase
