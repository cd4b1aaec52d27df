"""Earning on completed purchases: rate, tier multiplier, rounding, exclusions,
daily caps, the return window, and once only per purchase."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from points.models import EntryKind, EntrySource, PointsAccount, PointsEntry, RuleKind
from points.services import earning, ledger, settlement
from tests.factories import StoreFactory
from tests.members.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, PointsPolicyFactory
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def buy(shop, member, amount, order=None, **kwargs):
    buy.n = getattr(buy, "n", 0) + 1
    return settlement.record_purchase(
        shop=shop,
        member=member,
        external_order_id=order or f"E-{buy.n}",
        amount=amount,
        **kwargs,
    )


def balance(member):
    account = PointsAccount.objects.filter(member=member).first()
    return account.balance if account else 0


def test_a_completed_purchase_earns_at_the_rule_rate(in_shop, member):
    EarningRuleFactory(shop=in_shop, points_per_unit="2.00")

    purchase = buy(in_shop, member, "45.50")

    entry = purchase.points_entry
    assert entry.points == 91
    assert (entry.kind, entry.source) == (EntryKind.EARN, EntrySource.PURCHASE)
    assert entry.purchase_id == purchase.pk
    assert balance(member) == 91


def test_no_active_purchase_rule_earns_nothing(in_shop, member):
    EarningRuleFactory(shop=in_shop, is_active=False)

    purchase = buy(in_shop, member, "100")

    assert purchase.points_entry is None
    assert not PointsEntry.objects.exists()


@pytest.mark.parametrize(
    ("rounding", "expected"), [("down", 12), ("half_up", 13), ("up", 13)]
)
def test_rounding_follows_the_rule(in_shop, member, rounding, expected):
    EarningRuleFactory(shop=in_shop, points_per_unit="1.00", rounding=rounding)

    assert buy(in_shop, member, "12.60").points_entry.points == expected


def test_rounding_half_up_keeps_below_half_down(in_shop, member):
    EarningRuleFactory(shop=in_shop, rounding="half_up")

    assert buy(in_shop, member, "12.49").points_entry.points == 12


def test_the_tier_multiplier_applies(in_shop, member):
    Tier.objects.unscoped().create(
        shop=in_shop, name="Gold", rank=0, points_multiplier=Decimal("1.50")
    )
    EarningRuleFactory(shop=in_shop)

    assert buy(in_shop, member, "101").points_entry.points == 151


def test_an_excluded_store_earns_nothing(in_shop, member):
    outlet = StoreFactory(shop=in_shop)
    EarningRuleFactory(shop=in_shop, excluded_stores=[outlet])

    purchase = buy(in_shop, member, "100", store=outlet)

    assert purchase.points_entry is None
    assert buy(in_shop, member, "100").points_entry.points == 100


def test_excluded_skus_take_their_share_of_the_paid_amount(in_shop, member):
    EarningRuleFactory(shop=in_shop, excluded_skus="GIFT-CARD\nTOBACCO")

    purchase = buy(
        in_shop,
        member,
        "100",
        discount="20",
        lines=[
            {"sku": "TEA", "name": "Tea", "quantity": "3", "unit_price": "25"},
            {"sku": "GIFT-CARD", "name": "Card", "quantity": "1", "unit_price": "25"},
        ],
    )

    # Paid 80 for lines worth 100, of which 75 earn: 60 points.
    assert purchase.points_entry.points == 60


def test_daily_caps_per_member_and_per_rule(in_shop, member):
    PointsPolicyFactory(shop=in_shop, daily_cap=150)
    EarningRuleFactory(shop=in_shop, daily_cap=120)

    first = buy(in_shop, member, "100").points_entry
    second = buy(in_shop, member, "100").points_entry
    third = buy(in_shop, member, "100").points_entry

    assert (first.points, second.points, third) == (100, 20, None)
    # Another member has their own cap.
    assert buy(in_shop, MemberFactory(shop=in_shop), "100").points_entry.points == 100


def test_the_shop_cap_counts_every_capped_rule(in_shop, member):
    PointsPolicyFactory(shop=in_shop, daily_cap=50)
    EarningRuleFactory(shop=in_shop)
    ledger.credit(
        member=member,
        points=30,
        kind=EntryKind.EARN,
        source=EntrySource.REFERRAL,
        reference="rule:0",
    )

    assert buy(in_shop, member, "100").points_entry.points == 20


def test_points_stay_pending_through_the_return_window(in_shop, member):
    PointsPolicyFactory(shop=in_shop, pending_days=7)
    EarningRuleFactory(shop=in_shop)

    entry = buy(in_shop, member, "80").points_entry

    account = PointsAccount.objects.get(member=member)
    assert (account.balance, account.pending) == (80, 80)
    lot = entry.lots.get()
    assert lot.available_at - timezone.now() > timedelta(days=6)
    with pytest.raises(ledger.InsufficientPoints):
        ledger.debit(member=member, points=1, kind="redeem", source="reward")


def test_earning_twice_for_one_purchase_credits_once(in_shop, member):
    EarningRuleFactory(shop=in_shop)
    purchase = buy(in_shop, member, "100")

    again = earning.earn_for_purchase(purchase=purchase)

    assert again.pk == purchase.points_entry.pk
    assert balance(member) == 100


def test_a_replayed_order_earns_nothing_more(in_shop, member):
    EarningRuleFactory(shop=in_shop)
    buy(in_shop, member, "100", order="R-1")

    replay = buy(in_shop, member, "100", order="R-1")

    assert replay.replayed
    assert balance(member) == 100


def test_a_pending_purchase_earns_when_completed(in_shop, member):
    EarningRuleFactory(shop=in_shop)
    purchase = buy(in_shop, member, "30", complete=False)
    assert purchase.points_entry is None

    done = settlement.complete_purchase(purchase=purchase)

    assert done.points_entry.points == 30


def test_rules_are_per_shop(in_shop, member, other_shop):
    EarningRuleFactory(shop=other_shop, points_per_unit="5")
    EarningRuleFactory(shop=in_shop, kind=RuleKind.REGISTRATION, points=5)

    assert buy(in_shop, member, "100").points_entry is None
