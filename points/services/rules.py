"""The shop's points policy and earning rules as the services read them.

`policy_for(shop)` and `rules_for(shop)` are read on every completed purchase,
so they are cached on the shop instance for a few seconds (a request's shop,
or a task's): a rule edited in the admin applies within `CACHE_SECONDS`.
A shop without a saved policy uses the model's defaults (not saved).
"""

from __future__ import annotations

import calendar
import time
from datetime import datetime, timedelta

from django.utils import timezone

from points.models import EarningRule, ExpiryMode, PointsPolicy

CACHE_SECONDS = 5.0
_ATTR = "_points_rules_cache"


def policy_for(shop, *, cached: bool = True) -> PointsPolicy:
    """The shop's points policy (defaults when the shop has none saved)."""
    return _cached(shop, cached)[0]


def rules_for(shop, *, cached: bool = True) -> dict[str, EarningRule]:
    """The shop's ACTIVE earning rules by kind (`RuleKind`)."""
    return _cached(shop, cached)[1]


def forget_cached(shop) -> None:
    """Drop the cached policy and rules of this shop instance."""
    shop.__dict__.pop(_ATTR, None)


def _cached(shop, cached: bool):
    now = time.monotonic()
    entry = shop.__dict__.get(_ATTR) if cached else None
    if entry is not None and now - entry[0] < CACHE_SECONDS:
        return entry[1]
    policy = PointsPolicy.objects.unscoped().filter(shop_id=shop.pk).first()
    if policy is None:
        policy = PointsPolicy(shop=shop)
    rules = {
        rule.kind: rule
        for rule in EarningRule.objects.unscoped().filter(
            shop_id=shop.pk, is_active=True
        )
    }
    stores: dict[int, set[int]] = {rule.pk: set() for rule in rules.values()}
    if stores:
        # The auto-created through table (not tenant-scoped): the rules' ids
        # were read for this shop above.
        through = EarningRule.excluded_stores.through
        for rule_id, store_id in through.objects.filter(
            earningrule_id__in=list(stores)
        ).values_list("earningrule_id", "store_id"):
            stores[rule_id].add(store_id)
    for rule in rules.values():
        rule.excluded_store_ids = frozenset(stores[rule.pk])
        rule.excluded_sku_set = excluded_skus(rule)
    value = (policy, rules)
    shop.__dict__[_ATTR] = (now, value)
    return value


def excluded_skus(rule: EarningRule) -> frozenset[str]:
    """The rule's excluded SKUs (one per line; commas and spaces tolerated)."""
    text = (rule.excluded_skus or "").replace(",", "\n")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus whole months, the day clamped to the month's last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def expiry_for(policy: PointsPolicy, *, shop, at: datetime | None = None):
    """When points credited at `at` expire under `policy` (None: never).

    Computed in the shop's time zone: N months later at the same local time,
    or the first instant of the year after next ("end of the following year").
    """
    at = at or timezone.now()
    if policy.expiry == ExpiryMode.NEVER:
        return None
    local = timezone.localtime(at, shop.zone)
    if policy.expiry == ExpiryMode.MONTHS:
        # Re-localise: the same wall-clock time may have another UTC offset.
        naive = add_months(local.replace(tzinfo=None), policy.expiry_months)
        return timezone.make_aware(naive, shop.zone)
    start = datetime(local.year + 2, 1, 1)  # noqa: DTZ001 - made aware below
    return timezone.make_aware(start, shop.zone)


def pending_until(policy: PointsPolicy, *, at: datetime | None = None):
    """When points earned by a purchase at `at` become spendable."""
    at = at or timezone.now()
    if policy.pending_days:
        return at + timedelta(days=policy.pending_days)
    return at
