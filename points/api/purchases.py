"""The member's tier and points in the purchases API's responses.

Built as plain dicts from the objects the settlement returned (the POS's hot
path); the serializers document them in the schema (keep the two in step).
"""

from __future__ import annotations

from members.api.purchase_serializers import (
    MemberFiguresSerializer,
    PurchaseDetailSerializer,
    RefundResultSerializer,
    _time,
)
from tiers.services.ladder import tier_of

from .serializers import PurchasePointsSerializer, PurchaseTierSerializer


def tier_data(purchase) -> dict | None:
    """The member's tier after this request: the one the settlement moved them
    to, else their current one (None when the shop has no ladder)."""
    change = getattr(purchase, "tier_change", None)
    if change is not None and change.to_tier_id is not None:
        tier, changed = change.to_tier, True
    else:
        tier, changed = tier_of(purchase.member), False
    if tier is None:
        return None
    return {"id": tier.pk, "name": tier.display_name(), "changed": changed}


def entry_data(entry) -> dict | None:
    if entry is None:
        return None
    return {
        "id": entry.pk,
        "kind": entry.kind,
        "points": entry.points,
        "total_after": entry.total_after,
        "source": entry.source,
        "reason": entry.reason,
        "purchase_id": entry.purchase_id,
        "reference": entry.reference,
        "by": entry.actor_label,
        "created_at": _time(entry.created_at),
    }


class SettledMemberFiguresSerializer(MemberFiguresSerializer):
    tier = PurchaseTierSerializer(read_only=True, allow_null=True)
    points = PurchasePointsSerializer(read_only=True)


class SettledPurchaseDetailSerializer(PurchaseDetailSerializer):
    member = SettledMemberFiguresSerializer(read_only=True)


class SettledRefundResultSerializer(RefundResultSerializer):
    purchase = SettledPurchaseDetailSerializer(read_only=True)


__all__ = [
    "SettledPurchaseDetailSerializer",
    "SettledRefundResultSerializer",
    "entry_data",
    "tier_data",
]
