"""Input checks and refusals of the purchase services."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from members.models import (
    Purchase,
    PurchaseLine,
)
from shops.errors import DomainError
from shops.models import Shop

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
