"""A member's qualifying figures (completed spend net of refunds, completed
orders) over the policy's window, and the window itself."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import Count, Q, Sum
from django.utils import timezone

from members.models import Purchase, PurchaseStatus
from shops.tenancy import shop_scope
from tiers.models import Basis, Window

from .ladder import shop_of

ZERO = Decimal("0.00")
# Spend counts over these (a fully refunded purchase adds paid - refunded = 0);
# orders over the first two only. Cancelled and pending never count.
SPEND_STATUSES = (
    PurchaseStatus.COMPLETED,
    PurchaseStatus.PARTIALLY_REFUNDED,
    PurchaseStatus.REFUNDED,
)
ORDER_STATUSES = (PurchaseStatus.COMPLETED, PurchaseStatus.PARTIALLY_REFUNDED)


@dataclass(frozen=True)
class Figures:
    spend: Decimal
    orders: int


def local_today(shop) -> datetime.date:
    return timezone.localtime(timezone.now(), shop.zone).date()


def midnight(shop, day: datetime.date) -> datetime.datetime:
    """The start of `day` in the shop's time zone."""
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=shop.zone)


def window_start_day(policy, day: datetime.date) -> datetime.date | None:
    """First day of the window that ends with `day` (None: lifetime)."""
    if policy.window == Window.CALENDAR_YEAR:
        return datetime.date(day.year, 1, 1)
    if policy.window == Window.ROLLING:
        return (
            day
            + datetime.timedelta(days=1)
            - relativedelta(months=policy.window_months)
        )
    return None


def window_of(policy, today: datetime.date):
    """(start of the window as an aware datetime or None for lifetime, last day
    of the current period or None when it depends on the member (rolling) or
    never comes (lifetime))."""
    start = window_start_day(policy, today)
    start_at = midnight(policy.shop, start) if start is not None else None
    end = (
        datetime.date(today.year, 12, 31)
        if policy.window == Window.CALENDAR_YEAR
        else None
    )
    return start_at, end


def period_end_for(policy, reached_on: datetime.date) -> datetime.date | None:
    """Last day of a period that starts on `reached_on` (a tier reached or renewed)."""
    if policy.window == Window.CALENDAR_YEAR:
        return datetime.date(reached_on.year, 12, 31)
    if policy.window == Window.ROLLING:
        return reached_on + relativedelta(months=policy.window_months)
    return None


def window_label(policy, today: datetime.date) -> str:
    start = window_start_day(policy, today)
    if start is None:
        return "lifetime"
    return f"{start.isoformat()}..{today.isoformat()}"


def member_figures(member, *, policy, today=None) -> Figures:
    """Lifetime: the member's own figures (O(1)). Otherwise one aggregate over
    the member's purchases in the window, on the (shop, member, -occurred_at)
    index."""
    if policy.window == Window.LIFETIME:
        return Figures(spend=member.total_spent or ZERO, orders=member.order_count or 0)
    shop = shop_of(member)
    today = today or local_today(shop)
    start_at, _end = window_of(policy, today)
    with shop_scope(shop):
        row = Purchase.objects.filter(
            shop=shop,
            member_id=member.pk,
            occurred_at__gte=start_at,
            occurred_at__lt=midnight(shop, today + datetime.timedelta(days=1)),
            status__in=SPEND_STATUSES,
        ).aggregate(
            spend=Sum("paid_amount") - Sum("refunded_amount"),
            orders=Count("id", filter=Q(status__in=ORDER_STATUSES)),
        )
    return Figures(spend=row["spend"] or ZERO, orders=row["orders"] or 0)


def meets(tier, figures: Figures, basis: str) -> bool:
    spend_ok = figures.spend >= tier.min_spend
    orders_ok = figures.orders >= tier.min_orders
    if basis == Basis.ORDERS:
        return orders_ok
    if basis == Basis.EITHER:
        return spend_ok or orders_ok
    if basis == Basis.BOTH:
        return spend_ok and orders_ok
    return spend_ok


def qualified_tier(ladder, figures: Figures, basis: str):
    """The highest tier met; the entry tier when none is."""
    for tier in reversed(ladder):
        if meets(tier, figures, basis):
            return tier
    return ladder[0]


def decision_detail(policy, figures: Figures, tier, today) -> dict:
    """What a move was decided on, kept in TierChange.detail."""
    return {
        "spend": f"{figures.spend:.2f}",
        "orders": figures.orders,
        "window": window_label(policy, today),
        "basis": policy.basis,
        "min_spend": f"{tier.min_spend:.2f}",
        "min_orders": tier.min_orders,
    }
