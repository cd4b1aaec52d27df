"""Giving back what a debit took, with the original lots' expiry."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from points.models import (
    EntryKind,
    EntrySource,
    LotConsumption,
    PointsEntry,
)
from points.services import rules

from .accounts import _lock_account, _refresh_pending, _save_account
from .credit import _new_lots
from .entries import (
    _emit,
    _insert_entry,
    _new_entry,
)
from .errors import IdempotencyConflict


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
