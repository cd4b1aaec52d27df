"""factory-boy factories of the tiers app (tenant rows through `unscoped()`)."""

from decimal import Decimal

import factory

from tests.factories import ShopFactory, TenantFactory
from tiers.models import Tier, TierPolicy


class TierFactory(TenantFactory):
    class Meta:
        model = Tier

    shop = factory.SubFactory(ShopFactory)
    name = factory.Sequence(lambda n: f"Tier {n}")
    rank = factory.Sequence(lambda n: n)
    min_spend = Decimal("0.00")
    min_orders = 0


class TierPolicyFactory(TenantFactory):
    class Meta:
        model = TierPolicy
        django_get_or_create = ("shop",)

    shop = factory.SubFactory(ShopFactory)


def make_ladder(shop, *steps, **policy) -> list[Tier]:
    """Tiers of `shop` from (name, min_spend, min_orders) triples, rank 0 up,
    and the shop's policy with `policy`'s fields."""
    steps = steps or (
        ("Normal", "0", 0),
        ("Senior", "1000", 5),
        ("VIP", "5000", 20),
        ("Supreme", "20000", 50),
    )
    tiers = [
        TierFactory(
            shop=shop, name=name, rank=rank, min_spend=Decimal(spend), min_orders=orders
        )
        for rank, (name, spend, orders) in enumerate(steps)
    ]
    found = TierPolicyFactory(shop=shop)
    for name, value in policy.items():
        setattr(found, name, value)
    found.save()
    return tiers
