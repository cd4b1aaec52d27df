"""The shop's ladder and qualification policy, and the rules a ladder obeys."""

from __future__ import annotations

import itertools
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from shops.tenancy import current_shop_or_none, shop_scope
from tiers.models import Basis, MemberTier, Tier, TierPolicy, Window


def shop_of(obj):
    """`obj.shop` without a query when it is the current shop (the request's)."""
    current = current_shop_or_none()
    if current is not None and current.pk == obj.shop_id:
        return current
    return obj.shop


def ladder_of(shop) -> list[Tier]:
    """The shop's tiers, lowest rank first (empty: the shop has no ladder)."""
    with shop_scope(shop):
        return list(Tier.objects.filter(shop=shop).order_by("rank"))


def policy_of(shop) -> TierPolicy:
    """The shop's policy; the default one (spend, lifetime, highest met, no
    grace) is created the first time it is asked for."""
    with shop_scope(shop):
        policy = TierPolicy.objects.filter(shop=shop).first()
        if policy is None:
            policy, _created = TierPolicy.objects.get_or_create(shop=shop)
    policy.shop = shop
    return policy


def entry_tier(shop) -> Tier | None:
    with shop_scope(shop):
        return Tier.objects.filter(shop=shop).order_by("rank").first()


_REMEMBERED = "_tier_after_evaluation"
_UNSET = object()


def remember_tier(member, tier: Tier | None) -> None:
    """Keep the tier an evaluation just read or decided on this member object,
    so `tier_of(member)` in the same settlement needs no query."""
    setattr(member, _REMEMBERED, tier)


def tier_of(member) -> Tier | None:
    """The member's current tier: the entry tier when they never moved."""
    remembered = getattr(member, _REMEMBERED, _UNSET)
    if remembered is not _UNSET:
        return remembered
    shop = shop_of(member)
    with shop_scope(shop):
        state = (
            MemberTier.objects.filter(shop=shop, member_id=member.pk)
            .select_related("tier")
            .first()
        )
    if state is not None:
        return state.tier
    return entry_tier(shop)


def uses_spend(basis: str) -> bool:
    return basis in (Basis.SPEND, Basis.EITHER, Basis.BOTH)


def uses_orders(basis: str) -> bool:
    return basis in (Basis.ORDERS, Basis.EITHER, Basis.BOTH)


def validate_ladder(*, shop, tiers: list[Tier], policy: TierPolicy) -> None:
    """Refuse a ladder or policy that cannot be applied, naming the tier.

    Ranks are unique; the thresholds the basis uses rise strictly with rank
    (the entry tier may need nothing); discounts are 0..100 and multipliers
    above 0; a rolling window has at least one month.
    """
    errors: list[ValidationError] = []
    if policy.basis not in Basis.values:
        errors.append(ValidationError(_("Choose what members qualify on.")))
    if policy.window not in Window.values:
        errors.append(ValidationError(_("Choose the window figures are counted over.")))
    months = policy.window_months
    if months is None or months < 1:
        # The database refuses 0 whatever the window; say it for rolling ones.
        errors.append(ValidationError(_("A rolling window needs at least one month.")))
    elif months > 120:
        errors.append(ValidationError(_("A window is at most 120 months.")))
    if policy.grace_days is None or not 0 <= policy.grace_days <= 366:
        errors.append(ValidationError(_("The grace period is between 0 and 366 days.")))

    seen: dict[int, Tier] = {}
    for tier in tiers:
        name = tier.name or "?"
        if tier.rank is None or tier.rank < 0:
            errors.append(
                ValidationError(
                    _("Tier %(name)s needs a rank of 0 or more."),
                    params={"name": name},
                )
            )
            continue
        if tier.rank in seen:
            errors.append(
                ValidationError(
                    _("Tiers %(first)s and %(second)s have the same rank %(rank)s."),
                    params={
                        "first": seen[tier.rank].name,
                        "second": name,
                        "rank": tier.rank,
                    },
                )
            )
        seen.setdefault(tier.rank, tier)
        discount = tier.discount_percent
        if discount is None or not Decimal(0) <= Decimal(discount) <= Decimal(100):
            errors.append(
                ValidationError(
                    _("The discount of tier %(name)s must be between 0 and 100."),
                    params={"name": name},
                )
            )
        multiplier = tier.points_multiplier
        if multiplier is None or Decimal(multiplier) <= 0:
            errors.append(
                ValidationError(
                    _("The points multiplier of tier %(name)s must be above 0."),
                    params={"name": name},
                )
            )
        if tier.min_spend is not None and Decimal(tier.min_spend) < 0:
            errors.append(
                ValidationError(
                    _("The spend needed for tier %(name)s cannot be negative."),
                    params={"name": name},
                )
            )
        if tier.min_orders is not None and tier.min_orders < 0:
            errors.append(
                ValidationError(
                    _("The orders needed for tier %(name)s cannot be negative."),
                    params={"name": name},
                )
            )

    ordered = sorted(
        (t for t in tiers if t.rank is not None and t.rank >= 0), key=lambda t: t.rank
    )
    checks = []
    if uses_spend(policy.basis):
        checks.append(
            (
                "min_spend",
                _("Tier %(name)s needs more spend than %(lower)s (%(value)s)."),
            )
        )
    if uses_orders(policy.basis):
        checks.append(
            (
                "min_orders",
                _("Tier %(name)s needs more orders than %(lower)s (%(value)s)."),
            )
        )
    for field, message in checks:
        for lower, higher in itertools.pairwise(ordered):
            low, high = getattr(lower, field), getattr(higher, field)
            if low is None or high is None or lower.rank == higher.rank:
                continue
            if high <= low:
                errors.append(
                    ValidationError(
                        message,
                        params={"name": higher.name, "lower": lower.name, "value": low},
                    )
                )
    if errors:
        raise ValidationError(errors)
