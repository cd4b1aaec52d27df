"""Earning points for purchases (the hot path of POST /api/v1/purchases).

`earn_for_purchase` is called by `points.services.settlement` in the
transaction that completes a purchase, after the tier evaluation, so the
multiplier is the member's tier AFTER this purchase.

points = round(base * rule.points_per_unit * tier multiplier), by the rule's
rounding, where base = the paid amount less the share of lines whose SKU the
rule excludes (in proportion to the lines' amounts), or 0 in an excluded store.

Daily caps (the shop's `PointsPolicy.daily_cap` across the capped rules, and a
rule's own `daily_cap`) count what the member earned today in the shop's time
zone from purchases and referrals: the activity-driven rules. One-time bonuses
(registration, profile, birthday) are not capped and do not count.

The shop's policy and rules are cached for a few seconds (see rules.py).
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from members.models import Member, PurchaseLine
from points.models import EntryKind, EntrySource, PointsEntry, Rounding, RuleKind
from points.services import ledger, rules
from points.services.bonuses import (
    award_birthday_bonuses,
    award_profile_bonus,
    award_referral_bonus,
    award_registration_bonus,
    award_signup_bonuses,
)
from tiers.services.ladder import tier_of

__all__ = [
    "award_birthday_bonuses",
    "award_profile_bonus",
    "award_referral_bonus",
    "award_registration_bonus",
    "award_signup_bonuses",
    "capped_points",
    "earn_for_purchase",
    "points_for_purchase",
    "purchase_base",
]

ROUNDINGS = {
    Rounding.DOWN: ROUND_DOWN,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.UP: ROUND_UP,
}
CAPPED_SOURCES = (EntrySource.PURCHASE, EntrySource.REFERRAL)
ZERO = Decimal(0)


def purchase_base(purchase, rule) -> Decimal:
    """The part of the paid amount that earns points under `rule`."""
    if purchase.store_id is not None and purchase.store_id in rule.excluded_store_ids:
        return ZERO
    paid = purchase.paid_amount
    if not rule.excluded_sku_set:
        return paid
    lines = PurchaseLine.objects.unscoped().filter(
        shop_id=purchase.shop_id, purchase_id=purchase.pk
    )
    total = excluded = ZERO
    for sku, quantity, unit_price in lines.values_list("sku", "quantity", "unit_price"):
        amount = quantity * unit_price
        total += amount
        if sku in rule.excluded_sku_set:
            excluded += amount
    if total <= 0 or not excluded:
        return paid
    return paid * (total - excluded) / total


def points_for_purchase(purchase, rule, multiplier) -> int:
    raw = purchase_base(purchase, rule) * rule.points_per_unit * Decimal(multiplier)
    return int(raw.quantize(Decimal(1), rounding=ROUNDINGS.get(rule.rounding)))


def tier_multiplier(member) -> Decimal:
    """The member's current tier's multiplier (1 without a tier)."""
    tier = tier_of(member)
    return tier.points_multiplier if tier is not None else Decimal(1)


def start_of_day(shop, now=None) -> datetime:
    local = timezone.localtime(now or timezone.now(), shop.zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def capped_points(points: int, *, member, rule, policy, shop, now=None) -> int:
    """`points` less what today's caps leave (0 when a cap is reached).

    Call it with the member's account locked (inside the credit's
    transaction), so two purchases at once cannot both fill the cap.
    """
    if not policy.daily_cap and not rule.daily_cap:
        return points
    account = ledger.account_for(member, lock=True)
    today = PointsEntry.objects.unscoped().filter(
        shop_id=account.shop_id,
        account_id=account.pk,
        kind=EntryKind.EARN,
        source__in=CAPPED_SOURCES,
        created_at__gte=start_of_day(shop, now),
    )
    sums = today.aggregate(
        all=Sum("points"),
        rule=Sum("points", filter=Q(reference=f"rule:{rule.pk}")),
    )
    if policy.daily_cap:
        points = min(points, policy.daily_cap - (sums["all"] or 0))
    if rule.daily_cap:
        points = min(points, rule.daily_cap - (sums["rule"] or 0))
    return max(points, 0)


def earn_for_purchase(*, purchase, acting_user=None, actor_label=""):
    """Credit the points a completed purchase earns (None when it earns none).

    Idempotent: the key "purchase:<id>" makes a replay return the first entry.
    Also awards the referral bonus when this is the member's first purchase.
    """
    shop = purchase.shop
    member = purchase.member
    if not Member.shop.is_cached(member):
        member.shop = shop
    policy = rules.policy_for(shop)
    rule = rules.rules_for(shop).get(RuleKind.PURCHASE)
    entry = None
    # No savepoint (the purchase hot path): nothing is raised inside.
    with transaction.atomic(savepoint=False):
        if rule is not None:
            points = points_for_purchase(purchase, rule, tier_multiplier(member))
            if points > 0:
                points = capped_points(
                    points, member=member, rule=rule, policy=policy, shop=shop
                )
            if points > 0:
                entry = _credit_purchase(
                    purchase, member, points, rule, policy, acting_user, actor_label
                )
                if not getattr(entry, "replayed", False):
                    # The account as this credit left it: the API answers
                    # with it instead of reading the row again.
                    purchase.points_account = entry.account
        if member.referred_by_id is not None and member.order_count <= 1:
            purchase.points_account = None  # the bonus changed it again
            award_referral_bonus(
                purchase=purchase, acting_user=acting_user, actor_label=actor_label
            )
    return entry


def _credit_purchase(purchase, member, points, rule, policy, acting_user, actor_label):
    now = timezone.now()
    key = f"purchase:{purchase.pk}"
    try:
        return ledger.credit(
            member=member,
            points=points,
            kind=EntryKind.EARN,
            source=EntrySource.PURCHASE,
            reason=purchase.external_order_id,
            purchase=purchase,
            reference=f"rule:{rule.pk}",
            idempotency_key=key,
            expires_at=rules.expiry_for(policy, shop=purchase.shop, at=now),
            available_at=rules.pending_until(policy, at=now),
            acting_user=acting_user,
            actor_label=actor_label,
        )
    except ledger.IdempotencyConflict:
        # Earned before, under other rules or another tier: the first stands.
        first = PointsEntry.objects.unscoped().get(
            shop_id=purchase.shop_id, idempotency_key=key
        )
        first.replayed = True
        return first
