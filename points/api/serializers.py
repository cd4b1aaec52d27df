"""Shapes of the points API. Input serializers only coerce types; the services
(points.services.ledger, rewards, cash) hold the rules and refuse bad values
with field messages."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from points.models import (
    EntryKind,
    EntrySource,
    PointsEntry,
    PointsLot,
    Redemption,
    RedemptionKind,
    RedemptionStatus,
    Reward,
)
from shops.db import MAX_ID

# Points are bigints in the ledger; an API request moves far fewer.
MAX_POINTS = 10**12


def _money(**kwargs):
    return serializers.DecimalField(max_digits=12, decimal_places=2, **kwargs)


# ----------------------------------------------------------------- figures


class ExpiringSerializer(serializers.Serializer):
    date = serializers.DateField(
        help_text=_("The day they expire, in the shop's time zone.")
    )
    points = serializers.IntegerField()


class PointsBalanceSerializer(serializers.Serializer):
    """A member's points now (the account row kept with every entry)."""

    balance = serializers.IntegerField(
        help_text=_(
            "All points held, pending ones included; below zero only when a "
            "refund took back points already spent (the shop's policy)."
        )
    )
    pending = serializers.IntegerField(
        help_text=_("Earned but inside the return window: not spendable yet.")
    )
    spendable = serializers.IntegerField(help_text=_("Points that can be spent now."))


class PointsSummarySerializer(PointsBalanceSerializer):
    """The member resource's `points` section."""

    expiring_soon = serializers.IntegerField(
        help_text=_("Points that expire in the next 30 days.")
    )


class PointsAccountSerializer(PointsSummarySerializer):
    lifetime_earned = serializers.IntegerField()
    redeemed = serializers.IntegerField()
    expired = serializers.IntegerField()
    expiring = ExpiringSerializer(
        many=True, help_text=_("Points expiring in the next 30 days, by day.")
    )


# ----------------------------------------------------------------- ledger


class PointsEntrySerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=EntryKind.choices, read_only=True)
    source = serializers.ChoiceField(choices=EntrySource.choices, read_only=True)
    purchase_id = serializers.IntegerField(read_only=True, allow_null=True)
    by = serializers.SerializerMethodField(
        help_text=_("The staff member, API key or task that made the change.")
    )

    class Meta:
        model = PointsEntry
        fields = [
            "id",
            "kind",
            "points",
            "total_after",
            "source",
            "reason",
            "purchase_id",
            "reference",
            "by",
            "created_at",
        ]
        read_only_fields = fields

    def get_by(self, entry) -> str:
        user = entry.acting_user if entry.acting_user_id else None
        if user is not None:
            return user.get_full_name() or user.get_username()
        return entry.actor_label


class PointsLotSerializer(serializers.ModelSerializer):
    entry_id = serializers.IntegerField(read_only=True)
    spendable = serializers.SerializerMethodField(
        help_text=_("False while the lot is inside the return window.")
    )

    class Meta:
        model = PointsLot
        fields = [
            "id",
            "entry_id",
            "points",
            "remaining",
            "expires_at",
            "available_at",
            "spendable",
            "created_at",
        ]
        read_only_fields = fields

    def get_spendable(self, lot) -> bool:
        return lot.available_at <= self.context["now"]


class AdjustmentSerializer(serializers.Serializer):
    points = serializers.IntegerField(
        min_value=-MAX_POINTS,
        max_value=MAX_POINTS,
        help_text=_("Points to add (positive) or take away (negative); not 0."),
    )
    reason = serializers.CharField(
        max_length=200, help_text=_("Why: shown on the member's points history.")
    )


class EntryResultSerializer(PointsEntrySerializer):
    """The entry written, and the member's points after it."""

    account = PointsBalanceSerializer(read_only=True)

    class Meta(PointsEntrySerializer.Meta):
        fields = [*PointsEntrySerializer.Meta.fields, "account"]
        read_only_fields = fields


# ----------------------------------------------------------------- cash


class QuoteInputSerializer(serializers.Serializer):
    order_total = _money(help_text=_("The order's total, in the shop's currency."))
    points = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=-MAX_POINTS,
        max_value=MAX_POINTS,
        help_text=_("Points the member wants to use (optional)."),
    )


class PayInputSerializer(serializers.Serializer):
    external_order_id = serializers.CharField(
        max_length=64, help_text=_("Your order number; paying twice for it is safe.")
    )
    order_total = _money()
    points = serializers.IntegerField(min_value=-MAX_POINTS, max_value=MAX_POINTS)
    store = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID
    )


class QuoteSerializer(serializers.Serializer):
    """What a member may pay of an order with points (nothing is spent)."""

    order_total = _money()
    cash_points = serializers.IntegerField(
        help_text=_("The rate: this many points ...")
    )
    cash_value = _money(help_text=_("... are worth this much."))
    step = serializers.IntegerField(
        help_text=_("Points are used in multiples of this (whole cents).")
    )
    min_points = serializers.IntegerField(
        help_text=_("The fewest points a payment may use.")
    )
    max_share = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        help_text=_("The largest share of an order payable with points (%)."),
    )
    spendable = serializers.IntegerField(
        help_text=_("Points the member can spend now.")
    )
    max_points = serializers.IntegerField(
        help_text=_("The most points this order may use (0: none).")
    )
    max_value = _money(help_text=_("What max_points are worth."))
    points = serializers.IntegerField(
        allow_null=True, help_text=_("The points asked about, if any.")
    )
    value = _money(allow_null=True, help_text=_("What those points are worth."))
    allowed = serializers.BooleanField(
        allow_null=True,
        help_text=_("True when the points asked about may pay for this order."),
    )


# ----------------------------------------------------------------- rewards


class AvailabilitySerializer(serializers.Serializer):
    redeemable = serializers.BooleanField()
    reason = serializers.CharField(
        help_text=_(
            "Why not: reward_not_available, out_of_stock, tier_not_allowed, "
            "limit_reached or insufficient_points; empty when redeemable."
        )
    )
    message = serializers.CharField()


class RewardSerializer(serializers.ModelSerializer):
    image = serializers.SerializerMethodField()
    tiers = serializers.SerializerMethodField(
        help_text=_("Ids of the tiers it is offered to; empty: every tier.")
    )
    availability = serializers.SerializerMethodField(
        help_text=_(
            "With ?member=<id>: whether that member can redeem one now, and why not."
        )
    )

    class Meta:
        model = Reward
        fields = [
            "id",
            "name",
            "description",
            "image",
            "points_price",
            "stock",
            "per_member_limit",
            "tiers",
            "is_active",
            "available_from",
            "available_until",
            "visible_from",
            "visible_until",
            "availability",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image(self, reward) -> str | None:
        if not reward.image:
            return None
        request = self.context.get("request")
        url = reward.image.url
        return request.build_absolute_uri(url) if request else url

    def get_tiers(self, reward) -> list[int]:
        return sorted(tier.pk for tier in reward.tiers.all())

    @extend_schema_field(AvailabilitySerializer(allow_null=True))
    def get_availability(self, reward):
        availability = getattr(reward, "availability", None)
        if availability is None:
            return None
        return {
            "redeemable": availability.redeemable,
            "reason": availability.reason,
            "message": str(availability.message),
        }


class RedemptionInputSerializer(serializers.Serializer):
    reward = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    quantity = serializers.IntegerField(required=False, default=1)
    store = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID
    )


class CancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, max_length=200, allow_blank=True)


class RedemptionSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=RedemptionKind.choices, read_only=True)
    status = serializers.ChoiceField(choices=RedemptionStatus.choices, read_only=True)
    member_id = serializers.IntegerField(read_only=True)
    reward_id = serializers.IntegerField(read_only=True, allow_null=True)
    reward_name = serializers.SerializerMethodField()
    store_id = serializers.IntegerField(read_only=True, allow_null=True)
    purchase_id = serializers.IntegerField(read_only=True, allow_null=True)
    debit_id = serializers.IntegerField(
        read_only=True, help_text=_("The ledger entry that took the points.")
    )
    cash_value = _money(
        read_only=True, help_text=_("What the points paid (points as cash).")
    )

    class Meta:
        model = Redemption
        fields = [
            "id",
            "member_id",
            "kind",
            "reward_id",
            "reward_name",
            "quantity",
            "points",
            "cash_value",
            "external_order_id",
            "purchase_id",
            "store_id",
            "status",
            "debit_id",
            "created_at",
            "cancelled_at",
        ]
        read_only_fields = fields

    def get_reward_name(self, redemption) -> str:
        return redemption.reward.name if redemption.reward_id else ""


class RedemptionResultSerializer(RedemptionSerializer):
    """The redemption, and the member's points after it."""

    account = PointsBalanceSerializer(read_only=True)

    class Meta(RedemptionSerializer.Meta):
        fields = [*RedemptionSerializer.Meta.fields, "account"]
        read_only_fields = fields


# ----------------------------------------------------------------- purchases


class PurchaseTierSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    changed = serializers.BooleanField(
        help_text=_("True when this request moved the member to this tier.")
    )


class PurchasePointsSerializer(PointsBalanceSerializer):
    entry = PointsEntrySerializer(
        allow_null=True,
        help_text=_(
            "The points entry this request wrote: the points this purchase "
            "earned, or the points paid with it that came back on cancelling."
        ),
    )
