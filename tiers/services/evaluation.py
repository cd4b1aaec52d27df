"""Evaluation of one member: on a completed purchase (up only), on a refund
(down, never below the tier the period started with), and the one writer of a
single move (`move_member`): MemberTier, one TierChange and `tier.changed`,
in the caller's transaction.

On the purchase hot path this costs three short indexed statements (ladder,
policy, the member's tier row under lock) when nobody moves; the lifetime
figures come from the member row the settlement just updated.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from shops.services.events import emit_event
from shops.tenancy import shop_scope
from tiers.models import ManualMode, MemberTier, TierChange, TierChangeReason, Window

from .events import TIER_CHANGED, tier_changed_payload
from .figures import (
    decision_detail,
    local_today,
    member_figures,
    period_end_for,
    qualified_tier,
)
from .ladder import ladder_of, policy_of, shop_of


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


def evaluate_member(
    *, member, reason, purchase=None, acting_user=None, actor_label=""
) -> TierChange | None:
    """Re-evaluate `member` after a purchase (reason purchase: move up when a
    higher tier is met) or a refund (reason refund: move down to the tier still
    met, never below the period's starting tier, a floor, or during grace).
    A fixed manual tier is never moved. Returns the TierChange, or None."""
    shop = shop_of(member)
    with shop_scope(shop), transaction.atomic(savepoint=False):
        ladder = ladder_of(shop)
        if not ladder:
            return None
        policy = policy_of(shop)
        today = local_today(shop)
        state = locked_state(shop, member)
        by_id = {tier.pk: tier for tier in ladder}
        current = by_id[state.tier_id] if state is not None else ladder[0]
        active = manual_active(state, today)
        if active and state.manual_mode == ManualMode.FIXED:
            return None
        figures = member_figures(member, policy=policy, today=today)
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
        return _write_move(
            shop=shop,
            policy=policy,
            member=member,
            state=state,
            from_tier=current,
            to_tier=target,
            reason=reason,
            detail=detail,
            acting_user=acting_user,
            actor_label=actor_label,
            today=today,
        )


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
    else:
        state.tier = to_tier
        state.since = now
        if (up and policy.window == Window.ROLLING) or state.period_ends_on is None:
            state.period_ends_on = period_end_for(policy, today)
    for name, value in state_values.items():
        setattr(state, name, value)
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
