"""Purchases: record, complete, refund, cancel; the member's figures move with them.

A purchase counts (member figures, and later tiers, points, RFM) once it is
completed. The member's `total_spent` is the sum of `paid_amount -
refunded_amount` over counted and refunded purchases, `order_count` the
number of completed or partially refunded ones, `first_purchase_at` /
`last_purchase_at` their earliest and latest `occurred_at`. Each change is ONE
atomic UPDATE of the member row with F()/Least/Greatest expressions, in the
transaction that changes the purchase: concurrent purchases of one member never
lose an increment.

The statements of a completed `record_purchase` (the API's hot path):

    SELECT purchase WHERE shop, external_order_id      -- idempotency by order
    INSERT purchase
    INSERT purchase lines (one bulk INSERT; none when there are no lines)
    UPDATE member SET total_spent = total_spent + paid, order_count + 1,
        first = LEAST(COALESCE(first, t), t), last = GREATEST(...)
        WHERE shop AND id RETURNING the four figures
    INSERT outbox event (purchase.completed)

(plus the member and store look-up by the caller, BEGIN and COMMIT).

Locks: a status change locks the purchase row (`select_for_update`), and then
the member row by its UPDATE: always purchase first, then member.

Transactions: a caller may wrap any of these with more work (the coming
`settle_purchase`: tier, points) in ONE transaction. `record_purchase` runs
in `atomic(savepoint=False)`, so the hot path pays no savepoint round trip
when wrapped: everything it refuses is refused before its block starts (the
only failure inside is a concurrent insert of the same order number, which
PostgreSQL makes fatal to the transaction anyway). complete / refund / cancel
check the state under the row lock, so they use a savepoint when wrapped: a
refusal leaves the caller's transaction usable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, DateTimeField, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest, Least
from django.db.models.sql import UpdateQuery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.events import PURCHASE_COMPLETED, PURCHASE_REFUNDED
from members.models import (
    Member,
    MemberStatus,
    Purchase,
    PurchaseChannel,
    PurchaseLine,
    PurchaseStatus,
    Refund,
)
from members.models.purchase import COUNTED_STATUSES
from shops.errors import DomainError
from shops.models import Shop, Store
from shops.services.events import emit_event

CENT = Decimal("0.01")
MILLI = Decimal("0.001")
MAX_MONEY = Decimal("9999999999.99")  # max_digits=12, decimal_places=2
MAX_QUANTITY = Decimal("9999999.999")
MAX_LINES = 500
# A till's clock may run a little ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)
FIGURES = ("total_spent", "order_count", "first_purchase_at", "last_purchase_at")


class OrderExists(DomainError):
    code = "order_exists"
    status_code = 409
    default_message = _(
        "A different purchase with this order number is already recorded."
    )


class MemberNotFound(DomainError):
    code = "member_not_found"
    status_code = 404
    default_message = _("No member of this shop matches.")


class MemberErased(DomainError):
    code = "member_erased"
    default_message = _("This member's data was erased; record no new purchases.")


class PurchaseStateError(DomainError):
    code = "purchase_state"


class RefundTooLarge(DomainError):
    code = "refund_too_large"


def _as_decimal(value, *, field: str, places: Decimal, largest: Decimal, minimum):
    """A non-negative Decimal with at most `places`; never a float."""
    message = _("Enter an amount such as 12.50.")
    if isinstance(value, bool | float) or value is None:
        raise ValidationError({field: message})
    try:
        number = (
            Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
        )
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError({field: message}) from None
    if not number.is_finite():
        raise ValidationError({field: message})
    if number.quantize(places, rounding=ROUND_HALF_UP) != number:
        raise ValidationError(
            {
                field: _("Use at most %(n)d decimal places.")
                % {"n": -places.as_tuple().exponent}
            }
        )
    if number < minimum:
        raise ValidationError({field: _("This cannot be negative.")})
    if number > largest:
        raise ValidationError({field: _("This amount is too large.")})
    return number.quantize(places)


def money(value, *, field: str, minimum: Decimal = Decimal(0)) -> Decimal:
    return _as_decimal(
        value, field=field, places=CENT, largest=MAX_MONEY, minimum=minimum
    )


def _text_ok(value, max_length: int) -> bool:
    # PostgreSQL refuses NUL characters in text: a 500 unless refused here.
    return isinstance(value, str) and len(value) <= max_length and "\x00" not in value


def _clean_lines(shop: Shop, lines: Iterable) -> list[PurchaseLine]:
    if isinstance(lines, str | bytes | Mapping) or not isinstance(lines, Iterable):
        raise ValidationError({"lines": _("Send the lines as a list.")})
    lines = list(lines)
    if len(lines) > MAX_LINES:
        raise ValidationError({"lines": _("At most %(n)d lines.") % {"n": MAX_LINES}})
    cleaned = []
    for number, line in enumerate(lines, start=1):
        where = f"lines[{number - 1}]"
        if not isinstance(line, Mapping):
            raise ValidationError(
                {where: _("Each line needs a name, quantity and unit price.")}
            )
        name = line.get("name")
        sku = line.get("sku") or ""
        if not _text_ok(name, 200) or not name.strip():
            raise ValidationError(
                {f"{where}.name": _("Give the item's name (up to 200 characters).")}
            )
        if not _text_ok(sku, 64):
            raise ValidationError(
                {f"{where}.sku": _("The SKU is up to 64 characters.")}
            )
        quantity = _as_decimal(
            line.get("quantity"),
            field=f"{where}.quantity",
            places=MILLI,
            largest=MAX_QUANTITY,
            minimum=Decimal(0),
        )
        if quantity <= 0:
            raise ValidationError(
                {f"{where}.quantity": _("The quantity must be more than 0.")}
            )
        unit_price = money(line.get("unit_price"), field=f"{where}.unit_price")
        cleaned.append(
            PurchaseLine(
                shop=shop,
                sku=sku.strip(),
                name=name.strip(),
                quantity=quantity,
                unit_price=unit_price,
            )
        )
    return cleaned


def _same_content(
    purchase: Purchase, given: Purchase, lines: list[PurchaseLine]
) -> bool:
    """Whether a repeated order is the same order (a retry) or a different one."""
    mine = (
        purchase.member_id,
        purchase.store_id,
        purchase.amount,
        purchase.discount,
        purchase.paid_amount,
        purchase.currency,
        purchase.channel,
    )
    theirs = (
        given.member_id,
        given.store_id,
        given.amount,
        given.discount,
        given.paid_amount,
        given.currency,
        given.channel,
    )
    if mine != theirs:
        return False
    stored = [(x.sku, x.name, x.quantity, x.unit_price) for x in purchase.lines.all()]
    return stored == [(x.sku, x.name, x.quantity, x.unit_price) for x in lines]


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
) -> Purchase:
    """Record a purchase, pending or completed at once (see the module docstring).

    A repeated `external_order_id` with the same content returns the first
    purchase (with `replayed = True`); with different content it is refused
    (`OrderExists`). Nothing is written when anything is refused.
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
    # Read before the transaction: a refusal here leaves a caller's
    # transaction usable.
    existing = Purchase.objects.filter(external_order_id=order).first()
    if existing is not None:
        if not _same_content(existing, purchase, line_rows):
            raise OrderExists(
                fields={"external_order_id": [str(OrderExists.default_message)]}
            )
        existing.replayed = True
        existing.member = member
        return existing
    try:
        with transaction.atomic(savepoint=False):
            if complete:
                purchase.status = PurchaseStatus.COMPLETED
                purchase.completed_at = now
            purchase.save(force_insert=True)
            for line in line_rows:
                line.purchase = purchase
            if line_rows:
                PurchaseLine.objects.bulk_create(line_rows)
            # As prefetch_related() leaves it: the response lists the lines
            # without reading them back.
            cached = purchase.lines.all()
            cached._result_cache, cached._prefetch_done = line_rows, True
            purchase._prefetched_objects_cache = {"lines": cached}
            if complete:
                _count_purchase(purchase)
            purchase.replayed = False
            return purchase
    except IntegrityError as exc:
        if "external_order_id" not in str(exc) and "order_uniq" not in str(exc):
            raise
        # Another request recorded this order number between our check and our
        # insert. Its transaction is ours too when a caller wraps us, so the
        # caller's retry (not this one) finds it.
        raise OrderExists(
            _("This order number is being recorded by another request; retry it."),
            fields={"external_order_id": [str(OrderExists.default_message)]},
        ) from exc


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


def refund_purchase(
    *,
    purchase: Purchase,
    amount=None,
    lines: Mapping | None = None,
    reason: str = "",
    external_refund_id: str = "",
    acting_user=None,
    actor_label: str = "",
) -> Refund:
    """Refund a completed purchase: in full (neither `amount` nor `lines`), by
    amount, or by lines `{line_id: quantity}` (the amount is then the lines'
    share of what was paid, unless `amount` is given too).

    Never more than was paid minus what is already refunded, nor more of a line
    than was bought. A retry with the same `external_refund_id` returns the
    first refund (with `replayed = True`).
    """
    if amount is not None:
        amount = money(amount, field="amount")
        if amount <= 0:
            raise ValidationError({"amount": _("The refund must be more than 0.")})
    wanted = _clean_refund_lines(lines) if lines is not None else None
    if not _text_ok(reason, 200):
        raise ValidationError({"reason": _("The reason is up to 200 characters.")})
    if not _text_ok(external_refund_id, 64):
        raise ValidationError(
            {"external_refund_id": _("The refund number is up to 64 characters.")}
        )
    external_refund_id = external_refund_id.strip()

    with transaction.atomic():
        purchase = _lock(purchase)
        if external_refund_id:
            first = Refund.objects.filter(
                purchase=purchase, external_refund_id=external_refund_id
            ).first()
            if first is not None:
                first.purchase, first.replayed = purchase, True
                return first
        if purchase.status == PurchaseStatus.REFUNDED:
            raise RefundTooLarge(
                _("This purchase is already refunded in full."),
                code="nothing_to_refund",
            )
        if purchase.status not in COUNTED_STATUSES:
            raise PurchaseStateError(
                _(
                    "Only a completed purchase can be refunded; a pending one "
                    "is cancelled."
                ),
                code="purchase_not_completed",
            )
        left = purchase.paid_amount - purchase.refunded_amount
        if wanted is not None:
            amount = _refund_lines(purchase, wanted, amount, left)
        elif amount is None:
            amount = left
            PurchaseLine.objects.filter(purchase=purchase).update(
                refunded_quantity=F("quantity")
            )
        if amount <= 0:
            raise RefundTooLarge(
                _("There is nothing left to refund."), code="nothing_to_refund"
            )
        if amount > left:
            message = _("At most %(left)s can still be refunded.") % {"left": left}
            raise RefundTooLarge(message, fields={"amount": [message]})

        refund = Refund.objects.create(
            shop_id=purchase.shop_id,
            purchase=purchase,
            amount=amount,
            reason=reason,
            lines={str(pk): str(qty) for pk, qty in (wanted or {}).items()},
            external_refund_id=external_refund_id,
            created_by=acting_user,
        )
        purchase.refunded_amount += amount
        fully = purchase.refunded_amount == purchase.paid_amount
        purchase.status = (
            PurchaseStatus.REFUNDED if fully else PurchaseStatus.PARTIALLY_REFUNDED
        )
        purchase.save(update_fields=["refunded_amount", "status"])
        _uncount_refund(purchase, amount=amount, fully=fully)
        payload = _payload(purchase)
        payload["refund"] = {
            "id": refund.pk,
            "amount": f"{amount:.2f}",
            "reason": reason,
            "external_refund_id": external_refund_id,
            "lines": refund.lines,
        }
        emit_event(shop=purchase.shop, topic=PURCHASE_REFUNDED, payload=payload)
        refund.replayed = False
        return refund


def _clean_refund_lines(lines) -> dict[int, Decimal]:
    message = _('Send the lines as {"<line id>": quantity}.')
    if not isinstance(lines, Mapping) or not lines or len(lines) > MAX_LINES:
        raise ValidationError({"lines": message})
    wanted: dict[int, Decimal] = {}
    for key, quantity in lines.items():
        text = str(key)
        if not (text.isascii() and text.isdigit() and len(text) < 19):
            raise ValidationError({"lines": message})
        quantity = _as_decimal(
            quantity,
            field="lines",
            places=MILLI,
            largest=MAX_QUANTITY,
            minimum=Decimal(0),
        )
        if quantity <= 0:
            raise ValidationError({"lines": _("Each quantity must be more than 0.")})
        wanted[int(text)] = quantity
    return wanted


def _refund_lines(purchase: Purchase, wanted: dict, amount, left: Decimal) -> Decimal:
    """Mark the lines' quantities refunded; the amount due for them."""
    rows = {line.pk: line for line in PurchaseLine.objects.filter(purchase=purchase)}
    unknown = sorted(set(wanted) - set(rows))
    if unknown:
        raise ValidationError(
            {"lines": _("No such line in this purchase: %(ids)s") % {"ids": unknown}}
        )
    value = Decimal(0)
    for pk, quantity in wanted.items():
        line = rows[pk]
        if quantity > line.quantity - line.refunded_quantity:
            message = _("Line %(id)s: at most %(left)s can still be refunded.") % {
                "id": pk,
                "left": line.quantity - line.refunded_quantity,
            }
            raise RefundTooLarge(
                message, code="refund_exceeds_quantity", fields={"lines": [message]}
            )
        line.refunded_quantity += quantity
        value += quantity * line.unit_price
    PurchaseLine.objects.bulk_update([rows[pk] for pk in wanted], ["refunded_quantity"])
    if amount is not None:
        return amount
    if all(line.refunded_quantity >= line.quantity for line in rows.values()):
        # Everything is back: the rest of the money, so no cent stays behind.
        return left
    # The lines' share of what was paid (the discount spread over the lines).
    if purchase.amount <= 0:
        return Decimal(0)
    share = (value * purchase.paid_amount / purchase.amount).quantize(
        CENT, rounding=ROUND_HALF_UP
    )
    return min(share, left)


def _update_member(member: Member, **values) -> None:
    """ONE atomic UPDATE of the member's row; its new figures land in `member`.

    Compiled by the ORM (so F()/Least/Greatest and the shop scope apply) with
    RETURNING appended: the caller gets the committed-to figures without a
    second round trip. PostgreSQL and SQLite >= 3.35 both support it.
    """
    query = Member.objects.filter(pk=member.pk).query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(connection=connection).as_sql()
    quote = connection.ops.quote_name
    sql = f"{sql} RETURNING {', '.join(quote(name) for name in FIGURES)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise MemberNotFound()
    for name, raw in zip(FIGURES, row, strict=True):
        value = Member._meta.get_field(name).to_python(raw)
        if isinstance(value, datetime) and timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
        elif isinstance(value, Decimal):
            value = value.quantize(CENT)
        setattr(member, name, value)


def _count_purchase(purchase: Purchase) -> None:
    """The purchase now counts: the member's figures and `purchase.completed`."""
    at = Value(purchase.occurred_at, output_field=DateTimeField())
    _update_member(
        purchase.member,
        total_spent=F("total_spent") + purchase.paid_amount,
        order_count=F("order_count") + 1,
        first_purchase_at=Least(Coalesce(F("first_purchase_at"), at), at),
        last_purchase_at=Greatest(Coalesce(F("last_purchase_at"), at), at),
    )
    emit_event(shop=purchase.shop, topic=PURCHASE_COMPLETED, payload=_payload(purchase))


def _uncount_refund(purchase: Purchase, *, amount: Decimal, fully: bool) -> None:
    values = {"total_spent": F("total_spent") - amount}
    if fully:
        # No longer an order. First/last purchase are looked up again only
        # when this purchase was the first or the last one.
        values["order_count"] = F("order_count") - 1
        counted = Purchase.objects.filter(
            member=OuterRef("pk"), status__in=COUNTED_STATUSES
        ).values("occurred_at")
        at = purchase.occurred_at
        values["first_purchase_at"] = Case(
            When(
                first_purchase_at=at,
                then=Subquery(counted.order_by("occurred_at")[:1]),
            ),
            default=F("first_purchase_at"),
        )
        values["last_purchase_at"] = Case(
            When(
                last_purchase_at=at,
                then=Subquery(counted.order_by("-occurred_at")[:1]),
            ),
            default=F("last_purchase_at"),
        )
    _update_member(purchase.member, **values)


def _payload(purchase: Purchase) -> dict:
    member = purchase.member
    return {
        "purchase": {
            "id": purchase.pk,
            "external_order_id": purchase.external_order_id,
            "status": purchase.status,
            "amount": f"{purchase.amount:.2f}",
            "discount": f"{purchase.discount:.2f}",
            "paid_amount": f"{purchase.paid_amount:.2f}",
            "refunded_amount": f"{purchase.refunded_amount:.2f}",
            "currency": purchase.currency,
            "channel": purchase.channel,
            "store_id": purchase.store_id,
            "occurred_at": purchase.occurred_at.isoformat(),
        },
        "member": {
            "id": member.pk,
            "member_code": member.member_code,
            "external_id": member.external_id,
            "total_spent": f"{member.total_spent:.2f}",
            "order_count": member.order_count,
        },
    }
