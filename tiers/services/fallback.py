"""The same rules as the set-based SQL, one member at a time, for databases
other than PostgreSQL (the embedded SQLite default of a developer's machine,
where shops are small). PostgreSQL always takes the set-based statements."""

from __future__ import annotations

import datetime

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import Count, Q, Sum

from members.models import Member, Purchase
from tiers.models import (
    DowngradeRule,
    ManualMode,
    MemberTier,
    TierChangeReason,
    Window,
)

from .evaluation import _write_move, manual_active
from .figures import (
    ORDER_STATUSES,
    SPEND_STATUSES,
    ZERO,
    Figures,
    decision_detail,
    midnight,
    period_end_for,
    qualified_tier,
    window_start_day,
)


def _figures(shop, member_id, lo_day, hi_day) -> Figures:
    """Figures over [lo_day, hi_day] (whole days, shop's zone; lo None: all)."""
    rows = Purchase.objects.filter(
        shop=shop,
        member_id=member_id,
        status__in=SPEND_STATUSES,
        occurred_at__lt=midnight(shop, hi_day + datetime.timedelta(days=1)),
    )
    if lo_day is not None:
        rows = rows.filter(occurred_at__gte=midnight(shop, lo_day))
    row = rows.aggregate(
        spend=Sum("paid_amount") - Sum("refunded_amount"),
        orders=Count("id", filter=Q(status__in=ORDER_STATUSES)),
    )
    return Figures(spend=row["spend"] or ZERO, orders=row["orders"] or 0)


def _rank_target(ladder, tiers_by_id, state, figures, policy, today, *, period_rules):
    current = tiers_by_id[state.tier_id] if state is not None else ladder[0]
    qualified = qualified_tier(ladder, figures, policy.basis)
    active = manual_active(state, today)
    if active and state.manual_mode == ManualMode.FIXED:
        return current, tiers_by_id[state.manual_tier_id]
    candidates = [qualified]
    if active:
        candidates.append(tiers_by_id.get(state.manual_tier_id))
    if period_rules and state is not None:
        candidates.append(tiers_by_id.get(state.period_start_tier_id))
        if state.grace_until is not None:
            candidates.append(current)
    target = max((t for t in candidates if t is not None), key=lambda t: t.rank)
    return current, target


def _members(shop):
    with_purchases = Purchase.objects.filter(shop=shop).values("member_id")
    with_rows = MemberTier.objects.filter(shop=shop).values("member_id")
    return Member.objects.filter(shop=shop).filter(
        Q(pk__in=with_purchases) | Q(pk__in=with_rows)
    )


def recalculate(*, shop, ladder, policy, as_of, reason, acting_user, actor_label):
    by_id = {t.pk: t for t in ladder}
    states = {s.member_id: s for s in MemberTier.objects.filter(shop=shop)}
    start = window_start_day(policy, as_of)
    period_rules = reason != TierChangeReason.RULE_CHANGE
    up = down = 0
    with transaction.atomic():
        for member in _members(shop).order_by("pk"):
            state = states.get(member.pk)
            figures = _figures(shop, member.pk, start, as_of)
            current, target = _rank_target(
                ladder, by_id, state, figures, policy, as_of, period_rules=period_rules
            )
            if target.pk == current.pk:
                continue
            extra = {}
            start_tier = by_id.get(state.period_start_tier_id) if state else None
            if start_tier is not None and target.rank < start_tier.rank:
                extra["period_start_tier"] = target
            _write_move(
                shop=shop,
                policy=policy,
                member=member,
                state=state,
                from_tier=current,
                to_tier=target,
                reason=reason,
                detail=decision_detail(policy, figures, target, as_of),
                acting_user=acting_user,
                actor_label=actor_label,
                today=as_of,
                **extra,
            )
            if target.rank > current.rank:
                up += 1
            else:
                down += 1
    return up, down


def preview(*, shop, ladder, policy, today):
    """Counts of members a rule change would move (nothing written)."""
    by_id = {t.pk: t for t in ladder if t.pk}
    saved = dict(
        MemberTier.objects.filter(shop=shop).values_list("member_id", "tier__rank")
    )
    states = {s.member_id: s for s in MemberTier.objects.filter(shop=shop)}
    start = window_start_day(policy, today)
    up = down = 0
    for member_id in _members(shop).values_list("pk", flat=True):
        state = states.get(member_id)
        figures = _figures(shop, member_id, start, today)
        qualified = qualified_tier(ladder, figures, policy.basis)
        old_rank = ladder[0].rank
        if state is not None:
            tier = by_id.get(state.tier_id)
            old_rank = tier.rank if tier is not None else saved[member_id]
        new_rank = qualified.rank
        if manual_active(state, today):
            manual = by_id.get(state.manual_tier_id)
            if manual is not None and state.manual_mode == ManualMode.FIXED:
                new_rank = manual.rank
            elif manual is not None:
                new_rank = max(new_rank, manual.rank)
        up += new_rank > old_rank
        down += new_rank < old_rank
    return up, down


def _next_end(policy, ended: datetime.date, today: datetime.date) -> datetime.date:
    if policy.window == Window.CALENDAR_YEAR:
        return datetime.date(max(ended.year + 1, today.year), 12, 31)
    return max(ended + relativedelta(months=policy.window_months), today)


def run_period_ends(*, shop, ladder, policy, today, actor_label) -> dict:
    by_id = {t.pk: t for t in ladder}
    done = {}
    label = actor_label
    with transaction.atomic():
        moves = [0, 0]
        for state in MemberTier.objects.filter(
            shop=shop, manual_tier__isnull=False, manual_until__lt=today
        ).select_related("member"):
            start = window_start_day(policy, today)
            figures = _figures(shop, state.member_id, start, today)
            current = by_id[state.tier_id]
            target = qualified_tier(ladder, figures, policy.basis)
            start_tier = by_id.get(state.period_start_tier_id)
            if start_tier is not None and start_tier.rank > target.rank:
                target = start_tier
            _apply(state, current, target, moves, shop, policy, figures, today,
                   TierChangeReason.MANUAL_END, label, manual_tier=None,
                   manual_mode="", manual_until=None, manual_reason="",
                   manual_by=None, manual_at=None)  # fmt: skip
        done["manual_end"] = tuple(moves)
        if policy.window == Window.LIFETIME:
            MemberTier.objects.filter(shop=shop).exclude(
                period_ends_on=None, grace_until=None
            ).update(period_ends_on=None, grace_until=None, grace_target=None)
            return done
        moves = [0, 0]
        for state in MemberTier.objects.filter(
            shop=shop, period_ends_on__lt=today, grace_until=None
        ).select_related("member"):
            ended = state.period_ends_on
            figures = _figures(
                shop, state.member_id, window_start_day(policy, ended), ended
            )
            current = by_id[state.tier_id]
            target = _period_target(ladder, by_id, state, figures, policy, today)
            if policy.grace_days and target.rank < current.rank:
                state.grace_until = ended + datetime.timedelta(days=policy.grace_days)
                state.grace_target = target
                state.save()
                continue
            _apply(state, current, target, moves, shop, policy, figures, today,
                   TierChangeReason.PERIOD_END, label,
                   period_ends_on=_next_end(policy, ended, today),
                   period_start_tier=target)  # fmt: skip
        done["period_end"] = tuple(moves)
        moves = [0, 0]
        for state in MemberTier.objects.filter(
            shop=shop, grace_until__lt=today
        ).select_related("member"):
            ended, grace = state.period_ends_on, state.grace_until
            lo = (
                datetime.date(ended.year, 1, 1)
                if policy.window == Window.CALENDAR_YEAR
                else window_start_day(policy, grace)
            )
            figures = _figures(shop, state.member_id, lo, grace)
            current = by_id[state.tier_id]
            qualified = qualified_tier(ladder, figures, policy.basis)
            floor = by_id.get(state.grace_target_id) or ladder[0]
            kept = qualified if qualified.rank < current.rank else current
            target = kept if kept.rank > floor.rank else floor
            target = _locked(by_id, state, target, current, today)
            _apply(state, current, target, moves, shop, policy, figures, today,
                   TierChangeReason.GRACE_END, label,
                   period_ends_on=_next_end(policy, ended, today),
                   period_start_tier=target, grace_until=None,
                   grace_target=None)  # fmt: skip
        done["grace_end"] = tuple(moves)
    return done


def _locked(by_id, state, target, current, today):
    if not manual_active(state, today):
        return target
    manual = by_id[state.manual_tier_id]
    if state.manual_mode == ManualMode.FIXED:
        return current
    return manual if manual.rank > target.rank else target


def _period_target(ladder, by_id, state, figures, policy, today):
    current = by_id[state.tier_id]
    qualified = qualified_tier(ladder, figures, policy.basis)
    if policy.downgrade == DowngradeRule.NEVER:
        target = qualified if qualified.rank > current.rank else current
    elif policy.downgrade == DowngradeRule.ONE_STEP:
        below = [t for t in ladder if t.rank < current.rank]
        step = below[-1] if below else ladder[0]
        target = qualified if qualified.rank > step.rank else step
    else:
        target = qualified
    return _locked(by_id, state, target, current, today)


def _apply(state, current, target, moves, shop, policy, figures, today, reason,
           label, **fields):  # fmt: skip
    if target.pk == current.pk:
        for name, value in fields.items():
            setattr(state, name, value)
        state.save()
        return
    _write_move(
        shop=shop,
        policy=policy,
        member=state.member,
        state=state,
        from_tier=current,
        to_tier=target,
        reason=reason,
        detail=decision_detail(policy, figures, target, today),
        acting_user=None,
        actor_label=label,
        today=today,
        **fields,
    )
    moves[0 if target.rank > current.rank else 1] += 1


__all__ = ["period_end_for", "preview", "recalculate", "run_period_ends"]
