"""The member's points figures as the API shows them, read from the account
row (O(1): one lookup on the (shop, member) unique index) and, for the
"expiring in the next 30 days" part, the open lots' partial expiry index."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from members.models import Member
from points.models import PointsAccount, PointsLot
from shops import rawsql
from shops.db import MAX_ID

EXPIRING_DAYS = 30


def account_and_member(member_id: int) -> tuple[Member, PointsAccount | None]:
    """The member (404 when not this shop's) and their account, if any.

    One statement when the member has an account (the account row joined to
    its member), two when not (then the member is looked up alone)."""
    if not 0 < member_id <= MAX_ID:  # beyond bigint: nobody's id (SQLite: overflow)
        raise Http404
    account = (
        PointsAccount.objects.select_related("member")
        .filter(member_id=member_id)
        .first()
    )
    if account is not None:
        return account.member, account
    member = Member.objects.filter(pk=member_id).first()
    if member is None:
        raise Http404
    return member, None


def account_of(member_id: int) -> PointsAccount | None:
    return PointsAccount.objects.filter(member_id=member_id).first()


def spendable_of(account: PointsAccount | None) -> int:
    """The balance less what is still inside the return window (the ledger's
    definition), never below zero."""
    if account is None:
        return 0
    return max(account.balance - account.pending, 0)


def balance_data(account: PointsAccount | None) -> dict:
    if account is None:
        return {"balance": 0, "pending": 0, "spendable": 0}
    return {
        "balance": account.balance,
        "pending": account.pending,
        "spendable": spendable_of(account),
    }


def expiring_window(now=None):
    now = now or timezone.now()
    return now, now + timedelta(days=EXPIRING_DAYS)


def with_expiring_soon(accounts, *, now=None):
    """Accounts annotated with `expiring_soon`: their open lots' points that
    expire in the next 30 days (one correlated sum per account, on the open
    lots' (shop, account, expires_at) index)."""
    start, end = expiring_window(now)
    lots = (
        PointsLot.objects.filter(
            account_id=OuterRef("pk"),
            remaining__gt=0,
            expires_at__gt=start,
            expires_at__lte=end,
        )
        .order_by()
        .values("account_id")
        .annotate(total=Sum("remaining"))
        .values("total")
    )
    return accounts.annotate(expiring_soon=Coalesce(Subquery(lots), 0))


# `GET /members/{id}/points` in ONE statement (a POS reads it at every
# sale): the member's account, found by its (shop, member) key, and its open
# lots expiring in the window, on the open lots' index. An account of this
# shop means a member of this shop, so the member's own row is read only
# when there is no account (zeros, or a 404 when no member of the shop has
# the id): fewer pages to read on the common path, which is what a read's
# slowest times wait for. Raw SQL: every table is filtered by the shop.
_POINTS_SQL = """
SELECT a.balance, a.pending, a.lifetime_earned, a.redeemed, a.expired,
       soon.moments, soon.points
  FROM points_pointsaccount a
  LEFT JOIN LATERAL (
       SELECT array_agg(l.expires_at ORDER BY l.expires_at, l.id) AS moments,
              array_agg(l.remaining ORDER BY l.expires_at, l.id) AS points
         FROM points_pointslot l
        WHERE l.shop_id = a.shop_id AND l.account_id = a.id
          AND l.remaining > 0 AND l.expires_at > %s AND l.expires_at <= %s
  ) AS soon ON TRUE
 WHERE a.shop_id = %s AND a.member_id = %s
"""


def points_data(shop, member_id) -> dict:
    """What `GET /members/{id}/points` shows (as `account_data`), read in one
    statement; Http404 when no member of `shop` has this id."""
    from points.services import ledger

    if not 0 < member_id <= MAX_ID:  # beyond bigint: nobody's id
        raise Http404
    if connection.vendor != "postgresql":
        member, account = account_and_member(member_id)
        member.shop = shop
        return account_data(member, account)
    start, end = expiring_window()
    with connection.cursor() as cursor:
        rawsql.execute(cursor, _POINTS_SQL, [start, end, shop.pk, member_id])
        row = cursor.fetchone()
    if row is None:  # no account yet
        if not Member.objects.filter(shop=shop, pk=member_id).exists():
            raise Http404
        row = (0, 0, 0, 0, 0, None, None)
    balance, pending, earned, redeemed, expired, moments, points = row
    lots = zip(moments or (), points or (), strict=True)
    expiring = [
        {"date": day.isoformat(), "points": total}
        for day, total in ledger.by_last_day(lots, shop.zone)
    ]
    return {
        "balance": balance,
        "pending": pending,
        "spendable": max(balance - pending, 0),
        "expiring_soon": sum(item["points"] for item in expiring),
        "lifetime_earned": earned,
        "redeemed": redeemed,
        "expired": expired,
        "expiring": expiring,
    }


def account_data(member, account: PointsAccount | None) -> dict:
    """Everything `GET /members/{id}/points` shows."""
    from points.services import ledger

    expiring = (
        [
            {"date": day, "points": points}
            for day, points in ledger.expiring_soon(member, days=EXPIRING_DAYS)
        ]
        if account is not None
        else []
    )
    return {
        **balance_data(account),
        "expiring_soon": sum(row["points"] for row in expiring),
        "lifetime_earned": account.lifetime_earned if account else 0,
        "redeemed": account.redeemed if account else 0,
        "expired": account.expired if account else 0,
        "expiring": expiring,
    }
