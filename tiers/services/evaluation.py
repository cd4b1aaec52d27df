"""Evaluation of one member: on a completed purchase (up only), on a refund
(down, never below the tier the period started with), and the one writer of a
single move (`move_member`): MemberTier, one TierChange and `tier.changed`,
in the caller's transaction.

On the purchase hot path this costs three short indexed statements (ladder,
policy, the member's tier row under lock) when nobody moves; the lifetime
figures come from the member row the settlement just updated.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from types import SimpleNamespace

from django.db import connection, transaction
from django.utils import timezone

from members.models import Purchase
from shops import rawsql
from shops.services.events import emit_event
from shops.tenancy import shop_scope
from tiers.models import (
    ManualMode,
    MemberTier,
    Tier,
    TierChange,
    TierChangeReason,
    TierPolicy,
    Window,
)

from .events import TIER_CHANGED, tier_changed_payload
from .figures import (
    ORDER_STATUSES,
    SPEND_STATUSES,
    ZERO,
    Figures,
    decision_detail,
    local_today,
    member_figures,
    midnight,
    period_end_for,
    qualified_tier,
)
from .ladder import ladder_of, policy_of, remember_tier, shop_of


def manual_active(state, today) -> bool:
    return bool(
        state is not None
        and state.manual_tier_id
        and state.manual_mode
        and (state.manual_until is None or state.manual_until >= today)
    )


def locked_state(shop, member):
    """The member's tier row under a row lock, or None (entry tier)."""
    return (
        MemberTier.objects.select_for_update()
        .filter(shop=shop, member_id=member.pk)
        .first()
    )


# Everything a purchase's evaluation reads, in ONE round trip: the ladder, the
# policy, the member's tier row (locked) and, for a window other than
# lifetime, the member's figures in it (on the (shop, member, -occurred_at)
# index). Raw SQL naming the shop in every table (outside the tenancy guard).
_SNAPSHOT_SQL = f"""
WITH pol AS (
    SELECT id, basis, "window", window_months, downgrade, grace_days
    FROM {TierPolicy._meta.db_table} WHERE shop_id = %(shop)s
), st AS (
    SELECT id, tier_id, period_start_tier_id, manual_tier_id, manual_mode,
        manual_until, grace_until
    FROM {MemberTier._meta.db_table}
    WHERE shop_id = %(shop)s AND member_id = %(member)s
    FOR UPDATE
)
SELECT
    (SELECT json_agg(json_build_object('id', t.id, 'name', t.name,
            'tr', t.name_translations, 'rank', t.rank,
            'spend', t.min_spend::text, 'orders', t.min_orders,
            'colour', t.colour, 'mult', t.points_multiplier::text,
            'discount', t.discount_percent::text) ORDER BY t.rank)::text
     FROM {Tier._meta.db_table} t WHERE t.shop_id = %(shop)s),
    pol.id, pol.basis, pol."window", pol.window_months, pol.downgrade,
    pol.grace_days,
    st.id, st.tier_id, st.period_start_tier_id, st.manual_tier_id, st.manual_mode,
    st.manual_until, st.grace_until,
    CASE WHEN pol."window" IN ('rolling', 'calendar_year') THEN (
        SELECT ARRAY[COALESCE(SUM(p.paid_amount - p.refunded_amount), 0),
                     COUNT(*) FILTER (WHERE p.status = ANY(%(orders)s))]
        FROM {Purchase._meta.db_table} p
        WHERE p.shop_id = %(shop)s AND p.member_id = %(member)s
            AND p.status = ANY(%(spend)s) AND p.occurred_at < %(upper)s
            AND p.occurred_at >= CASE WHEN pol."window" = 'calendar_year'
                THEN %(year_start)s
                ELSE ((%(tomorrow)s::date - make_interval(months => pol.window_months))
                      ::timestamp AT TIME ZONE %(tz)s) END
    ) END
FROM (SELECT 1) AS one LEFT JOIN pol ON TRUE LEFT JOIN st ON TRUE
"""  # noqa: S608


# A ladder's Tier instances by the ladder's JSON text, which names every tier
# by id: a shop's ladder rarely changes and every purchase reads it, so each
# process builds it once per version. Shared by the process's threads (and by
# `tier_of(member)` callers): read them, never change them.
_LADDERS: dict[str, list[Tier]] = {}
_LADDERS_KEPT = 512


def _ladder_from(text: str, shop_id: int) -> list[Tier]:
    ladder = _LADDERS.get(text)
    if ladder is not None:
        return ladder
    ladder = []
    for t in json.loads(text):
        tier = Tier(
            id=t["id"],
            shop_id=shop_id,
            name=t["name"],
            name_translations=t["tr"] or {},
            rank=t["rank"],
            min_spend=Decimal(t["spend"]),
            min_orders=t["orders"],
            colour=t["colour"],
            points_multiplier=Decimal(t["mult"]),
            discount_percent=Decimal(t["discount"]),
        )
        tier._state.adding = False
        ladder.append(tier)
    if len(_LADDERS) >= _LADDERS_KEPT:
        _LADDERS.clear()
    _LADDERS[text] = ladder
    return ladder


def _snapshot(shop, member, today):
    """(ladder, policy, light tier row or None, figures) in one statement
    (PostgreSQL; the ORM's four queries elsewhere)."""
    if connection.vendor != "postgresql":
        ladder = ladder_of(shop)
        if not ladder:
            return [], None, None, None
        policy = policy_of(shop)
        figures = member_figures(member, policy=policy, today=today)
        return ladder, policy, locked_state(shop, member), figures
    tomorrow = today + datetime.timedelta(days=1)
    params = {
        "shop": shop.pk,
        "member": member.pk,
        "orders": [str(s) for s in ORDER_STATUSES],
        "spend": [str(s) for s in SPEND_STATUSES],
        "upper": midnight(shop, tomorrow),
        "year_start": midnight(shop, datetime.date(today.year, 1, 1)),
        "tomorrow": tomorrow,
        "tz": shop.time_zone,
    }
    with connection.cursor() as cursor:
        rawsql.execute(cursor, _SNAPSHOT_SQL, params)
        row = cursor.fetchone()
    tiers, pol, st, figures = row[0], row[1:7], row[7:14], row[14]
    if not tiers:
        return [], None, None, None
    ladder = _ladder_from(tiers, shop.pk)
    if pol[0] is None:
        policy = policy_of(shop)  # created once, with the defaults
    else:
        policy = TierPolicy(
            id=pol[0],
            shop=shop,
            basis=pol[1],
            window=pol[2],
            window_months=pol[3],
            downgrade=pol[4],
            grace_days=pol[5],
        )
        policy._state.adding = False
    state = None
    if st[0] is not None:
        state = SimpleNamespace(
            id=st[0],
            tier_id=st[1],
            period_start_tier_id=st[2],
            manual_tier_id=st[3],
            manual_mode=st[4],
            manual_until=st[5],
            grace_until=st[6],
        )
    if policy.window == Window.LIFETIME:
        figures = Figures(
            spend=member.total_spent or ZERO, orders=member.order_count or 0
        )
    elif figures is None:
        figures = member_figures(member, policy=policy, today=today)
    else:
        figures = Figures(spend=Decimal(figures[0]), orders=int(figures[1]))
    return ladder, policy, state, figures


def evaluate_member(
    *, member, reason, purchase=None, acting_user=None, actor_label=""
) -> TierChange | None:
    """Re-evaluate `member` after a purchase (reason purchase: move up when a
    higher tier is met) or a refund (reason refund: move down to the tier still
    met, never below the period's starting tier, a floor, or during grace).
    A fixed manual tier is never moved. Returns the TierChange, or None.

    One statement when nobody moves (see `_SNAPSHOT_SQL`)."""
    shop = shop_of(member)
    with shop_scope(shop), transaction.atomic(savepoint=False):
        today = local_today(shop)
        ladder, policy, state, figures = _snapshot(shop, member, today)
        if not ladder:
            remember_tier(member, None)
            return None
        by_id = {tier.pk: tier for tier in ladder}
        current = by_id[state.tier_id] if state is not None else ladder[0]
        # What the rest of the settlement (points' multiplier, the response)
        # reads through `tier_of(member)`, without querying again.
        remember_tier(member, current)
        active = manual_active(state, today)
        if active and state.manual_mode == ManualMode.FIXED:
            return None
        qualified = qualified_tier(ladder, figures, policy.basis)
        if reason == TierChangeReason.REFUND:
            floor = ladder[0]
            if state is not None:
                candidates = [by_id.get(state.period_start_tier_id)]
                if active:
                    candidates.append(by_id.get(state.manual_tier_id))
                if state.grace_until is not None:
                    candidates.append(current)
                for tier in candidates:
                    if tier is not None and tier.rank > floor.rank:
                        floor = tier
            target = qualified if qualified.rank > floor.rank else floor
            if target.rank >= current.rank:
                return None
        else:
            if qualified.rank <= current.rank:
                return None
            target = qualified
        detail = decision_detail(policy, figures, target, today)
        if purchase is not None:
            detail["purchase_id"] = purchase.pk
        # Already locked by the snapshot.
        full_state = None
        if state is not None:
            full_state = MemberTier.objects.get(shop=shop, pk=state.id)
        remember_tier(member, target)
        return _write_move(
            shop=shop,
            policy=policy,
            member=member,
            state=full_state,
            from_tier=current,
            to_tier=target,
            reason=reason,
            detail=detail,
            acting_user=acting_user,
            actor_label=actor_label,
            today=today,
        )


def _moved(state, policy, to_tier, up, now, today, state_values):
    state.tier = to_tier
    state.since = now
    if (up and policy.window == Window.ROLLING) or state.period_ends_on is None:
        state.period_ends_on = period_end_for(policy, today)
    for name, value in state_values.items():
        setattr(state, name, value)
    return state


def move_member(
    *, member, to_tier, reason, detail, acting_user=None, actor_label=""
) -> TierChange | None:
    """Put `member` in `to_tier` now (one TierChange and `tier.changed`).
    None when the member already holds it."""
    shop = shop_of(member)
    if to_tier.shop_id != shop.pk:
        raise ValueError("The tier belongs to another shop.")
    with shop_scope(shop), transaction.atomic():
        ladder = ladder_of(shop)
        policy = policy_of(shop)
        state = locked_state(shop, member)
        current = (
            next((t for t in ladder if t.pk == state.tier_id), None)
            if state is not None
            else ladder[0]
        )
        if current is not None and current.pk == to_tier.pk:
            return None
        return _write_move(
            shop=shop,
            policy=policy,
            member=member,
            state=state,
            from_tier=current,
            to_tier=to_tier,
            reason=reason,
            detail=dict(detail or {}),
            acting_user=acting_user,
            actor_label=actor_label,
            today=local_today(shop),
        )


def _write_move(
    *,
    shop,
    policy,
    member,
    state,
    from_tier,
    to_tier,
    reason,
    detail,
    acting_user,
    actor_label,
    today,
    **state_values,
) -> TierChange:
    """Write the move: the member's row (created on the first move), the
    TierChange and the event. A move up starts the tier's period (rolling:
    N months from today; calendar: this year; lifetime: none)."""
    now = timezone.now()
    up = from_tier is None or to_tier.rank > from_tier.rank
    if state is None:
        state = MemberTier(
            shop=shop,
            member_id=member.pk,
            tier=to_tier,
            since=now,
            period_ends_on=period_end_for(policy, today),
        )
        for name, value in state_values.items():
            setattr(state, name, value)
        # A recalculation may insert the row meanwhile (it locks no member):
        # then it is the row to move, if it still needs moving.
        if not rawsql.insert(state, unless_exists=("shop_id", "member_id")):
            state = locked_state(shop, member)
            raced = state.tier
            if raced.pk == to_tier.pk or (up and raced.rank >= to_tier.rank):
                return None
            from_tier = raced
            up = to_tier.rank > raced.rank
            state = _moved(state, policy, to_tier, up, now, today, state_values)
            state.save()
    else:
        state = _moved(state, policy, to_tier, up, now, today, state_values)
        state.save()
    change = TierChange(
        shop=shop,
        member_id=member.pk,
        from_tier=from_tier,
        to_tier=to_tier,
        reason=reason,
        detail=detail,
        acting_user=acting_user if acting_user and acting_user.pk else None,
        actor_label=(actor_label or "")[:100],
    )
    change.save()
    emit_event(
        shop=shop,
        topic=TIER_CHANGED,
        payload=tier_changed_payload(
            member=member, change=change, from_tier=from_tier, to_tier=to_tier
        ),
    )
    return change
