"""Manual tiers set by staff: fixed (exactly this tier while locked) or a floor
(at least this tier; purchases may still move the member up), until a day or
for good. The lock lives on MemberTier (who, when, why) and on the member's
timeline; a TierChange is written only when the tier actually changes."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.services.members import record_member_change
from shops.tenancy import shop_scope
from tiers.models import ManualMode, MemberTier, TierChange, TierChangeReason

from .evaluation import _write_move, locked_state
from .figures import decision_detail, local_today, member_figures, qualified_tier
from .ladder import ladder_of, policy_of, shop_of


def set_manual_tier(
    *,
    member,
    tier,
    mode,
    until=None,
    reason,
    acting_user=None,
    actor_label="",
) -> TierChange | None:
    shop = shop_of(member)
    today = local_today(shop)
    if tier is None or tier.shop_id != shop.pk:
        raise ValidationError({"tier": _("Choose one of the shop's tiers.")})
    if mode not in ManualMode.values:
        raise ValidationError({"mode": _("Choose fixed or floor.")})
    if until is not None and until < today:
        raise ValidationError({"until": _("The lock cannot end in the past.")})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the tier is set by hand.")})
    with shop_scope(shop), transaction.atomic():
        ladder = ladder_of(shop)
        by_id = {t.pk: t for t in ladder}
        state = locked_state(shop, member)
        current = by_id[state.tier_id] if state is not None else ladder[0]
        target = (
            tier if mode == ManualMode.FIXED or tier.rank > current.rank else current
        )
        lock = {
            "manual_tier": tier,
            "manual_mode": mode,
            "manual_until": until,
            "manual_reason": reason[:200],
            "manual_by": acting_user if acting_user and acting_user.pk else None,
            "manual_at": timezone.now(),
        }
        change = None
        if target.pk != current.pk:
            detail = {"reason": reason, "mode": mode}
            detail["until"] = until.isoformat() if until else None
            change = _write_move(
                shop=shop,
                policy=policy_of(shop),
                member=member,
                state=state,
                from_tier=current,
                to_tier=target,
                reason=TierChangeReason.MANUAL,
                detail=detail,
                acting_user=acting_user,
                actor_label=actor_label,
                today=today,
                **lock,
            )
        else:
            if state is None:
                state = MemberTier(
                    shop=shop, member_id=member.pk, tier=current, since=timezone.now()
                )
            for name, value in lock.items():
                setattr(state, name, value)
            state.save()
        record_member_change(
            member=member,
            action="tier_locked",
            changes={
                "manual tier": [None, f"{tier.name} ({mode})"],
                "until": [None, until],
                "reason": [None, reason],
            },
            acting_user=acting_user,
            actor_label=actor_label,
        )
        return change


def clear_manual_tier(*, member, acting_user=None, actor_label="") -> TierChange | None:
    """End the lock now; the member's figures decide again (never below the
    tier the period started with)."""
    shop = shop_of(member)
    with shop_scope(shop), transaction.atomic():
        state = locked_state(shop, member)
        if state is None or not state.manual_tier_id:
            return None
        change = resume_after_lock(
            shop=shop,
            member=member,
            state=state,
            reason=TierChangeReason.MANUAL,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        record_member_change(
            member=member,
            action="tier_unlocked",
            changes={"manual tier": [state.manual_reason or "", None]},
            acting_user=acting_user,
            actor_label=actor_label,
        )
        return change


_CLEARED = {
    "manual_tier": None,
    "manual_mode": "",
    "manual_until": None,
    "manual_reason": "",
    "manual_by": None,
    "manual_at": None,
}


def resume_after_lock(*, shop, member, state, reason, acting_user, actor_label):
    ladder = ladder_of(shop)
    policy = policy_of(shop)
    today = local_today(shop)
    by_id = {t.pk: t for t in ladder}
    current = by_id[state.tier_id]
    figures = member_figures(member, policy=policy, today=today)
    target = qualified_tier(ladder, figures, policy.basis)
    start = by_id.get(state.period_start_tier_id)
    if start is not None and start.rank > target.rank:
        target = start
    if target.pk == current.pk:
        for name, value in _CLEARED.items():
            setattr(state, name, value)
        state.save()
        return None
    return _write_move(
        shop=shop,
        policy=policy,
        member=member,
        state=state,
        from_tier=current,
        to_tier=target,
        reason=reason,
        detail=decision_detail(policy, figures, target, today),
        acting_user=acting_user,
        actor_label=actor_label,
        today=today,
        **_CLEARED,
    )
