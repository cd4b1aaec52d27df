"""Refunds: in full, by amount or by lines."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from members.events import PURCHASE_REFUNDED
from members.models import (
    Purchase,
    PurchaseLine,
    PurchaseStatus,
    Refund,
)
from members.models.purchase import COUNTED_STATUSES
from shops.services.events import emit_event

from .checks import (
    CENT,
    PurchaseStateError,
    RefundTooLarge,
    _clean_refund_lines,
    _text_ok,
    money,
)
from .figures import _payload, _uncount_refund
from .recording import _lock


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
