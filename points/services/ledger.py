"""The points ledger: every change of a balance goes through this module.

Figures (see points.models.ledger for the invariants the tests check):
- `account.balance` is the sum of the account's entries (spendable + pending);
- `account.pending` is the part of it that sits in lots still inside the return
  window (`available_at` > now). It is refreshed on every write to the account
  and by `release_pending` (beat), so `spendable = balance - pending`;
- every credit makes one lot; every debit consumes open lots, oldest expiry
  first (never-expiring last), then oldest lot, and records which
  (`LotConsumption`);
- the balance goes below zero only by a debit with `allow_negative` (a
  refund's reversal under the shop's "go negative" policy); the next credits
  pay that debt before they form lots with remaining points.

Every write locks the account row (`SELECT ... FOR UPDATE`) and writes the
entry, its lots and the account in the same transaction, so two writes to one
account run one after the other and never overspend. A write with an
`idempotency_key` is done once per shop: a retry returns the first entry (with
`entry.replayed = True`); the same key with another member, kind or number of
points is refused (`IdempotencyConflict`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from points import events
from points.models import (
    EntryKind,
    EntrySource,
    LotConsumption,
    PointsAccount,
    PointsEntry,
    PointsLot,
)
from points.services import rules
from shops import rawsql
from shops.errors import DomainError
from shops.services.events import emit_event
from shops.services.events.outbox import request_relay

__all__ = [
    "IdempotencyConflict",
    "InsufficientPoints",
    "PointsError",
    "account_for",
    "adjust",
    "credit",
    "debit",
    "expiring_soon",
    "expiring_soon_total",
    "members_with_points_expiring",
    "release_pending",
    "restore_consumptions",
    "takeable",
]

# `credit(expires_at=...)` left out: the shop's policy decides.
POLICY_DEFAULT = object()


class PointsError(DomainError, ValidationError):
    """A points write the rules refuse.

    Both a `DomainError` (the API answers `{"error": {"code": ...}}` with
    `status_code`) and a Django `ValidationError` (forms and the admin show
    `message`; `exc.code` is the error code).
    """

    def __init__(self, message=None, *, fields=None) -> None:
        message = message if message is not None else self.default_message
        ValidationError.__init__(self, message, code=self.code)
        self.message = message
        self.fields = fields or {}

    def __str__(self) -> str:
        return str(self.message)


class InsufficientPoints(PointsError):
    code = "insufficient_points"
    status_code = 409
    default_message = _("The member does not have enough points to spend.")


class IdempotencyConflict(PointsError):
    code = "idempotency_conflict"
    status_code = 422
    default_message = _(
        "This idempotency key was already used for a different points change."
    )


TOPICS = {
    EntryKind.EARN: events.POINTS_EARNED,
    EntryKind.REDEEM: events.POINTS_REDEEMED,
    EntryKind.EXPIRE: events.POINTS_EXPIRED,
    EntryKind.REVERSE: events.POINTS_REVERSED,
    EntryKind.ADJUST: events.POINTS_ADJUSTED,
}


# --- accounts -----------------------------------------------------------------

_INSERT_ACCOUNT = (
    "INSERT INTO points_pointsaccount "
    "(shop_id, member_id, balance, pending, lifetime_earned, redeemed, expired, "
    "updated_at) VALUES (%s, %s, 0, 0, 0, 0, 0, %s) "
    "ON CONFLICT (shop_id, member_id) DO NOTHING"
)


def account_for(member, *, lock: bool = False) -> PointsAccount:
    """The member's points account, created on first use.

    With `lock=True` the row is locked (`SELECT ... FOR UPDATE`) until the end
    of the caller's transaction: call it inside `transaction.atomic()`.
    """
    queryset = PointsAccount.objects.unscoped().filter(
        shop_id=member.shop_id, member_id=member.pk
    )
    if lock:
        queryset = queryset.select_for_update()
    account = queryset.first()
    if account is None:
        # Raw SQL: names the member's shop itself. A concurrent first write
        # waits here for the other's row, then both lock the same row.
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_ACCOUNT, [member.shop_id, member.pk, timezone.now()])
        account = queryset.get()
    account.member = member
    return account


def _lock_account(account_id: int, shop_id: int) -> PointsAccount:
    return (
        PointsAccount.objects.unscoped()
        .select_for_update()
        .select_related("member")
        .get(shop_id=shop_id, pk=account_id)
    )


def _refresh_pending(account: PointsAccount, now) -> None:
    """Bring `account.pending` up to date (lots whose return window ended)."""
    if account.pending <= 0:
        return
    pending = (
        PointsLot.objects.unscoped()
        .filter(
            shop_id=account.shop_id,
            account_id=account.pk,
            remaining__gt=0,
            available_at__gt=now,
        )
        .aggregate(total=Sum("remaining"))["total"]
        or 0
    )
    account.pending = pending


def _save_account(account: PointsAccount) -> None:
    PointsAccount.objects.unscoped().filter(
        shop_id=account.shop_id, pk=account.pk
    ).update(
        balance=account.balance,
        pending=account.pending,
        lifetime_earned=account.lifetime_earned,
        redeemed=account.redeemed,
        expired=account.expired,
        updated_at=timezone.now(),
    )


# --- entries ------------------------------------------------------------------

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
    params = [
        f.get_db_prep_save(f.pre_save(entry, True), connection=connection)
        for f in _ENTRY_FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    entry.pk = row[0]
    entry._state.adding = False
    entry._state.db = connection.alias
    return True


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


# --- credit -------------------------------------------------------------------


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
    params = [
        f.get_db_prep_save(f.pre_save(entry, True), connection=connection)
        for f in _ENTRY_FIELDS
    ]
    params += [
        f.get_db_prep_save(f.pre_save(lot, True), connection=connection)
        for f in _LOT_FIELDS
        if f.name != "entry"
    ]
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
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    entry.pk = row[0]
    entry._state.adding = False
    entry._state.db = connection.alias
    # The outbox row was written above: hand it over after the commit, as
    # emit_event does.
    transaction.on_commit(request_relay, robust=True)
    return True


def _replayed_or_refusal(*, shop_id, key, account, points, kind):
    try:
        return _replay(
            shop_id=shop_id, key=key, account=account, points=points, kind=kind
        )
    except IdempotencyConflict as refusal:
        return refusal


# --- debit --------------------------------------------------------------------


def _consume(account, entry, lots, points, *, now) -> int:
    """Take `points` from `lots` in order; returns the points not found."""
    need = points
    changed, consumptions = [], []
    for lot in lots:
        if need <= 0:
            break
        take = min(lot.remaining, need)
        if take <= 0:
            continue
        lot.remaining -= take
        need -= take
        if lot.available_at > now:
            account.pending -= take
        changed.append(lot)
        consumptions.append(
            LotConsumption(shop_id=account.shop_id, entry=entry, lot=lot, points=take)
        )
    if changed:
        _update_remaining(account.shop_id, changed)
        LotConsumption.objects.unscoped().bulk_create(consumptions)
    return need


def _update_remaining(shop_id: int, lots: list[PointsLot]) -> None:
    if connection.vendor != "postgresql":
        PointsLot.objects.unscoped().bulk_update(lots, ["remaining"])
        return
    # One statement for any number of lots; raw SQL names the shop itself.
    values = ", ".join(["(%s, %s)"] * len(lots))
    params: list = []
    for lot in lots:
        params += [lot.pk, lot.remaining]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE points_pointslot AS l SET remaining = v.remaining "  # noqa: S608
            f"FROM (VALUES {values}) AS v(id, remaining) "
            "WHERE l.shop_id = %s AND l.id = v.id",
            [*params, shop_id],
        )


def _open_lots(account) -> list[PointsLot]:
    return list(
        PointsLot.objects.unscoped()
        .filter(shop_id=account.shop_id, account_id=account.pk, remaining__gt=0)
        # NULL (never) last: PostgreSQL's default order, and the index's.
        .order_by(F("expires_at").asc(nulls_last=True), "id")
    )


def _spending_order(lots, *, now, prefer_lots_of=None, allow_negative=False):
    """The lots a debit takes, in order: `prefer_lots_of`'s lots (even pending),
    then spendable ones (available, not past their expiry: those wait for the
    expiry run), oldest expiry first."""
    preferred_id = getattr(prefer_lots_of, "pk", prefer_lots_of)
    preferred, ready, rest = [], [], []
    for lot in lots:
        if preferred_id and lot.entry_id == preferred_id:
            preferred.append(lot)
        elif lot.available_at <= now and (
            lot.expires_at is None or lot.expires_at > now
        ):
            ready.append(lot)
        else:
            rest.append(lot)
    if allow_negative:
        # The debt would be paid from these lots anyway (or they expire):
        # taking them now keeps the lots' remaining equal to the balance.
        return preferred + ready + rest
    return preferred + ready


def takeable(account, *, prefer_lots_of=None, now=None) -> int:
    """What a debit could take now without going negative: the spendable lots
    plus the lots of `prefer_lots_of` (even pending). Lock the account first
    (`account_for(member, lock=True)`) for the figure to hold."""
    now = now or timezone.now()
    order = _spending_order(_open_lots(account), now=now, prefer_lots_of=prefer_lots_of)
    return sum(lot.remaining for lot in order)


def debit(
    *,
    member,
    points: int,
    kind: str,
    source: str,
    reason: str = "",
    purchase=None,
    reference: str = "",
    idempotency_key: str = "",
    acting_user=None,
    actor_label: str = "",
    allow_negative: bool = False,
    prefer_lots_of=None,
) -> PointsEntry:
    """Take `points` (> 0) from the member's spendable lots (entry.points < 0).

    Raises `InsufficientPoints` when fewer are spendable, unless
    `allow_negative` (a refund under "go negative"): then the balance goes
    below zero by what was missing. `prefer_lots_of`: an entry whose lots are
    taken first, even while pending (a refund takes its purchase's points).
    """
    _check_points(points)
    with transaction.atomic():
        now = timezone.now()
        account = account_for(member, lock=True)
        _refresh_pending(account, now)
        order = _spending_order(
            _open_lots(account),
            now=now,
            prefer_lots_of=prefer_lots_of,
            allow_negative=allow_negative,
        )
        if not allow_negative and sum(lot.remaining for lot in order) < points:
            first = _existing(
                shop_id=account.shop_id,
                key=idempotency_key,
                account=account,
                points=-points,
                kind=kind,
            )
            if first is not None:
                return first
            raise InsufficientPoints(fields={"points": [_("Not enough points.")]})
        entry = _new_entry(
            account,
            kind=kind,
            points=-points,
            source=source,
            reason=reason,
            purchase=purchase,
            reference=reference,
            idempotency_key=idempotency_key,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        if not _insert_entry(entry):
            return _replay(
                shop_id=account.shop_id,
                key=idempotency_key,
                account=account,
                points=-points,
                kind=kind,
            )
        _consume(account, entry, order, points, now=now)
        account.balance -= points
        if kind == EntryKind.REDEEM:
            account.redeemed += points
        elif kind == EntryKind.REVERSE and source == EntrySource.REFUND:
            account.lifetime_earned -= points
        _save_account(account)
        _emit(account, entry)
        return entry


# --- adjust -------------------------------------------------------------------


def adjust(
    *,
    member,
    points: int,
    reason: str,
    acting_user=None,
    actor_label: str = "",
    idempotency_key: str = "",
) -> PointsEntry:
    """A staff correction: signed, non-zero points with a reason.

    Positive: a credit (a lot with the policy's expiry). Negative: a debit of
    spendable points (refused with `InsufficientPoints` when too few).
    """
    errors = {}
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        errors["points"] = [_("Enter a whole number of points other than zero.")]
    if not (reason or "").strip():
        errors["reason"] = [_("Say why the points are adjusted.")]
    if errors:
        raise ValidationError(errors, code="invalid")
    common = {
        "member": member,
        "kind": EntryKind.ADJUST,
        "source": EntrySource.MANUAL,
        "reason": reason.strip(),
        "idempotency_key": idempotency_key,
        "acting_user": acting_user,
        "actor_label": actor_label,
    }
    if points > 0:
        return credit(points=points, **common)
    return debit(points=-points, **common)


# --- restore ------------------------------------------------------------------


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def restore_consumptions(
    *,
    debit_entry: PointsEntry,
    reason: str,
    kind: str = EntryKind.REVERSE,
    source: str,
    acting_user=None,
    actor_label: str = "",
    idempotency_key: str = "",
    fraction=None,
) -> PointsEntry | None:
    """Give back what a debit took, each part as a new lot with the ORIGINAL
    lot's expiry (a cancelled redemption). Already-expired parts come back due
    and go with the next expiry run.

    `fraction` (0..1, e.g. a partial refund): give back round(points * fraction)
    (half up). Several partial restores of one debit never give back more than
    it took: the entry's reference is "restore:<debit id>" and earlier ones
    count. Returns None when nothing is left to give back.
    """
    if debit_entry.points >= 0:
        raise ValidationError(_("Only a debit can be given back."), code="invalid")
    with transaction.atomic():
        now = timezone.now()
        account = _lock_account(debit_entry.account_id, debit_entry.shop_id)
        _refresh_pending(account, now)
        reference = f"restore:{debit_entry.pk}"
        taken = -debit_entry.points
        already = (
            PointsEntry.objects.unscoped()
            .filter(
                shop_id=account.shop_id,
                account_id=account.pk,
                reference=reference,
            )
            .aggregate(total=Sum("points"))["total"]
            or 0
        )
        target = taken
        if fraction is not None:
            target = _round(Decimal(taken) * Decimal(str(fraction)))
        target = min(target, taken - already)
        if target <= 0:
            # Nothing left to give back: a retry with the key gets the first.
            return _restored_before(account, idempotency_key, kind, reference)
        entry = _new_entry(
            account,
            kind=kind,
            points=target,
            source=source,
            reason=reason,
            purchase=debit_entry.purchase_id and debit_entry.purchase,
            reference=reference,
            idempotency_key=idempotency_key,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        if not _insert_entry(entry):
            return _restored_before(account, idempotency_key, kind, reference)
        specs = _restore_specs(debit_entry, skip=already, take=target, now=now)
        shop = account.member.shop
        shortfall = target - sum(points for points, _e, _a in specs)
        if shortfall > 0:
            expires_at = rules.expiry_for(
                rules.policy_for(shop, cached=False), shop=shop, at=now
            )
            specs.append((shortfall, expires_at, now))
        _new_lots(account, entry, specs, now=now)
        account.balance += target
        if debit_entry.kind == EntryKind.REDEEM:
            account.redeemed -= target
        elif debit_entry.source == EntrySource.REFUND:
            account.lifetime_earned += target
        _save_account(account)
        _emit(account, entry, shop)
        return entry


def _restored_before(account, key, kind, reference) -> PointsEntry | None:
    if not key:
        return None
    first = (
        PointsEntry.objects.unscoped()
        .filter(shop_id=account.shop_id, idempotency_key=key)
        .first()
    )
    if first is None:
        return None
    if (
        first.account_id != account.pk
        or first.kind != kind
        or first.reference != reference
    ):
        raise IdempotencyConflict(fields={"idempotency_key": [_("Already used.")]})
    first.replayed = True
    return first


def _restore_specs(debit_entry, *, skip: int, take: int, now) -> list[tuple]:
    """(points, expires_at, available_at) of the parts to give back: the
    longest-lasting lots first, after the `skip` points given back before."""
    consumptions = (
        LotConsumption.objects.unscoped()
        .filter(shop_id=debit_entry.shop_id, entry_id=debit_entry.pk)
        .select_related("lot")
    )
    far = now + timedelta(days=365 * 1000)
    parts = sorted(
        consumptions,
        key=lambda c: (c.lot.expires_at or far, c.lot_id),
        reverse=True,
    )
    specs = []
    for part in parts:
        points = part.points
        skipped = min(skip, points)
        skip -= skipped
        points -= skipped
        points = min(points, take)
        if points <= 0:
            continue
        take -= points
        specs.append((points, part.lot.expires_at, max(part.lot.available_at, now)))
        if take <= 0:
            break
    return specs


# --- pending --------------------------------------------------------------------


def release_pending(*, shop, now=None) -> int:
    """Accounts whose pending points became spendable: `pending` recomputed.

    Set-based (two statements for any number of accounts) and idempotent.
    Returns how many accounts changed.
    """
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        # Lock first, in id order, so the recount below reads the lots as
        # they are after any write to these accounts has committed. (SQLite
        # locks the whole database for a write anyway.)
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM (SELECT id FROM points_pointsaccount "
                "WHERE shop_id = %s AND pending > 0 ORDER BY id FOR UPDATE) AS t",
                [shop.pk],
            )
        cursor.execute(
            """
            UPDATE points_pointsaccount AS a
               SET pending = s.pending, updated_at = %s
              FROM (
                SELECT acc.id,
                       COALESCE((SELECT SUM(l.remaining) FROM points_pointslot l
                                  WHERE l.shop_id = acc.shop_id
                                    AND l.account_id = acc.id
                                    AND l.remaining > 0
                                    AND l.available_at > %s), 0) AS pending
                  FROM points_pointsaccount acc
                 WHERE acc.shop_id = %s AND acc.pending > 0
              ) AS s
             WHERE a.shop_id = %s AND a.id = s.id AND a.pending <> s.pending
            """,
            [now, now, shop.pk, shop.pk],
        )
        return cursor.rowcount


# --- expiring soon ------------------------------------------------------------


def expiring_soon(member, *, days: int = 30, now=None) -> list[tuple[date, int]]:
    """[(last day the points can be spent, points)] of the member's points that
    expire within `days`, by day in the shop's time zone, soonest first."""
    now = now or timezone.now()
    zone = member.shop.zone
    lots = (
        PointsLot.objects.unscoped()
        .filter(
            shop_id=member.shop_id,
            account__member_id=member.pk,
            account__shop_id=member.shop_id,
            remaining__gt=0,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=days),
        )
        .values_list("expires_at", "remaining")
    )
    by_day: dict[date, int] = defaultdict(int)
    for expires_at, remaining in lots:
        # Expiry at midnight: the day before is the last day to spend them.
        last_day = timezone.localtime(expires_at - timedelta(microseconds=1), zone)
        by_day[last_day.date()] += remaining
    return sorted(by_day.items())


def expiring_soon_total(member, days: int = 30, now=None) -> int:
    return sum(points for _day, points in expiring_soon(member, days=days, now=now))


def members_with_points_expiring(shop, *, days: int = 30, now=None):
    """Members of `shop` with points expiring within `days`: a queryset of
    {"member_id", "points"} (set-based, for the reminder automation)."""
    now = now or timezone.now()
    return (
        PointsLot.objects.unscoped()
        .filter(
            shop_id=shop.pk,
            remaining__gt=0,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=days),
        )
        .values(member_id=F("account__member_id"))
        .annotate(points=Sum("remaining"))
        .order_by("member_id")
    )
