"""Credits: one entry and one lot, paying a negative balance first."""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from points.models import (
    EntryKind,
    PointsEntry,
    PointsLot,
)
from points.services import rules
from shops import rawsql
from shops.services.events.outbox import relay_after_commit

from .accounts import _refresh_pending, _save_account, account_for
from .entries import (
    _ENTRY_FIELDS,
    _ENTRY_SQL,
    _ON_KEY_CONFLICT,
    TOPICS,
    _check_points,
    _emit,
    _insert_entry,
    _new_entry,
    _replay,
    entry_payload,
)
from .errors import IdempotencyConflict

# `credit(expires_at=...)` left out: the shop's policy decides.
POLICY_DEFAULT = object()


def _new_lots(account, entry, specs, *, now) -> list[PointsLot]:
    """Lots for `specs` [(points, expires_at, available_at)]; a negative balance
    (debt) is paid first, out of the first lots."""
    debt = max(0, -account.balance)
    lots = []
    for points, expires_at, available_at in specs:
        paid = min(debt, points)
        debt -= paid
        lot = PointsLot(
            shop_id=account.shop_id,
            account=account,
            entry=entry,
            points=points,
            remaining=points - paid,
            expires_at=expires_at,
            available_at=available_at,
        )
        lots.append(lot)
        if available_at > now:
            account.pending += lot.remaining
    if len(lots) == 1:
        rawsql.insert(lots[0])
    else:
        PointsLot.objects.unscoped().bulk_create(lots)
    return lots


def credit(
    *,
    member,
    points: int,
    kind: str,
    source: str,
    reason: str = "",
    purchase=None,
    reference: str = "",
    idempotency_key: str = "",
    expires_at=POLICY_DEFAULT,
    available_at=None,
    acting_user=None,
    actor_label: str = "",
) -> PointsEntry:
    """Add `points` (> 0) to the member's balance as one entry and one lot.

    `expires_at`: left out, the shop's policy decides; None never expires.
    `available_at` after now: pending (not spendable) until then.
    """
    _check_points(points)
    # No savepoint (this is on the purchase hot path): nothing is raised
    # inside the block but database errors; a refusal is raised after it.
    with transaction.atomic(savepoint=False):
        now = timezone.now()
        shop = member.shop
        if expires_at is POLICY_DEFAULT:
            expires_at = rules.expiry_for(
                rules.policy_for(shop, cached=False), shop=shop, at=now
            )
        available_at = available_at or now
        account = account_for(member, lock=True)
        _refresh_pending(account, now)
        entry = _new_entry(
            account,
            kind=kind,
            points=points,
            source=source,
            reason=reason,
            purchase=purchase,
            reference=reference,
            idempotency_key=idempotency_key,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        lot = PointsLot(
            shop_id=account.shop_id,
            account=account,
            points=points,
            remaining=points - min(points, max(0, -account.balance)),
            expires_at=expires_at,
            available_at=available_at,
        )
        before = (account.balance, account.pending, account.lifetime_earned)
        account.balance += points
        if available_at > now:
            account.pending += lot.remaining
        if kind == EntryKind.EARN:
            account.lifetime_earned += points
        if connection.vendor == "postgresql":
            written = _write_credit(account, entry, lot, shop)
        else:
            written = _write_credit_portably(account, entry, lot, shop)
        if written:
            return entry
        account.balance, account.pending, account.lifetime_earned = before
        result = _replayed_or_refusal(
            shop_id=shop.pk,
            key=idempotency_key,
            account=account,
            points=points,
            kind=kind,
        )
    if isinstance(result, Exception):
        raise result
    return result


def _write_credit_portably(account, entry, lot, shop) -> bool:
    if not _insert_entry(entry):
        return False
    lot.entry = entry
    rawsql.insert(lot)
    _save_account(account)
    _emit(account, entry, shop)
    return True


_LOT_FIELDS = [f for f in PointsLot._meta.concrete_fields if not f.primary_key]
# One statement for the entry, its lot, the account and the event: the
# purchase hot path. No row back: the key was used before (nothing written).
# Column names from the models' own metadata; values are always parameters.
_CREDIT_SQL = (  # noqa: S608
    "WITH e AS ({entry}), "
    "l AS (INSERT INTO points_pointslot ({lot_columns}) "
    "SELECT {lot_values} FROM e), "
    "a AS (UPDATE points_pointsaccount SET balance = %s, pending = %s, "
    "lifetime_earned = %s, updated_at = %s "
    "WHERE shop_id = %s AND id = %s AND EXISTS (SELECT 1 FROM e)), "
    "o AS (INSERT INTO shops_outboxevent (shop_id, topic, payload, created_at) "
    "SELECT %s, %s, jsonb_set(%s::jsonb, '{{{{entry,id}}}}', to_jsonb(e.id)), %s "
    "FROM e) "
    "SELECT id FROM e"
).format(
    entry="{entry}",
    lot_columns=", ".join(f'"{f.column}"' for f in _LOT_FIELDS),
    lot_values=", ".join("e.id" if f.name == "entry" else "%s" for f in _LOT_FIELDS),
)


def _write_credit(account, entry, lot, shop) -> bool:
    conflict = _ON_KEY_CONFLICT if entry.idempotency_key else ""
    sql = _CREDIT_SQL.format(entry=_ENTRY_SQL.format(conflict=conflict))
    params = rawsql.insert_params(entry, _ENTRY_FIELDS)
    params += rawsql.insert_params(lot, [f for f in _LOT_FIELDS if f.name != "entry"])
    payload = entry_payload(entry, account=account, member=account.member)
    params += [
        account.balance,
        account.pending,
        account.lifetime_earned,
        entry.created_at,
        account.shop_id,
        account.pk,
        account.shop_id,
        TOPICS[entry.kind],
        json.dumps(payload, cls=DjangoJSONEncoder),
        entry.created_at,
    ]
    if not rawsql.run_insert(entry, sql, params):
        return False
    # The outbox row was written above: hand it over after the commit, as
    # emit_event does.
    relay_after_commit()
    return True


def _replayed_or_refusal(*, shop_id, key, account, points, kind):
    try:
        return _replay(
            shop_id=shop_id, key=key, account=account, points=points, kind=kind
        )
    except IdempotencyConflict as refusal:
        return refusal
