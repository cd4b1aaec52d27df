"""The demo's points: a policy, earning rules, rewards, points for the demo
members' completed purchases and a few redemptions; a second load adds
nothing and the ledger stays consistent."""

from io import StringIO

import pytest
from django.core.management import call_command

from members.demo import ORDER_PREFIX
from members.models import Member, Purchase
from points.demo import REWARDS
from points.models import (
    EarningRule,
    PointsAccount,
    PointsEntry,
    PointsLot,
    PointsPolicy,
    Redemption,
    Reward,
)
from shops.models import Shop
from tests.points.conftest import ledger_problems

pytestmark = pytest.mark.django_db


def load() -> str:
    out = StringIO()
    call_command("load_demo", "--shop-slug", "demo-points", stdout=out)
    return out.getvalue()


def counts(shop) -> dict:
    def rows(model):
        return model.objects.unscoped().filter(shop=shop).count()

    return {
        model.__name__: rows(model)
        for model in (
            PointsPolicy,
            EarningRule,
            Reward,
            PointsAccount,
            PointsEntry,
            PointsLot,
            Redemption,
        )
    }


def test_the_demo_loads_points_once_and_consistently():
    first_output = load()
    shop = Shop.objects.get(slug="demo-points")
    first = counts(shop)
    balances = dict(
        PointsAccount.objects.unscoped()
        .filter(shop=shop)
        .values_list("member_id", "balance")
    )

    second_output = load()

    assert counts(shop) == first
    assert (
        dict(
            PointsAccount.objects.unscoped()
            .filter(shop=shop)
            .values_list("member_id", "balance")
        )
        == balances
    )
    assert first["PointsPolicy"] == 1
    assert first["EarningRule"] == 4
    assert first["Reward"] == len(REWARDS)
    assert first["Redemption"] > 0
    assert "Points:" in first_output
    assert "(0 purchases newly credited)" in second_output
    assert not ledger_problems(shop)

    policy = PointsPolicy.objects.unscoped().get(shop=shop)
    assert (policy.cash_points, str(policy.cash_value), policy.cash_max_share) == (
        20,
        "1.00",
        50,
    )
    rules = dict(
        EarningRule.objects.unscoped().filter(shop=shop).values_list("kind", "points")
    )
    assert rules["registration"] == 100
    assert rules["referral"] == 200
    assert rules["birthday"] == 300


def test_every_completed_demo_purchase_earned_once():
    load()
    shop = Shop.objects.get(slug="demo-points")
    purchases = Purchase.objects.unscoped().filter(
        shop=shop,
        external_order_id__startswith=ORDER_PREFIX,
        status__in=("completed", "partially_refunded"),
    )
    earned = PointsEntry.objects.unscoped().filter(
        shop=shop, kind="earn", source="purchase"
    )

    assert earned.count() == purchases.count()
    assert earned.values("purchase_id").distinct().count() == purchases.count()
    # Points a member earned long ago have expired, as the nightly task does.
    assert PointsEntry.objects.unscoped().filter(shop=shop, kind="expire").exists()
    assert PointsAccount.objects.unscoped().filter(shop=shop, balance__gt=0).exists()
    # Each demo member got the registration bonus once.
    members = Member.objects.unscoped().filter(shop=shop, status="active")
    bonuses = PointsEntry.objects.unscoped().filter(shop=shop, source="registration")
    assert bonuses.count() == members.count()
    assert set(bonuses.values_list("points", flat=True)) == {100}
