"""The `tier.changed` webhook event: its topic, registration and payload.

The set-based writers (tiers.services.sql) build the same payload in SQL;
keep the two in step."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from shops.services.events import register_event_type

TIER_CHANGED = "tier.changed"
# Internal, never sent to a webhook: one per statement that moved members in
# bulk (a recalculation, period ends, a rule change). Its consumer writes
# the `tier.changed` event of each of those moves (tiers.services.sql).
TIERS_MOVED = "tiers.moved"

register_event_type(TIER_CHANGED, _("A member moved to another tier"))


def tier_brief(tier) -> dict | None:
    if tier is None:
        return None
    return {"id": tier.pk, "name": tier.name, "rank": tier.rank}


def tier_changed_payload(*, member, change, from_tier, to_tier) -> dict:
    return {
        "member": {
            "id": member.pk,
            "member_code": member.member_code,
            "external_id": member.external_id,
        },
        "change_id": change.pk,
        "from_tier": tier_brief(from_tier),
        "to_tier": tier_brief(to_tier),
        "reason": change.reason,
    }
