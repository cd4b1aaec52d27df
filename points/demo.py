"""The demo shop's points: a policy, earning rules, a rewards catalogue, the
points the demo members earned with their completed purchases, and a few
rewards redeemed at the counter.

`manage.py load_demo` calls `load(demo)` after the members and tiers sections.
Every member gets the registration bonus through the bonuses service.
The members' purchases were recorded without points (the members section
sits below this app), so each completed one is credited here through the
ledger, dated by its purchase: it expires as the policy says counted from
the purchase, and points whose time has passed are expired by the expiry
service, as the nightly task would have done. Every write carries an
idempotency key (the purchase's own, "purchase:<id>", as settlement uses), and
the purchases already credited are skipped in one query, so a second run adds
nothing.
"""

from __future__ import annotations

import datetime
from decimal import ROUND_DOWN, Decimal

from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from members.demo import ORDER_PREFIX
from members.models import Purchase, PurchaseStatus
from points.models import (
    EarningRule,
    EntryKind,
    EntrySource,
    ExpiryMode,
    PointsAccount,
    PointsEntry,
    PointsPolicy,
    Redemption,
    RefundPolicy,
    Reward,
    RuleKind,
)

POLICY = {
    "expiry": ExpiryMode.END_OF_NEXT_YEAR,
    "expiry_months": 12,
    "pending_days": 0,
    "refund_policy": RefundPolicy.TAKE_REMAINING,
    "cash_points": 20,
    "cash_value": Decimal("1.00"),
    "cash_min_points": 100,
    "cash_max_share": Decimal("50.00"),
}
RULES = {
    RuleKind.PURCHASE: {"points_per_unit": Decimal("1.00")},
    RuleKind.REGISTRATION: {"points": 100},
    RuleKind.REFERRAL: {"points": 200},
    RuleKind.BIRTHDAY: {"points": 300},
}
# (name, description, points, stock, most per member)
REWARDS = (
    (
        "Cup of milk oolong 奶香乌龙一杯",
        "Any size, in store. 门店任意杯型。",
        300,
        None,
        None,
    ),
    ("Jasmine pearls 50g 茉莉龙珠 50g", "A sample tin. 品鉴小罐。", 900, 40, 2),
    ("Porcelain gaiwan 白瓷盖碗", "Jingdezhen porcelain. 景德镇白瓷。", 2400, 12, 1),
    ("Tea tasting for two 双人品茶会", "Book a Saturday. 周六预约。", 5000, 6, 1),
)
EARNED = (PurchaseStatus.COMPLETED, PurchaseStatus.PARTIALLY_REFUNDED)
REDEEMING_MEMBERS = 6
# The demo members joined within the last three years.
SIGNUP_SINCE = datetime.timedelta(days=4 * 365)


def _policy(shop) -> PointsPolicy:
    # The shop's own settings, as an owner would save them in the admin (the
    # rules editor saves the model; there is no service for them).
    policy, _made = PointsPolicy.objects.get_or_create(shop=shop, defaults=POLICY)
    for kind, values in RULES.items():
        EarningRule.objects.get_or_create(shop=shop, kind=kind, defaults=values)
    for name, description, price, stock, limit in REWARDS:
        Reward.objects.get_or_create(
            shop=shop,
            name=name,
            defaults={
                "description": description,
                "points_price": price,
                "stock": stock,
                "per_member_limit": limit,
            },
        )
    from points.services.rules import forget_cached

    forget_cached(shop)
    return policy


def _earn_for_purchases(shop, policy: PointsPolicy) -> int:
    """Credit the demo's completed purchases that have no points yet."""
    from points.services.ledger import credit
    from points.services.rules import expiry_for

    rule = EarningRule.objects.get(shop=shop, kind=RuleKind.PURCHASE)
    credited = PointsEntry.objects.filter(
        purchase__isnull=False, source=EntrySource.PURCHASE, kind=EntryKind.EARN
    ).values("purchase_id")
    purchases = (
        Purchase.objects.filter(
            external_order_id__startswith=ORDER_PREFIX, status__in=EARNED
        )
        .exclude(pk__in=credited)
        .annotate(net=F("paid_amount") - F("refunded_amount"))
        .select_related("member")
        .order_by("occurred_at", "id")
    )
    count = 0
    for purchase in purchases:
        points = int(
            (purchase.net * rule.points_per_unit).quantize(Decimal(1), ROUND_DOWN)
        )
        if points <= 0:
            continue
        at = purchase.completed_at or purchase.occurred_at
        credit(
            member=purchase.member,
            points=points,
            kind=EntryKind.EARN,
            source=EntrySource.PURCHASE,
            reason=_("Purchase %(order)s") % {"order": purchase.external_order_id},
            purchase=purchase,
            idempotency_key=f"purchase:{purchase.pk}",
            expires_at=expiry_for(policy, shop=shop, at=at),
            actor_label="Demo",
        )
        count += 1
    return count


def _redeem_a_few(shop, owner) -> None:
    """The members with the most points took a reward at the counter."""
    from django.core.exceptions import ValidationError

    from points.services.rewards import redeem_reward

    reward = Reward.objects.filter(shop=shop, name=REWARDS[0][0]).first()
    if reward is None or Redemption.objects.filter(reward=reward).exists():
        return  # Taken on an earlier run: the top balances have moved since.
    accounts = (
        PointsAccount.objects.filter(balance__gte=reward.points_price)
        .select_related("member")
        .order_by("-balance", "id")[:REDEEMING_MEMBERS]
    )
    for account in accounts:
        try:
            redeem_reward(
                member=account.member,
                reward=reward,
                quantity=1,
                store=account.member.home_store,
                idempotency_key=f"demo-redeem:{account.member_id}",
                acting_user=owner,
            )
        except ValidationError:
            # Someone already took it as far as the limit allows: nothing to do.
            continue


def load(demo) -> None:
    shop = demo.shop
    policy = _policy(shop)
    new = _earn_for_purchases(shop, policy)
    # Every demo member got the registration bonus (set-based, once each).
    from points.services.bonuses import award_signup_bonuses

    award_signup_bonuses(shop=shop, since=timezone.now() - SIGNUP_SINCE)
    if new:
        from points.services.expiry import expire_due_lots

        expire_due_lots(shop=shop, now=timezone.now())
    _redeem_a_few(shop, demo.owner)

    accounts = PointsAccount.objects.filter(balance__gt=0)
    held = accounts.aggregate(held=Sum("balance", default=0))["held"]
    demo.summary.append(
        _(
            "Points:   %(points)s points held by %(members)s members "
            "(%(new)s purchases newly credited), %(rewards)s rewards"
        )
        % {
            "points": f"{held:,}",
            "members": f"{accounts.count():,}",
            "new": f"{new:,}",
            "rewards": Reward.objects.filter(shop=shop).count(),
        }
    )
