"""Debits: spendable lots, oldest expiry first; and staff adjustments."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from points.models import (
    EntryKind,
    EntrySource,
    LotConsumption,
    PointsEntry,
    PointsLot,
)

from .accounts import _refresh_pending, _save_account, account_for
from .credit import credit
from .entries import (
    _check_points,
    _emit,
    _existing,
    _insert_entry,
    _new_entry,
    _replay,
)
from .errors import InsufficientPoints


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
