"""Shapes of the purchases API: serializers that document them in the schema,
and the plain functions that build them per request (cheaper than running a
serializer on the POS's hot path). Keep the two in step: the contract test
checks every response against the schema."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from members.models import Member, Purchase, PurchaseChannel, PurchaseStatus, Refund

_datetime = serializers.DateTimeField()


def _time(value) -> str | None:
    return None if value is None else _datetime.to_representation(value)


def purchase_data(purchase: Purchase) -> dict:
    return {
        "id": purchase.pk,
        "external_order_id": purchase.external_order_id,
        "member_id": purchase.member_id,
        "store_id": purchase.store_id,
        "amount": f"{purchase.amount:.2f}",
        "discount": f"{purchase.discount:.2f}",
        "paid_amount": f"{purchase.paid_amount:.2f}",
        "refunded_amount": f"{purchase.refunded_amount:.2f}",
        "currency": purchase.currency,
        "channel": purchase.channel,
        "status": purchase.status,
        "occurred_at": _time(purchase.occurred_at),
        "completed_at": _time(purchase.completed_at),
        "cancelled_at": _time(purchase.cancelled_at),
        "note": purchase.note,
        "created_at": _time(purchase.created_at),
    }


def member_figures(member: Member) -> dict:
    return {
        "id": member.pk,
        "member_code": member.member_code,
        "external_id": member.external_id,
        "total_spent": f"{member.total_spent:.2f}",
        "order_count": member.order_count,
        "first_purchase_at": _time(member.first_purchase_at),
        "last_purchase_at": _time(member.last_purchase_at),
    }


def refund_data(refund: Refund) -> dict:
    return {
        "id": refund.pk,
        "amount": f"{refund.amount:.2f}",
        "reason": refund.reason,
        "lines": {str(k): str(v) for k, v in (refund.lines or {}).items()},
        "external_refund_id": refund.external_refund_id,
        "created_at": _time(refund.created_at),
    }


def detail_data(purchase: Purchase, *, refunds=None) -> dict:
    """The purchase with its lines, refunds and the member's figures.

    `refunds=None` reads them (or uses the prefetched ones); pass a list to
    skip the read (e.g. [] for a purchase just recorded).
    """
    if refunds is None:
        refunds = purchase.refunds.all()
    return {
        **purchase_data(purchase),
        "lines": [
            {
                "id": line.pk,
                "sku": line.sku,
                "name": line.name,
                "quantity": f"{line.quantity:.3f}",
                "unit_price": f"{line.unit_price:.2f}",
                "refunded_quantity": f"{line.refunded_quantity:.3f}",
            }
            for line in purchase.lines.all()
        ],
        "refunds": [refund_data(refund) for refund in refunds],
        "member": member_figures(purchase.member),
    }


def _money(**kwargs):
    return serializers.DecimalField(max_digits=12, decimal_places=2, **kwargs)


def _quantity(**kwargs):
    return serializers.DecimalField(max_digits=10, decimal_places=3, **kwargs)


class PurchaseLineSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    quantity = _quantity(read_only=True)
    unit_price = _money(read_only=True)
    refunded_quantity = _quantity(read_only=True)


class RefundSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    amount = _money(read_only=True)
    reason = serializers.CharField(read_only=True)
    lines = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text=_("Quantities refunded per line id; empty for refunds by amount."),
    )
    external_refund_id = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class MemberFiguresSerializer(serializers.Serializer):
    """The member's figures after this change: completed spend net of refunds,
    completed orders, first and last purchase time."""

    id = serializers.IntegerField(read_only=True)
    member_code = serializers.CharField(read_only=True)
    external_id = serializers.CharField(read_only=True)
    total_spent = serializers.DecimalField(
        max_digits=14, decimal_places=2, read_only=True
    )
    order_count = serializers.IntegerField(read_only=True)
    first_purchase_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_purchase_at = serializers.DateTimeField(read_only=True, allow_null=True)


class PurchaseSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    external_order_id = serializers.CharField(read_only=True)
    member_id = serializers.IntegerField(read_only=True)
    store_id = serializers.IntegerField(read_only=True, allow_null=True)
    amount = _money(read_only=True)
    discount = _money(read_only=True)
    paid_amount = _money(read_only=True)
    refunded_amount = _money(read_only=True)
    currency = serializers.CharField(read_only=True)
    channel = serializers.ChoiceField(choices=PurchaseChannel.choices, read_only=True)
    status = serializers.ChoiceField(choices=PurchaseStatus.choices, read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    completed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    cancelled_at = serializers.DateTimeField(read_only=True, allow_null=True)
    note = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class PurchaseDetailSerializer(PurchaseSerializer):
    lines = PurchaseLineSerializer(many=True, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)
    member = MemberFiguresSerializer(read_only=True)


class RefundResultSerializer(serializers.Serializer):
    refund = RefundSerializer(read_only=True)
    purchase = PurchaseDetailSerializer(read_only=True)


class PurchaseLineInputSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64, required=False, allow_blank=True)
    name = serializers.CharField(max_length=200)
    quantity = _quantity(min_value=Decimal("0.001"))
    unit_price = _money(min_value=0)


class PurchaseCreateSerializer(serializers.Serializer):
    """Documents the body of POST /purchases (read by the view and the service)."""

    member_id = serializers.IntegerField(
        required=False, min_value=1, help_text=_("One of member_id, member_code, ...")
    )
    member_code = serializers.CharField(required=False, max_length=16)
    member_external_id = serializers.CharField(required=False, max_length=64)
    external_order_id = serializers.CharField(
        max_length=64, help_text=_("Your order number; unique in the shop.")
    )
    amount = _money(min_value=0, help_text=_("Before the discount."))
    discount = _money(min_value=0, required=False, default="0.00")
    paid_amount = _money(
        min_value=0,
        required=False,
        help_text=_("What the customer paid; amount minus discount when not given."),
    )
    currency = serializers.CharField(
        required=False, max_length=3, help_text=_("The shop's currency only.")
    )
    store_id = serializers.IntegerField(required=False, min_value=1)
    store_code = serializers.CharField(required=False, max_length=32)
    channel = serializers.ChoiceField(
        choices=PurchaseChannel.choices, required=False, default="store"
    )
    occurred_at = serializers.DateTimeField(
        required=False, help_text=_("When it was bought; now when not given.")
    )
    complete = serializers.BooleanField(
        required=False,
        default=True,
        help_text=_("false leaves it pending until /complete (it counts from then)."),
    )
    note = serializers.CharField(required=False, max_length=200, allow_blank=True)
    lines = PurchaseLineInputSerializer(many=True, required=False)


class PurchaseRefundSerializer(serializers.Serializer):
    amount = _money(min_value=Decimal("0.01"), required=False)
    lines = serializers.DictField(
        child=_quantity(min_value=Decimal("0.001")),
        required=False,
        help_text=_('Quantities per line id, e.g. {"12": "1"}.'),
    )
    reason = serializers.CharField(required=False, max_length=200, allow_blank=True)
    external_refund_id = serializers.CharField(
        required=False,
        max_length=64,
        help_text=_("Your refund number; a retry with it is safe."),
    )


class PurchaseCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, max_length=200, allow_blank=True)
