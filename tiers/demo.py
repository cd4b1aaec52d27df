"""The demo shop's tier ladder: normal, senior, VIP and supreme VIP, with a
policy, then a recalculation so that the demo members hold their tiers.

`manage.py load_demo` calls `load(demo)` after the members section, inside the
demo shop's scope. The ladder is saved through `apply_rule_change` and the
members placed by `recalculate_shop`, as an owner's first setup would. A second
run finds the four ranks and leaves the ladder and policy as they are (an
owner may have changed them); the recalculation then moves nobody.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext as _

from tiers.models import Basis, DowngradeRule, Tier, Window

# rank -> what the tier is; thresholds over a rolling year, spend OR orders.
LADDER = {
    0: {
        "name": "Normal",
        "name_translations": {"zh-hans": "普通会员"},
        "colour": "#94a3b8",
        "description": "Every member starts here.",
        "min_spend": Decimal("0.00"),
        "min_orders": 0,
        "discount_percent": Decimal("0.00"),
        "points_multiplier": Decimal("1.00"),
        "free_shipping": False,
        "birthday_points": 50,
        "perks": "",
    },
    1: {
        "name": "Senior",
        "name_translations": {"zh-hans": "高级会员"},
        "colour": "#3b82f6",
        "description": "Spend 1,000 or complete 5 orders in a year.",
        "min_spend": Decimal("1000.00"),
        "min_orders": 5,
        "discount_percent": Decimal("5.00"),
        "points_multiplier": Decimal("1.20"),
        "free_shipping": False,
        "birthday_points": 200,
        "perks": "A free pot of tea on your birthday",
    },
    2: {
        "name": "VIP",
        "name_translations": {"zh-hans": "VIP会员"},
        "colour": "#d4a017",
        "description": "Spend 3,000 or complete 12 orders in a year.",
        "min_spend": Decimal("3000.00"),
        "min_orders": 12,
        "discount_percent": Decimal("10.00"),
        "points_multiplier": Decimal("1.50"),
        "free_shipping": True,
        "birthday_points": 500,
        "perks": "Tasting events for members\nPriority seats in the tea room",
    },
    3: {
        "name": "Supreme VIP",
        "name_translations": {"zh-hans": "至尊VIP"},
        "colour": "#7c3aed",
        "description": "Spend 8,000 or complete 30 orders in a year.",
        "min_spend": Decimal("8000.00"),
        "min_orders": 30,
        "discount_percent": Decimal("15.00"),
        "points_multiplier": Decimal("2.00"),
        "free_shipping": True,
        "birthday_points": 1000,
        "perks": (
            "Tasting events for members\nPriority seats in the tea room\n"
            "A private tea master session each season"
        ),
    },
}
POLICY = {
    "basis": Basis.EITHER,
    "window": Window.ROLLING,
    "window_months": 12,
    "downgrade": DowngradeRule.ONE_STEP,
    "grace_days": 30,
}


def load(demo) -> None:
    from tiers.services.ladder import ladder_of, policy_of
    from tiers.services.recalculation import apply_rule_change, recalculate_shop

    shop = demo.shop
    existing = {tier.rank: tier for tier in ladder_of(shop)}
    missing = [rank for rank in LADDER if rank not in existing]
    if missing:
        policy = policy_of(shop)
        if not existing:
            # A new ladder: the demo's policy too (an existing one is the owner's).
            for name, value in POLICY.items():
                setattr(policy, name, value)
        tiers = [*existing.values()]
        tiers += [Tier(shop=shop, rank=rank, **LADDER[rank]) for rank in missing]
        apply_rule_change(shop=shop, tiers=tiers, policy=policy, mode="next_purchase")
    up, down = recalculate_shop(shop=shop)

    # The ladder page's figures (one GROUP BY).
    from tiers.admin.ladder import tier_distribution

    counts = ", ".join(
        f"{row['tier'].display_name()} {row['members']}"
        for row in tier_distribution(shop)
    )
    demo.summary.append(
        _("Tiers:    %(counts)s (%(up)d moved up, %(down)d down now)")
        % {"counts": counts, "up": up, "down": down}
    )
