"""Shapes of the tiers API. Input serializers only coerce types; the services
(tiers.services.manual) hold the rules."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from shops.db import MAX_ID
from tiers.models import ManualMode, TierChange, TierChangeReason, TierPolicy


def perks_of(tier) -> list[str]:
    return [line.strip() for line in (tier.perks or "").splitlines() if line.strip()]


class BenefitsSerializer(serializers.Serializer):
    """What a member of the tier enjoys."""

    discount_percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        help_text=_("Discount on the price, e.g. 10.00 means 10% off (9折)."),
    )
    points_multiplier = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        help_text=_("Points earned are multiplied by this, e.g. 1.50."),
    )
    free_shipping = serializers.BooleanField()
    birthday_points = serializers.IntegerField(
        help_text=_("Points given as a birthday gift.")
    )
    perks = serializers.SerializerMethodField(help_text=_("Other perks, one per item."))

    def get_perks(self, tier) -> list[str]:
        return perks_of(tier)


class BadgeMixin(serializers.Serializer):
    badge = serializers.SerializerMethodField()

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_badge(self, tier) -> str | None:
        if not tier.badge:
            return None
        request = self.context.get("request")
        url = tier.badge.url
        return request.build_absolute_uri(url) if request else url


class TierBriefSerializer(serializers.Serializer):
    """A tier named in the request's language."""

    id = serializers.IntegerField()
    name = serializers.SerializerMethodField()
    rank = serializers.IntegerField()
    colour = serializers.CharField()

    def get_name(self, tier) -> str:
        return tier.display_name()


class TierSerializer(BadgeMixin, TierBriefSerializer):
    """One rung of the ladder, its thresholds and its benefits."""

    name_translations = serializers.DictField(
        child=serializers.CharField(),
        help_text=_('The name per language code, e.g. {"zh-hans": "VIP会员"}.'),
    )
    description = serializers.CharField()
    min_spend = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        help_text=_("Completed spend needed (net of refunds) in the window."),
    )
    min_orders = serializers.IntegerField(
        help_text=_("Completed orders needed in the window.")
    )
    is_entry = serializers.SerializerMethodField(
        help_text=_("The entry tier every member holds without qualifying.")
    )
    benefits = BenefitsSerializer(source="*")

    def get_is_entry(self, tier) -> bool:
        return tier.pk == self.context.get("entry_tier_id")


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = TierPolicy
        fields = ["basis", "window", "window_months", "downgrade", "grace_days"]
        read_only_fields = fields


class LadderSerializer(serializers.Serializer):
    """The shop's ladder, lowest rank first, and how members qualify."""

    policy = PolicySerializer()
    tiers = TierSerializer(many=True)


class ManualLockSerializer(serializers.Serializer):
    tier = TierBriefSerializer(source="manual_tier")
    mode = serializers.ChoiceField(source="manual_mode", choices=ManualMode.choices)
    until = serializers.DateField(
        source="manual_until",
        allow_null=True,
        help_text=_("Last day of the lock (inclusive); null: for good."),
    )
    reason = serializers.CharField(source="manual_reason")
    set_at = serializers.DateTimeField(source="manual_at", allow_null=True)


class ProgressNextSerializer(serializers.Serializer):
    tier = TierBriefSerializer(allow_null=True)
    spend_needed = serializers.DecimalField(
        max_digits=14, decimal_places=2, allow_null=True
    )
    orders_needed = serializers.IntegerField(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    """What the member still needs for the next tier, and to keep this one."""

    spend = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text=_("Completed spend counted in the current window."),
    )
    orders = serializers.IntegerField(
        help_text=_("Completed orders counted in the current window.")
    )
    next_tier = TierBriefSerializer(allow_null=True)
    spend_to_next = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        allow_null=True,
        help_text=_("More spend that reaches the next tier; null at the top."),
    )
    orders_to_next = serializers.IntegerField(
        allow_null=True,
        help_text=_("More orders that reach the next tier; null at the top."),
    )
    spend_to_keep = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        allow_null=True,
        help_text=_("More spend needed by the period end to keep the tier."),
    )
    orders_to_keep = serializers.IntegerField(
        allow_null=True,
        help_text=_("More orders needed by the period end to keep the tier."),
    )
    keep_by = serializers.DateField(
        allow_null=True, help_text=_("The period end; null for a lifetime window.")
    )
    sentence = serializers.CharField(
        help_text=_("The same, in a sentence for people (request language).")
    )


class MemberTierSerializer(BadgeMixin, TierBriefSerializer):
    """The `tier` section of a member: current tier, benefits, period, lock and
    progress. Built from what `tiers.registrations` prefetched for the page."""

    benefits = BenefitsSerializer(source="*")
    since = serializers.DateTimeField(allow_null=True)
    period_ends_on = serializers.DateField(allow_null=True)
    grace_until = serializers.DateField(allow_null=True)
    manual = ManualLockSerializer(allow_null=True)
    progress = ProgressSerializer()

    def to_representation(self, member):
        from tiers.api.sections import tier_section_of

        section = tier_section_of(member, serializer=self)
        if section is None:  # the shop has no ladder yet
            return None
        return super().to_representation(section)


class ManualTierSerializer(serializers.Serializer):
    tier = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text=_("The id of one of the shop's tiers.")
    )
    mode = serializers.ChoiceField(
        choices=ManualMode.choices,
        help_text=_(
            "fixed: exactly this tier while locked; floor: at least this tier, "
            "may still move up."
        ),
    )
    until = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_(
            "Last day of the lock (inclusive, shop's time zone); omit: for good."
        ),
    )
    reason = serializers.CharField(
        max_length=200, help_text=_("Why; kept in the member's tier history.")
    )


class TierChangeSerializer(serializers.ModelSerializer):
    from_tier = TierBriefSerializer(allow_null=True)
    to_tier = TierBriefSerializer()
    reason = serializers.ChoiceField(choices=TierChangeReason.choices)
    reason_label = serializers.CharField(source="get_reason_display")
    detail = serializers.DictField(
        help_text=_(
            "What the move was decided on, e.g. spend, orders and window; and "
            "the staff's reason for a manual move."
        )
    )
    by = serializers.SerializerMethodField()

    class Meta:
        model = TierChange
        fields = [
            "id",
            "from_tier",
            "to_tier",
            "reason",
            "reason_label",
            "detail",
            "created_at",
            "by",
        ]
        read_only_fields = fields

    def get_by(self, change) -> str:
        if change.acting_user_id:
            user = change.acting_user
            return user.get_full_name() or user.get_username()
        return change.actor_label
