"""Redemptions under real concurrency (PostgreSQL row locks, one connection per
thread): points are never overspent, the last item is never sold twice, and a
retried request never debits twice."""

import pytest
from django.core.exceptions import ValidationError

from points.models import (
    PointsAccount,
    PointsEntry,
    Redemption,
    RedemptionStatus,
    Reward,
)
from points.services import settlement
from points.services.cash import pay_with_points
from points.services.rewards import cancel_redemption, redeem_reward
from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory
from tests.members.test_purchases_concurrency import at_once
from tests.points.test_rewards import RewardFactory, give

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def funded_member(shop, points):
    member = MemberFactory(shop=shop)
    with shop_scope(shop):
        give(member, points)
    return member


def figures(shop, member, reward=None):
    with shop_scope(shop):
        stock = None
        if reward is not None:
            stock = Reward.objects.get(pk=reward.pk).stock
        return (
            PointsAccount.objects.get(member=member).balance,
            Redemption.objects.filter(member=member).count(),
            stock,
        )


def codes(results):
    return sorted(
        getattr(r, "code", type(r).__name__)
        for r in results
        if not isinstance(r, Redemption)
    )


def test_two_redemptions_with_points_for_one_redeem_once(shop):
    member = funded_member(shop, 150)
    cups = RewardFactory(shop=shop, points_price=100, stock=None)
    pots = RewardFactory(shop=shop, points_price=100, stock=None)

    results = at_once(
        shop,
        lambda: redeem_reward(member=member, reward=cups),
        lambda: redeem_reward(member=member, reward=pots),
    )

    assert sum(isinstance(r, Redemption) for r in results) == 1, results
    assert codes(results) == ["insufficient_points"]
    assert figures(shop, member) == (50, 1, None)


def test_the_last_item_goes_to_one_of_two_members(shop):
    first, second = funded_member(shop, 500), funded_member(shop, 500)
    reward = RewardFactory(shop=shop, points_price=100, stock=1)

    results = at_once(
        shop,
        lambda: redeem_reward(member=first, reward=reward),
        lambda: redeem_reward(member=second, reward=reward),
    )

    assert sum(isinstance(r, Redemption) for r in results) == 1, results
    assert codes(results) == ["out_of_stock"]
    balances = sorted(figures(shop, m, reward)[0] for m in (first, second))
    assert balances == [400, 500]
    assert figures(shop, first, reward)[2] == 0


def test_a_retry_racing_the_first_request_debits_once(shop):
    member = funded_member(shop, 500)
    reward = RewardFactory(shop=shop, points_price=100, stock=5)

    def redeem():
        return redeem_reward(member=member, reward=reward, idempotency_key="till-7")

    results = at_once(shop, redeem, redeem, redeem)

    assert all(isinstance(r, Redemption) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert figures(shop, member, reward) == (400, 1, 4)
    with shop_scope(shop):
        assert PointsEntry.objects.filter(points__lt=0).count() == 1


def test_two_payments_for_one_order_at_once_pay_once(shop):
    member = funded_member(shop, 5000)

    def pay():
        return pay_with_points(
            member=member, external_order_id="O-1", order_total="100", points=300
        )

    results = at_once(shop, pay, pay)

    assert all(isinstance(r, Redemption) for r in results), results
    assert results[0].pk == results[1].pk
    assert figures(shop, member) == (4700, 1, None)


def test_two_payments_with_points_for_one_pay_once(shop):
    member = funded_member(shop, 300)

    def pay(order):
        return lambda: pay_with_points(
            member=member, external_order_id=order, order_total="100", points=300
        )

    results = at_once(shop, pay("O-2"), pay("O-3"))

    assert sum(isinstance(r, Redemption) for r in results) == 1, results
    assert all(isinstance(r, Redemption | ValidationError) for r in results), results
    assert codes(results) == ["insufficient_points"]
    assert figures(shop, member) == (0, 1, None)


def test_a_cancel_and_a_refund_of_one_payment_at_once_return_it_once(shop):
    member = funded_member(shop, 5000)
    with shop_scope(shop):
        paid = pay_with_points(
            member=member, external_order_id="O-4", order_total="100", points=1000
        )
        purchase = settlement.record_purchase(
            shop=shop, member=member, external_order_id="O-4", amount="100"
        )

    results = at_once(
        shop,
        lambda: cancel_redemption(redemption=paid),
        lambda: settlement.refund_purchase(purchase=purchase, amount="50"),
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    # Whichever came first, the payment's 1000 points came back exactly once.
    assert figures(shop, member)[0] == 5000
    with shop_scope(shop):
        paid.refresh_from_db()
        assert paid.status == RedemptionStatus.CANCELLED


def test_a_redemption_and_a_cancel_of_one_reward_at_once_both_finish(shop):
    member = funded_member(shop, 500)
    reward = RewardFactory(shop=shop, points_price=100, stock=1)
    with shop_scope(shop):
        first = redeem_reward(member=member, reward=reward)

    results = at_once(
        shop,
        lambda: cancel_redemption(redemption=first),
        lambda: redeem_reward(member=member, reward=reward),
    )

    assert isinstance(results[0], Redemption), results
    # The redemption got the item back in time, or found the stock empty.
    if isinstance(results[1], Redemption):
        assert figures(shop, member, reward) == (400, 2, 0)
    else:
        assert results[1].code == "out_of_stock"
        assert figures(shop, member, reward) == (500, 1, 1)
