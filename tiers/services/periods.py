# SQL text is built from constants; every value is a parameter.
# ruff: noqa: S608
"""The daily run of one shop: manual tiers whose lock ran out, periods that
ended, grace periods that ended. Set-based (one writing statement per kind,
figures read per member on the shop-led purchase index) and idempotent: a
processed row's dates move past `today`, so a second run the same day finds
nothing to do.

Period end (the day after `period_ends_on`): figures over the window that ends
that day; the target by `policy.downgrade` (highest met, one step at most,
never), never below a floor, a fixed manual tier is kept. With grace days and a
target below the tier, the member keeps the tier until `period_ends_on +
grace_days` and moves then to the target (reason grace_end) unless the figures
up to that day meet the tier again. A new period starts with the tier kept or
reached: calendar year -> the next 31 December, rolling -> N months on.
"""

from __future__ import annotations

import datetime

from django.db import connection, transaction
from django.utils.translation import gettext as _

from shops.tenancy import shop_scope
from tiers.models import DowngradeRule, MemberTier, TierChangeReason, Window

from . import fallback, sql
from .figures import local_today
from .ladder import ladder_of, policy_of


def run_period_ends(*, shop, today=None) -> dict:
    """{"manual_end": (up, down), "period_end": ..., "grace_end": ...}"""
    with shop_scope(shop):
        ladder = ladder_of(shop)
        if not ladder:
            return {}
        policy = policy_of(shop)
        today = today or local_today(shop)
        if connection.vendor != "postgresql":
            return fallback.run_period_ends(
                shop=shop,
                ladder=ladder,
                policy=policy,
                today=today,
                actor_label=_("daily tier run"),
            )
        done = {}
        with transaction.atomic():
            done["manual_end"] = _run(
                shop, ladder, policy, today, TierChangeReason.MANUAL_END
            )
            if policy.window == Window.LIFETIME:
                MemberTier.objects.filter(shop=shop).exclude(
                    period_ends_on=None, grace_until=None
                ).update(period_ends_on=None, grace_until=None, grace_target=None)
            else:
                done["period_end"] = _run(
                    shop, ladder, policy, today, TierChangeReason.PERIOD_END
                )
                done["grace_end"] = _run(
                    shop, ladder, policy, today, TierChangeReason.GRACE_END
                )
        return done


def _params(shop, ladder, policy, today) -> dict:
    return {
        "today": today,
        "tz": shop.time_zone,
        "months": int(policy.window_months),
        "grace_days": int(policy.grace_days),
        "entry_rank": int(ladder[0].rank),
        "downgrade": policy.downgrade,
        "calendar": policy.window == Window.CALENDAR_YEAR,
        "tomorrow": today + datetime.timedelta(days=1),
    }


# The rows, per kind, and the window their figures are read over: [lo, hi).
_DUE = {
    TierChangeReason.MANUAL_END: (
        "mt.manual_tier_id IS NOT NULL AND mt.manual_until < %(today)s",
        # Normal evaluation resumes: the window as of today.
        "CASE WHEN %(calendar)s THEN make_date(extract(year FROM %(today)s::date)"
        "::int, 1, 1) WHEN %(months)s > 0 AND %(rolling)s THEN (%(tomorrow)s::date"
        " - make_interval(months => %(months)s))::date END",
        "%(tomorrow)s::date",
    ),
    TierChangeReason.PERIOD_END: (
        "mt.period_ends_on < %(today)s AND mt.grace_until IS NULL",
        "CASE WHEN %(calendar)s THEN make_date(extract(year FROM mt.period_ends_on)"
        "::int, 1, 1) ELSE (mt.period_ends_on + 1"
        " - make_interval(months => %(months)s))::date END",
        "mt.period_ends_on + 1",
    ),
    TierChangeReason.GRACE_END: (
        "mt.grace_until < %(today)s",
        "CASE WHEN %(calendar)s THEN make_date(extract(year FROM mt.period_ends_on)"
        "::int, 1, 1) ELSE (mt.grace_until + 1"
        " - make_interval(months => %(months)s))::date END",
        "mt.grace_until + 1",
    ),
}

# TierChange.detail["window"]: the window depends on each member's period.
_WINDOW_LABELS = {
    TierChangeReason.MANUAL_END: "current",
    TierChangeReason.PERIOD_END: "ended period",
    TierChangeReason.GRACE_END: "ended period and grace",
}

# The next period's last day after one that ended on `mt.period_ends_on`,
# never before today (a shop whose task did not run for a while catches up).
_NEXT_END = (
    "CASE WHEN %(calendar)s THEN make_date(GREATEST(extract(year FROM"
    " d.period_ends_on)::int + 1, extract(year FROM %(today)s::date)::int), 12, 31)"
    " ELSE GREATEST((d.period_ends_on + make_interval(months => %(months)s))::date,"
    " %(today)s::date) END"
)


def _run(shop, ladder, policy, today, reason) -> tuple[int, int]:
    params = _params(shop, ladder, policy, today)
    params["rolling"] = policy.window == Window.ROLLING
    where, lo_day, hi_day = _DUE[reason]
    lo = f"(({lo_day})::timestamp AT TIME ZONE %(tz)s)"
    hi = f"(({hi_day})::timestamp AT TIME ZONE %(tz)s)"
    qualified = sql.qualified_rank(ladder, policy.basis, "d.spend", "d.orders", params)
    one_below = "(SELECT MAX(l.rank) FROM ladder l WHERE l.rank < d.cur_rank)"
    locked = (
        "(d.manual_tier_id IS NOT NULL AND d.manual_mode <> ''"
        " AND (d.manual_until IS NULL OR d.manual_until >= %(today)s))"
    )
    fixed = f"({locked} AND d.manual_mode = 'fixed')"
    floor = f"CASE WHEN {locked} THEN d.man_rank END"
    if reason == TierChangeReason.MANUAL_END:
        new_rank = "GREATEST(q.q_rank, q.ps_rank, %(entry_rank)s)"
        fields = (
            "FALSE AS set_period, NULL::date AS period_ends_on,"
            " FALSE AS set_start, NULL::int AS start_rank,"
            " FALSE AS set_grace, NULL::date AS grace_until, NULL::int AS grace_rank,"
            " TRUE AS clear_manual"
        )
    elif reason == TierChangeReason.PERIOD_END:
        rule = {
            DowngradeRule.HIGHEST_MET: "q0.q_rank",
            DowngradeRule.ONE_STEP: "GREATEST(q0.q_rank, q0.one_below, q0.entry)",
            DowngradeRule.NEVER: "GREATEST(q0.q_rank, q0.cur_rank)",
        }[policy.downgrade]
        graced = "(%(grace_days)s > 0 AND q.target < q.cur_rank)"
        new_rank = f"CASE WHEN {graced} THEN q.cur_rank ELSE q.target END"
        fields = (
            f"NOT {graced} AS set_period, q.next_end AS period_ends_on,"
            f" NOT {graced} AS set_start, q.target AS start_rank,"
            f" {graced} AS set_grace,"
            " (q.period_ends_on + %(grace_days)s)::date AS grace_until,"
            " q.target AS grace_rank, FALSE AS clear_manual"
        )
    else:
        # Requalified when the figures up to the grace end meet the tier.
        rule = "GREATEST(q0.grace_rank, LEAST(q0.q_rank, q0.cur_rank))"
        new_rank = "q.target"
        fields = (
            "TRUE AS set_period, q.next_end AS period_ends_on,"
            " TRUE AS set_start, q.target AS start_rank,"
            " TRUE AS set_grace, NULL::date AS grace_until, NULL::int AS grace_rank,"
            " FALSE AS clear_manual"
        )
    if reason == TierChangeReason.MANUAL_END:
        target_sql = ""
    else:
        target_sql = (
            f", CASE WHEN q0.fixed THEN q0.cur_rank ELSE GREATEST({rule}, q0.floor) END"
            " AS target"
        )
    lateral = sql.figures_lateral(
        "d0", lo.replace("mt.", "d0."), hi.replace("mt.", "d0.")
    )
    ctes = f"""
d0 AS (
    SELECT mt.member_id, mt.tier_id, t.rank AS cur_rank, ps.rank AS ps_rank,
        mn.rank AS man_rank, gt.rank AS grace_rank, mt.manual_tier_id,
        mt.manual_mode, mt.manual_until, mt.period_ends_on, mt.grace_until
    FROM {sql.MEMBER_TIERS} mt
        JOIN ladder t ON t.id = mt.tier_id
        LEFT JOIN ladder ps ON ps.id = mt.period_start_tier_id
        LEFT JOIN ladder mn ON mn.id = mt.manual_tier_id
        LEFT JOIN ladder gt ON gt.id = mt.grace_target_id
    WHERE mt.shop_id = %(shop)s AND {where}
),
d AS (
    SELECT d0.*, COALESCE(f.spend, 0) AS spend, COALESCE(f.orders, 0) AS orders
    FROM d0 {lateral}
),
q0 AS (
    SELECT d.*, {qualified} AS q_rank, {one_below} AS one_below,
        %(entry_rank)s AS entry, {fixed} AS fixed, {floor} AS floor,
        {_NEXT_END} AS next_end
    FROM d
),
q AS (SELECT q0.*{target_sql} FROM q0),
calc AS (
    SELECT q.member_id, TRUE AS has_row, q.tier_id AS old_tier_id,
        q.cur_rank AS old_rank, {new_rank} AS new_rank,
        q.spend, q.orders, {fields}
    FROM q
)"""
    return sql.apply_moves(
        shop=shop,
        ladder=ladder,
        policy=policy,
        ctes=ctes,
        params=params,
        reason=reason,
        window=_WINDOW_LABELS[reason],
        actor_label=_("daily tier run"),
    )
