# SQL text is built from constants; every value is a parameter.
# ruff: noqa: S608
"""Whole-shop recalculation, rule-change previews and applying rule changes.

Set-based: one GROUP BY over the shop's purchases in the window, joined with
the members' tier rows, the qualified rank as one CASE, and ONE writing
statement (`sql.apply_moves`) that touches only members who move. Running it
twice moves nobody the second time.

Targets:
* recalculation (nightly, on demand): the tier met, but not below the tier
  the period started with, a floor, nor the current tier during a grace
  period (downgrades by time belong to the period end);
* rule_change ("recalculate everyone now"): the tier met under the new rules.
A fixed manual tier is kept; a floor is respected by both.
"""

from __future__ import annotations

import datetime
import logging

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member
from shops.tenancy import shop_scope
from tiers.models import (
    MemberTier,
    RecalculationStatus,
    Tier,
    TierChangeReason,
    TierRecalculation,
    Window,
)

from . import fallback, sql
from .figures import (
    local_today,
    midnight,
    period_end_for,
    window_label,
    window_start_day,
)
from .ladder import ladder_of, policy_of, validate_ladder

logger = logging.getLogger(__name__)

RECALCULATION_STEPS = 2


def _base_ctes(*, ladder, policy, as_of, params, proposal_ranks: str | None = None):
    """`fig`, `cur`, `q`: figures per member over the window ending `as_of`,
    the members' tier rows, and both joined with the qualified rank."""
    start = window_start_day(policy, as_of)
    shop = policy.shop
    lower = None
    if start is not None:
        params["lower"] = midnight(shop, start)
        lower = "lower"
    params["upper"] = midnight(shop, as_of + datetime.timedelta(days=1))
    params["today"] = as_of
    entry = int(ladder[0].rank)
    params["entry_rank"] = entry
    rank_of = proposal_ranks or "t.rank"
    qualified = sql.qualified_rank(ladder, policy.basis, "b.spend", "b.orders", params)
    return f"""
fig AS ({sql.figures_aggregate(lower=lower, upper="upper")}),
cur AS (
    SELECT mt.member_id, mt.tier_id, {rank_of} AS cur_rank, ps.rank AS ps_rank,
        mn.rank AS man_rank, mt.manual_mode, mt.period_ends_on,
        (mt.manual_tier_id IS NOT NULL AND mt.manual_mode <> ''
         AND (mt.manual_until IS NULL OR mt.manual_until >= %(today)s)) AS locked,
        mt.grace_until
    FROM {sql.MEMBER_TIERS} mt
        JOIN ladder t ON t.id = mt.tier_id
        LEFT JOIN ladder ps ON ps.id = mt.period_start_tier_id
        LEFT JOIN ladder mn ON mn.id = mt.manual_tier_id
    WHERE mt.shop_id = %(shop)s
),
b AS (
    SELECT COALESCE(f.member_id, c.member_id) AS member_id,
        c.member_id IS NOT NULL AS has_row, c.tier_id AS old_tier_id,
        COALESCE(c.cur_rank, %(entry_rank)s) AS old_rank,
        COALESCE(f.spend, 0) AS spend, COALESCE(f.orders, 0) AS orders,
        c.ps_rank, c.man_rank, c.manual_mode, COALESCE(c.locked, FALSE) AS locked,
        c.grace_until, c.period_ends_on
    FROM fig f FULL OUTER JOIN cur c ON c.member_id = f.member_id
),
q AS (SELECT b.*, {qualified} AS q_rank FROM b)"""


def _target(reason) -> str:
    """SQL for the new rank of a `q` row."""
    period_rules = ""
    if reason != TierChangeReason.RULE_CHANGE:
        period_rules = (
            ", q.ps_rank, CASE WHEN q.grace_until IS NOT NULL THEN q.old_rank END"
        )
    return (
        "CASE WHEN q.locked AND q.manual_mode = 'fixed' THEN q.man_rank "
        "ELSE GREATEST(q.q_rank, CASE WHEN q.locked THEN q.man_rank END"
        f"{period_rules}) END"
    )


def recalculate_shop(
    *,
    shop,
    reason=TierChangeReason.RECALCULATION,
    as_of=None,
    recalculation=None,
    acting_user=None,
) -> tuple[int, int]:
    """Move every member of `shop` to the tier the rules give them; returns
    (members up, members down). See the module docstring."""
    with shop_scope(shop):
        ladder = ladder_of(shop)
        if recalculation is not None:
            recalculation.status = RecalculationStatus.RUNNING
            recalculation.steps_total = RECALCULATION_STEPS
            recalculation.steps_done = 0
            recalculation.save(update_fields=["status", "steps_total", "steps_done"])
        if not ladder:
            up = down = 0
        else:
            policy = policy_of(shop)
            as_of = as_of or local_today(shop)
            if connection.vendor != "postgresql":
                up, down = fallback.recalculate(
                    shop=shop,
                    ladder=ladder,
                    policy=policy,
                    as_of=as_of,
                    reason=reason,
                    acting_user=acting_user,
                    actor_label="" if acting_user else _("recalculation"),
                )
                return _finish(recalculation, up, down)
            params: dict = {}
            ctes = _base_ctes(ladder=ladder, policy=policy, as_of=as_of, params=params)
            params["new_end"] = period_end_for(policy, as_of)
            params["rolling"] = policy.window == Window.ROLLING
            ctes += f""",
tg AS (SELECT q.*, {_target(reason)} AS new_rank FROM q),
calc AS (
    SELECT member_id, has_row, old_tier_id, old_rank, new_rank, spend, orders,
        (new_rank > old_rank AND (%(rolling)s OR period_ends_on IS NULL))
            OR NOT has_row AS set_period,
        %(new_end)s::date AS period_ends_on,
        (ps_rank IS NOT NULL AND new_rank < ps_rank) AS set_start,
        new_rank AS start_rank,
        FALSE AS set_grace, NULL::date AS grace_until, NULL::int AS grace_rank,
        FALSE AS clear_manual
    FROM tg WHERE new_rank <> old_rank
)"""
            if recalculation is not None:
                recalculation.steps_done = 1
                recalculation.save(update_fields=["steps_done"])
            up, down = sql.apply_moves(
                shop=shop,
                ladder=ladder,
                policy=policy,
                ctes=ctes,
                params=params,
                reason=reason,
                window=window_label(policy, as_of),
                acting_user=acting_user,
                actor_label="" if acting_user else _("recalculation"),
            )
        return _finish(recalculation, up, down)


def _finish(recalculation, up: int, down: int) -> tuple[int, int]:
    if recalculation is not None:
        recalculation.steps_done = RECALCULATION_STEPS
        recalculation.members_up = up
        recalculation.members_down = down
        recalculation.status = RecalculationStatus.DONE
        recalculation.finished_at = timezone.now()
        recalculation.save()
    return up, down


def start_recalculation(*, shop, reason, acting_user=None) -> TierRecalculation:
    """Record a recalculation and queue it once this transaction commits."""
    with shop_scope(shop), transaction.atomic():
        recalculation = TierRecalculation.objects.create(
            shop=shop,
            reason=reason,
            as_of=local_today(shop),
            steps_total=RECALCULATION_STEPS,
            created_by=acting_user if acting_user and acting_user.pk else None,
        )
        transaction.on_commit(lambda: _queue(recalculation.pk), robust=True)
    return recalculation


def _queue(recalculation_id: int) -> None:
    from tiers.tasks import recalculate_shop as task

    task.delay(recalculation_id)


def preview_rule_change(*, shop, tiers: list[Tier], policy) -> dict:
    """How many members a proposed ladder and policy would move now (as a
    rule-change recalculation would): {"up", "down", "unchanged"}. Nothing is
    written; the tiers and policy may be unsaved."""
    policy.shop = shop
    validate_ladder(shop=shop, tiers=tiers, policy=policy)
    ladder = sorted(tiers, key=lambda t: t.rank)
    if not ladder:
        return {"up": 0, "down": 0, "unchanged": _member_count(shop)}
    if connection.vendor != "postgresql":
        with shop_scope(shop):
            up, down = fallback.preview(
                shop=shop, ladder=ladder, policy=policy, today=local_today(shop)
            )
        total = _member_count(shop)
        return {"up": up, "down": down, "unchanged": max(total - up - down, 0)}
    with shop_scope(shop):
        saved = list(Tier.objects.filter(shop=shop).values_list("pk", "rank"))
    params: dict = {}
    # A member's current tier keeps its proposed rank when the proposal keeps
    # it, else its saved rank.
    saved_values = ", ".join(
        f"(%(s{i}_id)s::bigint, %(s{i}_rank)s::int)" for i in range(len(saved))
    )
    for i, (pk, rank) in enumerate(saved):
        params[f"s{i}_id"], params[f"s{i}_rank"] = pk, rank
    ctes = _base_ctes(
        ladder=ladder,
        policy=policy,
        as_of=local_today(shop),
        params=params,
        proposal_ranks="COALESCE(t.rank, s.rank)",
    )
    # `cur` joins the proposal; members whose tier the proposal dropped still
    # count, through the saved ranks.
    ctes = ctes.replace(
        "JOIN ladder t ON t.id = mt.tier_id",
        "LEFT JOIN ladder t ON t.id = mt.tier_id "
        "LEFT JOIN saved s ON s.id = mt.tier_id",
    )
    saved_cte = (
        f"saved(id, rank) AS (VALUES {saved_values})"
        if saved
        else "saved(id, rank) AS (SELECT NULL::bigint, NULL::int WHERE FALSE)"
    )
    statement = (
        f"WITH {sql.ladder_cte(ladder, params)}, {saved_cte}, {ctes} "
        f"SELECT COUNT(*) FILTER (WHERE n > old_rank), "
        f"COUNT(*) FILTER (WHERE n < old_rank) "
        f"FROM (SELECT q.old_rank, {_target(TierChangeReason.RULE_CHANGE)} AS n "
        f"FROM q) moves"
    )
    params["shop"] = shop.pk
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(statement, params)
        up, down = cursor.fetchone()
    total = _member_count(shop)
    return {"up": up, "down": down, "unchanged": max(total - up - down, 0)}


def _member_count(shop) -> int:
    with shop_scope(shop):
        return Member.objects.filter(shop=shop).count()


APPLY_MODES = ("next_purchase", "now")


def apply_rule_change(
    *, shop, tiers, policy, mode, acting_user=None
) -> TierRecalculation | None:
    """Save a new ladder and policy. `now`: recalculate everyone (reason
    rule_change) in the background; `next_purchase`: members move up at their
    next completed purchase, and down only at their period end."""
    if mode not in APPLY_MODES:
        raise ValidationError(
            {"mode": _("Choose when the new rules apply: now or at the next purchase.")}
        )
    policy.shop = shop
    with shop_scope(shop), transaction.atomic():
        given = {t.pk for t in tiers if t.pk}
        others = list(Tier.objects.filter(shop=shop).exclude(pk__in=given))
        validate_ladder(shop=shop, tiers=[*tiers, *others], policy=policy)
        # Ranks may be swapped: move the saved ones out of the way first.
        Tier.objects.filter(shop=shop, pk__in=given).update(rank=F("rank") + 10000)
        for tier in tiers:
            tier.shop = shop
            tier.save()
        existing = policy_of(shop)
        if policy.pk is None or policy.pk != existing.pk:
            policy.pk = existing.pk
            policy._state.adding = False
        policy.save()
        rows = MemberTier.objects.filter(shop=shop)
        if policy.window == Window.LIFETIME:
            # No periods under a lifetime window: nothing ends by time.
            rows.exclude(period_ends_on=None, grace_until=None).update(
                period_ends_on=None, grace_until=None, grace_target=None
            )
        else:
            # Members who moved under a lifetime window get their first period.
            rows.filter(period_ends_on=None).update(
                period_ends_on=period_end_for(policy, local_today(shop))
            )
        if mode == "now":
            return start_recalculation(
                shop=shop, reason=TierChangeReason.RULE_CHANGE, acting_user=acting_user
            )
    return None
