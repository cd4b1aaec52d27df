"""The `tier` section of the member resource, built for a whole page at once.

`prefetch(queryset)` (registered in `tiers.registrations`) loads the page's
MemberTier rows with the member query (one extra statement); the progress of
every member on the page is computed on first use by
`tiers.services.progress.tier_progress_many` (a fixed number of statements for
the page) and kept on the root serializer for the rest of the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from shops.tenancy import current_shop_or_none
from tiers.models import MemberTier

ROWS_ATTR = "tier_rows"
# Where the page's progress is kept on the root (list) serializer.
PROGRESS_ATTR = "_tier_progress_page"
ENTRY_ATTR = "_tier_entry"


def prefetch_member_tiers(queryset):
    return queryset.prefetch_related(
        Prefetch(
            "tier_states",
            queryset=MemberTier.objects.select_related("tier", "manual_tier"),
            to_attr=ROWS_ATTR,
        )
    )


def member_tier_row(member) -> MemberTier | None:
    """The member's MemberTier row, from the prefetch when there was one."""
    rows = getattr(member, ROWS_ATTR, None)
    if rows is None:
        rows = list(
            MemberTier.objects.filter(
                shop_id=member.shop_id, member=member
            ).select_related("tier", "manual_tier")[:1]
        )
        setattr(member, ROWS_ATTR, rows)
    return rows[0] if rows else None


@dataclass
class TierSection:
    """What MemberTierSerializer reads: the tier's own fields (name, rank,
    colour, badge, benefits) through `__getattr__`, plus the member's period,
    lock and progress."""

    tier: Any
    since: Any
    period_ends_on: Any
    grace_until: Any
    manual: MemberTier | None
    progress: Any

    def __getattr__(self, name):
        # Only called for names the dataclass lacks: the tier's fields.
        if name == "tier":
            raise AttributeError(name)
        return getattr(self.tier, name)

    def display_name(self, language=None) -> str:
        return self.tier.display_name(language)


def _page_progress(serializer, member):
    """Progress of `member`, computed for the serializer's whole page at once
    when it is part of a list (`many=True`), else for the member alone."""
    root = serializer.root if serializer is not None else None
    page = getattr(root, "instance", None)
    if root is not None and root is not serializer and isinstance(page, list | tuple):
        cached = getattr(root, PROGRESS_ATTR, None)
        if cached is None:
            from tiers.services.progress import tier_progress_many

            cached = tier_progress_many(list(page))
            setattr(root, PROGRESS_ATTR, cached)
        if member.pk in cached:
            return cached[member.pk]
    from tiers.services.progress import tier_progress

    return tier_progress(member)


def _shop_of(member):
    """The member's shop without a query per member: the scope's shop."""
    shop = current_shop_or_none()
    if shop is not None and shop.pk == member.shop_id:
        return shop
    return member.shop


def _entry_tier(serializer, member):
    """The shop's entry tier, looked up once per page."""
    root = serializer.root if serializer is not None else None
    if root is not None and hasattr(root, ENTRY_ATTR):
        return getattr(root, ENTRY_ATTR)
    from tiers.services.ladder import entry_tier

    tier = entry_tier(_shop_of(member))
    if root is not None:
        setattr(root, ENTRY_ATTR, tier)
    return tier


def tier_section_of(member, serializer=None) -> TierSection | None:
    """The member's tier section; None when the shop has no ladder."""
    row = member_tier_row(member)
    if row is None:
        tier = _entry_tier(serializer, member)
        if tier is None:
            return None
        return TierSection(
            tier=tier,
            since=None,
            period_ends_on=None,
            grace_until=None,
            manual=None,
            progress=_page_progress(serializer, member),
        )
    return TierSection(
        tier=row.tier,
        since=row.since,
        period_ends_on=row.period_ends_on,
        grace_until=row.grace_until,
        manual=row if row.manual_tier_id else None,
        progress=_page_progress(serializer, member),
    )
