"""A member's right to their data: a full export, and erasure.

Export gathers everything the shop holds about one member as JSON-ready data.
Later apps (points, tiers, marketing) add their part with
`register_export_section("points", func)`, `func(member) -> JSON-ready data`,
so this module never imports them.

Erasure anonymises the member in place: the row stays, because purchases (and
later the points ledger) point at it and are kept for the shop's accounts,
but nothing on it, on its timeline or its tags says who the person was.
Erasing twice is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from members.events import MEMBER_UPDATED
from members.models import (
    ConsentChange,
    Member,
    MemberChange,
    MemberStatus,
    MemberTag,
    Purchase,
)
from members.services.members import (
    CONSENT_CHANNELS,
    member_payload,
    record_consent_change,
    record_member_change,
)
from shops.services.events import emit_event
from shops.tenancy import shop_scope

# Fields that say who the person is; blanked on erasure, and scrubbed from
# the values of earlier timeline entries.
PERSONAL_FIELDS = {
    "name": "",
    "phone": "",
    "phone_last4": "",
    "email": "",
    "birthday_month": None,
    "birthday_day": None,
    "birth_year": None,
    "gender": "",
    "notes": "",
    "custom_fields": {},
    "external_id": "",
}
SCRUBBED = "[erased]"
PROFILE_FIELDS = (
    "id",
    "member_code",
    "name",
    "phone",
    "email",
    "birthday_month",
    "birthday_day",
    "birth_year",
    "gender",
    "language",
    "home_store_id",
    "source",
    "referred_by_id",
    "status",
    "joined_at",
    "sms_consent",
    "sms_consent_at",
    "email_consent",
    "email_consent_at",
    "notes",
    "external_id",
    "total_spent",
    "order_count",
    "first_purchase_at",
    "last_purchase_at",
    "created_at",
    "updated_at",
    "erased_at",
)

EXPORT_SECTIONS: dict[str, Callable[[Member], Any]] = {}


def register_export_section(key: str, func: Callable[[Member], Any]) -> None:
    """Add `key: func(member)` to every member data export."""
    EXPORT_SECTIONS[key] = func


def _value(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value.__class__.__name__ == "Decimal":
        return str(value)
    return value


def _purchases(member: Member) -> list[dict]:
    purchases = (
        Purchase.objects.filter(shop_id=member.shop_id, member=member)
        .select_related("store")
        .prefetch_related("lines", "refunds")
        .order_by("occurred_at", "id")
    )
    return [
        {
            "id": p.pk,
            "external_order_id": p.external_order_id,
            "store": p.store.name if p.store_id else None,
            "occurred_at": _value(p.occurred_at),
            "status": p.status,
            "channel": p.channel,
            "currency": p.currency,
            "amount": _value(p.amount),
            "discount": _value(p.discount),
            "paid_amount": _value(p.paid_amount),
            "refunded_amount": _value(p.refunded_amount),
            "note": p.note,
            "lines": [
                {
                    "sku": line.sku,
                    "name": line.name,
                    "quantity": _value(line.quantity),
                    "unit_price": _value(line.unit_price),
                    "refunded_quantity": _value(line.refunded_quantity),
                }
                for line in p.lines.all()
            ],
            "refunds": [
                {
                    "amount": _value(r.amount),
                    "reason": r.reason,
                    "lines": r.lines,
                    "created_at": _value(r.created_at),
                }
                for r in p.refunds.all()
            ],
        }
        for p in purchases
    ]


def export_member_data(*, member: Member) -> dict:
    """Everything the shop holds about `member`, ready for json.dumps."""
    with shop_scope(member.shop):
        member = Member.objects.select_related("shop").get(
            shop_id=member.shop_id, pk=member.pk
        )
        data: dict[str, Any] = {
            "shop": member.shop.name,
            "exported_at": timezone.now().isoformat(),
            "member": {f: _value(getattr(member, f)) for f in PROFILE_FIELDS},
            "custom_fields": member.custom_fields,
            "consent_history": [
                {
                    "channel": c.channel,
                    "granted": c.granted,
                    "source": c.source,
                    "at": _value(c.at),
                }
                for c in ConsentChange.objects.filter(
                    shop_id=member.shop_id, member=member
                ).order_by("at", "id")
            ],
            "tags": [
                {"name": t.tag.name, "source": t.source, "added_at": _value(t.added_at)}
                for t in MemberTag.objects.filter(shop_id=member.shop_id, member=member)
                .select_related("tag")
                .order_by("tag__name")
            ],
            "purchases": _purchases(member),
            "timeline": [
                {
                    "at": _value(c.at),
                    "action": c.action,
                    "by": (c.actor.get_username() if c.actor_id else c.actor_label),
                    "changes": c.changes,
                }
                for c in MemberChange.objects.filter(
                    shop_id=member.shop_id, member=member
                )
                .select_related("actor")
                .order_by("at", "id")
            ],
        }
        for key, section in EXPORT_SECTIONS.items():
            data[key] = section(member)
        return data


def _scrub(changes: dict) -> dict:
    return {
        field: [SCRUBBED if v not in (None, "", {}) else v for v in pair]
        if field in PERSONAL_FIELDS and isinstance(pair, list)
        else pair
        for field, pair in changes.items()
    }


def erase_member(*, member: Member, acting_user=None, actor_label: str = "") -> Member:
    """Anonymise `member`; their purchases stay for the accounts."""
    with shop_scope(member.shop), transaction.atomic():
        member = Member.objects.select_for_update().get(
            shop_id=member.shop_id, pk=member.pk
        )
        if member.status == MemberStatus.ERASED:
            return member
        now = timezone.now()
        for field, blank in PERSONAL_FIELDS.items():
            setattr(member, field, blank)
        for field in CONSENT_CHANNELS:
            if getattr(member, field):
                setattr(member, field, False)
                setattr(member, f"{field}_at", now)
                record_consent_change(
                    member=member, field=field, granted=False, source="erasure", at=now
                )
        member.status = MemberStatus.ERASED
        member.erased_at = now
        member.save()
        MemberTag.objects.filter(shop_id=member.shop_id, member=member).delete()
        history = MemberChange.objects.filter(shop_id=member.shop_id, member=member)
        for entry in history.only("id", "changes"):
            scrubbed = _scrub(entry.changes or {})
            if scrubbed != entry.changes:
                history.filter(pk=entry.pk).update(changes=scrubbed)
        record_member_change(
            member=member,
            action="erased",
            acting_user=acting_user,
            actor_label=actor_label,
        )
        emit_event(
            shop=member.shop,
            topic=MEMBER_UPDATED,
            payload={
                **member_payload(member),
                "changed": sorted({*PERSONAL_FIELDS, "status"} - {"phone_last4"}),
            },
        )
    return member
