"""The demo's tier ladder: four tiers with Chinese names, members placed in
them, and a second load changes nothing."""

import itertools
from io import StringIO

import pytest
from django.core.management import call_command

from shops.models import Shop
from shops.tenancy import shop_scope
from tiers.models import MemberTier, Tier, TierChange, TierPolicy

pytestmark = pytest.mark.django_db


def load() -> str:
    out = StringIO()
    call_command("load_demo", "--shop-slug", "demo-tiers", stdout=out)
    return out.getvalue()


def snapshot(shop):
    with shop_scope(shop):
        return (
            list(Tier.objects.order_by("rank").values_list("id", "min_spend")),
            list(TierPolicy.objects.values_list("id", "basis", "window")),
            sorted(MemberTier.objects.values_list("member_id", "tier_id", "since")),
            TierChange.objects.count(),
        )


def test_the_demo_ladder_loads_once_and_places_the_members():
    first_output = load()
    shop = Shop.objects.get(slug="demo-tiers")
    first = snapshot(shop)

    second_output = load()

    with shop_scope(shop):
        tiers = list(Tier.objects.order_by("rank"))
        held = set(MemberTier.objects.values_list("tier__rank", flat=True))
        policy = TierPolicy.objects.get()
    assert [t.name for t in tiers] == ["Normal", "Senior", "VIP", "Supreme VIP"]
    assert [t.display_name("zh-hans") for t in tiers] == [
        "普通会员", "高级会员", "VIP会员", "至尊VIP",
    ]  # fmt: skip
    assert [t.min_spend for t in tiers] == sorted(t.min_spend for t in tiers)
    assert tiers[0].min_spend == 0
    assert tiers[0].min_orders == 0
    assert all(
        t.discount_percent < u.discount_percent for t, u in itertools.pairwise(tiers)
    )
    assert len({t.colour for t in tiers}) == 4
    assert policy.window == "rolling"
    # Members reached every tier above the entry one.
    assert held >= {1, 2}
    assert first[3] > 0
    assert snapshot(shop) == first
    assert "Tiers:" in first_output
    assert "0 moved up, 0 down now" in second_output
