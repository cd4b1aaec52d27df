"""Entries: the append-only rows, their idempotency keys and events."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from points import events
from points.models import (
    EntryKind,
    PointsAccount,
    PointsEntry,
)
from shops import rawsql
from shops.services.events import emit_event

from .errors import IdempotencyConflict

TOPICS = {
    EntryKind.EARN: events.POINTS_EARNED,
    EntryKind.REDEEM: events.POINTS_REDEEMED,
    EntryKind.EXPIRE: events.POINTS_EXPIRED,
    EntryKind.REVERSE: events.POINTS_REVERSED,
    EntryKind.ADJUST: events.POINTS_ADJUSTED,
}


_ENTRY_FIELDS = [f for f in PointsEntry._meta.concrete_fields if not f.primary_key]
# Column names from the model's own metadata; values are always parameters.
_COLUMNS = ", ".join(f'"{f.column}"' for f in _ENTRY_FIELDS)
_MARKS = ", ".join(["%s"] * len(_ENTRY_FIELDS))
_ENTRY_SQL = (
    f"INSERT INTO points_pointsentry ({_COLUMNS}) VALUES ({_MARKS}) "  # noqa: S608
    "{conflict}RETURNING id"
)
# The same predicate as the partial unique index, so PostgreSQL infers it.
_ON_KEY_CONFLICT = (
    "ON CONFLICT (shop_id, idempotency_key) WHERE NOT (idempotency_key = '') "
    "DO NOTHING "
)


def _insert_entry(entry: PointsEntry) -> bool:
    """INSERT the entry; False (nothing written) when its key is taken."""
    sql = _ENTRY_SQL.format(conflict=_ON_KEY_CONFLICT if entry.idempotency_key else "")
    return rawsql.run_insert(entry, sql, rawsql.insert_params(entry, _ENTRY_FIELDS))


def _replay(*, shop_id, key, account, points, kind) -> PointsEntry:
    """The first entry written with `key`, if it is the same change."""
    first = PointsEntry.objects.unscoped().get(shop_id=shop_id, idempotency_key=key)
    if first.account_id != account.pk or first.points != points or first.kind != kind:
        raise IdempotencyConflict(fields={"idempotency_key": [_("Already used.")]})
    first.replayed = True
    return first


def _existing(*, shop_id, key, account, points, kind) -> PointsEntry | None:
    if not key:
        return None
    if (
        not PointsEntry.objects.unscoped()
        .filter(shop_id=shop_id, idempotency_key=key)
        .exists()
    ):
        return None
    return _replay(shop_id=shop_id, key=key, account=account, points=points, kind=kind)


def _new_entry(
    account,
    *,
    kind,
    points,
    source,
    reason,
    purchase,
    reference,
    idempotency_key,
    acting_user,
    actor_label,
) -> PointsEntry:
    entry = PointsEntry(
        shop_id=account.shop_id,
        account=account,
        kind=kind,
        points=points,
        total_after=account.balance + points,
        source=source,
        reason=(reason or "")[:200],
        purchase=purchase,
        reference=reference or "",
        idempotency_key=idempotency_key or "",
        acting_user=acting_user if getattr(acting_user, "pk", None) else None,
        actor_label=(actor_label or "")[:100],
    )
    entry.replayed = False
    return entry


def _emit(account: PointsAccount, entry: PointsEntry, shop=None) -> None:
    member = account.member
    shop = shop or member.shop
    emit_event(
        shop=shop,
        topic=TOPICS[entry.kind],
        payload=entry_payload(entry, account=account, member=member),
    )


def entry_payload(entry: PointsEntry, *, account, member) -> dict:
    return {
        "member": {"id": member.pk, "member_code": member.member_code},
        "entry": {
            "id": entry.pk,
            "kind": entry.kind,
            "points": entry.points,
            "total_after": entry.total_after,
            "source": entry.source,
            "reason": entry.reason,
            "reference": entry.reference,
            "purchase_id": entry.purchase_id,
            "created_at": entry.created_at.isoformat() if entry.created_at else None,
        },
        "balance": account.balance,
        "pending": account.pending,
    }


def _check_points(points, *, field: str = "points") -> None:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise ValidationError(
            {field: [_("Enter a whole number of points greater than zero.")]},
            code="invalid",
        )
