"""Points expiring soon: per member, and members of a shop (the reminder)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from django.db.models import F, Sum
from django.utils import timezone

from points.models import (
    PointsLot,
)


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
    return by_last_day(lots, zone)


def by_last_day(lots, zone) -> list[tuple[date, int]]:
    """[(last day to spend, points)] of (expires_at, remaining) pairs, by day
    in `zone`, soonest first."""
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
