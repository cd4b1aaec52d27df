"""What the tiers app adds to the members app through its seams
(`members.extensions`, `members.admin.panels`): the `tier` section of the
member resource, the `tier` filter of `GET /api/v1/members`, the member list's
tier filter and the member page's tier panel. Called from
`TiersConfig.ready()`.
"""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from shops.db import MAX_ID
from tiers.models import MemberTier, Tier


def members_in_tier(queryset, tier: Tier | None, *, entry: Tier | None):
    """`queryset`'s members who hold `tier`. Members without a MemberTier row
    hold the entry tier. An EXISTS on MemberTier's (shop, member) unique index."""
    if tier is None:
        return queryset.none()
    rows = MemberTier.objects.filter(
        shop_id=OuterRef("shop_id"), member_id=OuterRef("pk")
    )
    if entry is not None and tier.pk == entry.pk:
        return queryset.filter(~Exists(rows.exclude(tier_id=tier.pk)))
    return queryset.filter(Exists(rows.filter(tier_id=tier.pk)))


def filter_by_tier(queryset, name, value):
    from shops.tenancy import get_current_shop
    from tiers.services.ladder import entry_tier

    shop = get_current_shop()
    if value != int(value):  # ids are whole numbers
        return queryset.none()
    tier = Tier.objects.filter(shop=shop, pk=int(value)).first()
    return members_in_tier(queryset, tier, entry=entry_tier(shop))


# The API modules are imported when first used, not at start-up: tiers.api
# imports the API's URL module, which collects every app's routes.
def tier_field():
    from tiers.api.serializers import MemberTierSerializer

    return MemberTierSerializer(source="*", read_only=True, allow_null=True)


def prefetch_tiers(queryset):
    from tiers.api.sections import prefetch_member_tiers

    return prefetch_member_tiers(queryset)


def register() -> None:
    from members.extensions import (
        MemberSection,
        register_member_filter,
        register_member_section,
    )
    from shops.services.events import register_event_consumer
    from tiers.services.events import TIERS_MOVED
    from tiers.services.sql import emit_tier_changes

    register_member_section(
        MemberSection(name="tier", field=tier_field, prefetch=prefetch_tiers)
    )
    register_member_filter(
        "tier",
        django_filters.NumberFilter(
            method=filter_by_tier,
            min_value=1,
            max_value=MAX_ID,
            label=_("In tier (tier id; the entry tier includes members never moved)"),
        ),
    )
    register_event_consumer(TIERS_MOVED, emit_tier_changes)
    register_admin()


def register_admin() -> None:
    from members.admin.panels import MemberPanel, register_member_panel
    from members.extensions import register_member_list_filter
    from shops.admin.base import EVERYONE
    from tiers.admin.member import TierListFilter, tier_panel_context

    register_member_list_filter(TierListFilter)
    register_member_panel(
        MemberPanel(
            key="tier",
            title=_("Tier"),
            order=12,
            template="admin/tiers/panels/tier.html",
            context=tier_panel_context,
            roles=EVERYONE,
        )
    )
