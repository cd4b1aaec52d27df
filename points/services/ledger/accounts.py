"""Accounts: created on first use, locked by every write; pending figures."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from points.models import (
    PointsAccount,
    PointsLot,
)
from shops import rawsql

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
    # Hand-written (on every purchase's hot path); names the member's shop.
    where = "shop_id = %s AND member_id = %s"
    if lock and connection.features.has_select_for_update:
        where += " FOR UPDATE"
    params = [member.shop_id, member.pk]
    account = rawsql.fetch_one(PointsAccount, where, params)
    if account is None:
        # A concurrent first write waits here for the other's row, then both
        # lock the same row.
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_ACCOUNT, [member.shop_id, member.pk, timezone.now()])
        account = rawsql.fetch_one(PointsAccount, where, params)
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
