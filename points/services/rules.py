"""The shop's points policy and earning rules as the services read them.

`policy_for(shop)` and `rules_for(shop)` are read on every completed purchase,
so each process keeps them per shop for a few seconds: saving or deleting a
policy, a rule or a rule's excluded stores drops the shop's entry in the
process that saved it, and every other process (the other web workers, the
Celery workers) reads the change within `CACHE_SECONDS`. A shop without a
saved policy uses the model's defaults (not saved). The cached instances are
shared by the process's threads: read them, never change them.
"""

from __future__ import annotations

import calendar
import time
from datetime import datetime, timedelta

from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from points.models import EarningRule, ExpiryMode, PointsPolicy
from shops import rawsql

CACHE_SECONDS = 5.0
# shop id -> (time read, (policy, rules)); a dict's get and set are atomic.
_cache: dict[int, tuple[float, tuple]] = {}


def policy_for(shop, *, cached: bool = True) -> PointsPolicy:
    """The shop's points policy (defaults when the shop has none saved)."""
    return _cached(shop, cached)[0]


def rules_for(shop, *, cached: bool = True) -> dict[str, EarningRule]:
    """The shop's ACTIVE earning rules by kind (`RuleKind`)."""
    return _cached(shop, cached)[1]


def forget_cached(shop) -> None:
    """Drop this process's cached policy and rules of the shop."""
    _cache.pop(shop.pk, None)


def forget_all() -> None:
    """Drop every shop's cached policy and rules in this process."""
    _cache.clear()


@receiver([post_save, post_delete], sender=PointsPolicy)
@receiver([post_save, post_delete], sender=EarningRule)
def _changed(sender, instance, **kwargs) -> None:
    _cache.pop(instance.shop_id, None)


@receiver(m2m_changed, sender=EarningRule.excluded_stores.through)
def _stores_changed(sender, instance, **kwargs) -> None:
    # `instance` is the rule, or a store when changed from the store's side.
    _cache.pop(instance.shop_id, None)


# The policy, the active rules and each rule's excluded stores in ONE
# statement (read on every completed purchase): one row per active rule, or
# one row of NULL rule columns. Raw SQL: both tables filtered by the shop.
# Names from the models' metadata only; values are always parameters.
_RULES_SQL = (
    f"SELECT {rawsql.columns_of(PointsPolicy, 'p')}, "  # noqa: S608
    f"{rawsql.columns_of(EarningRule, 'r')}, "
    "ARRAY(SELECT x.store_id FROM {through} x WHERE x.earningrule_id = r.id) "
    "FROM (SELECT 1) AS one "
    "LEFT JOIN LATERAL (SELECT * FROM {policies} WHERE shop_id = %s "
    "ORDER BY id LIMIT 1) AS p ON TRUE "
    "LEFT JOIN {rules} r ON r.shop_id = %s AND r.is_active "
    "ORDER BY r.kind"
)


def _cached(shop, cached: bool):
    now = time.monotonic()
    entry = _cache.get(shop.pk) if cached else None
    if entry is not None and now - entry[0] < CACHE_SECONDS:
        return entry[1]
    read = _read if connection.vendor == "postgresql" else _read_portably
    value = read(shop)
    _cache[shop.pk] = (now, value)
    return value


def _read(shop):
    sql = _RULES_SQL.format(
        through=EarningRule.excluded_stores.through._meta.db_table,
        policies=PointsPolicy._meta.db_table,
        rules=EarningRule._meta.db_table,
    )
    with connection.cursor() as cursor:
        rawsql.execute(cursor, sql, [shop.pk, shop.pk])
        rows = cursor.fetchall()
    width = len(PointsPolicy._meta.concrete_fields)
    first = rows[0]
    if first[0] is None:
        # By id: a cached instance must not hold on to this request's shop.
        policy = PointsPolicy(shop_id=shop.pk)
    else:
        policy = rawsql.from_row(PointsPolicy, first[:width])
    rules = {}
    for row in rows:
        if row[width] is None:
            continue
        rule = rawsql.from_row(EarningRule, row[width:-1])
        rule.excluded_store_ids = frozenset(row[-1])
        rule.excluded_sku_set = excluded_skus(rule)
        rules[rule.kind] = rule
    return policy, rules


def _read_portably(shop):
    """The same as `_read` through the ORM (SQLite: no LATERAL, no ARRAY)."""
    policy = PointsPolicy.objects.unscoped().filter(shop_id=shop.pk).first()
    if policy is None:
        policy = PointsPolicy(shop_id=shop.pk)
    rules = {
        rule.kind: rule
        for rule in EarningRule.objects.unscoped().filter(
            shop_id=shop.pk, is_active=True
        )
    }
    through = EarningRule.excluded_stores.through
    stores = through.objects.filter(earningrule__in=[r.pk for r in rules.values()])
    excluded: dict[int, set[int]] = {rule.pk: set() for rule in rules.values()}
    for rule_id, store_id in stores.values_list("earningrule_id", "store_id"):
        excluded[rule_id].add(store_id)
    for rule in rules.values():
        rule.excluded_store_ids = frozenset(excluded[rule.pk])
        rule.excluded_sku_set = excluded_skus(rule)
    return policy, rules


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
