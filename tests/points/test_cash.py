"""Points as cash: quotes, paying part of an order, and the points coming back
when the order is cancelled or refunded (through the settlement service)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from points.models import (
    EntrySource,
    PointsAccount,
    PointsEntry,
    PointsLot,
    PointsPolicy,
    Redemption,
    RedemptionKind,
    RedemptionStatus,
)
from points.services import settlement
from points.services.cash import pay_with_points, quote, return_order_payment
from points.services.rewards import cancel_redemption
from shops.errors import NotFound
from shops.tenancy import shop_scope
from tests.factories import StoreFactory
from tests.members.factories import MemberFactory
from tests.points.factories import EarningRuleFactory
from tests.points.test_rewards import give

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(in_shop):
    # 20 points = 1.00, at least 100 points, at most half of an order.
    return PointsPolicy.objects.create(
        shop=in_shop,
        cash_points=20,
        cash_value=Decimal("1.00"),
        cash_min_points=100,
        cash_max_share=Decimal("50.00"),
    )


@pytest.fixture
def member(in_shop, policy):
    member = MemberFactory(shop=in_shop)
    give(member, 5000)
    return member


def balance(member) -> int:
    return PointsAccount.objects.get(member=member).balance


def state(member):
    return (balance(member), Redemption.objects.count(), PointsEntry.objects.count())


# -------------------------------------------------------------------- quote


def test_quote_caps_points_at_the_orders_share(member):
    figures = quote(member=member, order_total="100.00")

    assert figures.max_points == 1000  # 50.00 at 20 points per 1.00
    assert figures.max_value == Decimal("50.00")
    assert (figures.cash_points, figures.cash_value) == (20, Decimal("1.00"))
    assert (figures.min_points, figures.spendable, figures.step) == (100, 5000, 1)
    assert figures.points is None
    assert figures.allowed is None


def test_quote_caps_points_at_what_the_member_can_spend(in_shop, policy):
    member = MemberFactory(shop=in_shop)
    give(member, 317)

    figures = quote(member=member, order_total=Decimal("100.00"))

    assert (figures.max_points, figures.max_value) == (317, Decimal("15.85"))


def test_below_the_minimum_no_points_can_be_used(in_shop, policy):
    member = MemberFactory(shop=in_shop)
    give(member, 99)

    assert quote(member=member, order_total="100.00").max_points == 0
    # Half of a 3.00 order is 30 points: below the minimum of 100 too.
    give(member, 1000)
    assert quote(member=member, order_total="3.00").max_points == 0


def test_requested_points_get_their_value(member):
    figures = quote(member=member, order_total="88.50", points=250)

    assert (figures.points, figures.value, figures.allowed) == (
        250,
        Decimal("12.50"),
        True,
    )


def test_points_come_in_steps_worth_whole_cents(in_shop):
    PointsPolicy.objects.create(
        shop=in_shop, cash_points=3, cash_value=Decimal("0.10"), cash_min_points=0
    )
    member = MemberFactory(shop=in_shop)
    give(member, 1000)

    figures = quote(member=member, order_total="10.01")

    # Half of 10.01 is 5.005: 150 points (5.00); 151 would not be whole cents.
    assert (figures.step, figures.max_points, figures.max_value) == (
        3,
        150,
        Decimal("5.00"),
    )
    with pytest.raises(ValidationError) as refused:
        quote(member=member, order_total="10.01", points=151)
    assert refused.value.code == "invalid_points"
    assert quote(member=member, order_total="10.01", points=150).value == Decimal(
        "5.00"
    )


@pytest.mark.parametrize(
    ("total", "points", "code"),
    [
        ("10.00", 400, "quote_above_total"),  # worth 20.00
        ("100.00", 1001, "points_above_max"),
        ("100.00", 60, "points_below_min"),
        ("100.00", 0, "invalid_points"),
        ("100.00", -20, "invalid_points"),
        ("100.00", "lots", "invalid_points"),
        ("0", 100, "invalid_order_total"),
        ("-5.00", 100, "invalid_order_total"),
        ("abc", 100, "invalid_order_total"),
        (12.5, 100, "invalid_order_total"),
        ("1.234", 100, "invalid_order_total"),
    ],
)
def test_bad_quotes_are_refused_clearly(member, total, points, code):
    with pytest.raises(ValidationError) as refused:
        quote(member=member, order_total=total, points=points)

    assert refused.value.code == code
    assert refused.value.messages


def test_above_the_share_the_message_names_the_most_points(member):
    with pytest.raises(ValidationError) as refused:
        quote(member=member, order_total="100.00", points=1200)

    assert refused.value.messages == [
        "At most 1000 points (50% of the order) can be used."
    ]


def test_more_points_than_the_member_has_is_refused(in_shop, policy):
    member = MemberFactory(shop=in_shop)
    give(member, 300)

    with pytest.raises(ValidationError) as refused:
        quote(member=member, order_total="100.00", points=600)

    assert refused.value.code == "insufficient_points"


# -------------------------------------------------------------------- paying


def test_paying_with_points_debits_them_for_the_order(member, in_shop):
    store = StoreFactory(shop=in_shop)

    paid = pay_with_points(
        member=member,
        external_order_id="W-1",
        order_total="100.00",
        points=400,
        store=store,
    )

    assert (paid.kind, paid.points, paid.cash_value) == (
        RedemptionKind.ORDER_PAYMENT,
        400,
        Decimal("20.00"),
    )
    assert (paid.external_order_id, paid.store, paid.status) == (
        "W-1",
        store,
        RedemptionStatus.COMPLETED,
    )
    assert paid.debit.points == -400
    assert paid.debit.source == EntrySource.ORDER_PAYMENT
    assert balance(member) == 4600


def test_paying_twice_for_one_order_pays_once(member):
    first = pay_with_points(
        member=member, external_order_id="W-2", order_total="100.00", points=400
    )

    again = pay_with_points(
        member=member, external_order_id="W-2", order_total="100.00", points=400
    )

    assert again.pk == first.pk
    assert again.replayed is True
    assert balance(member) == 4600
    before = state(member)
    with pytest.raises(ValidationError) as refused:
        pay_with_points(
            member=member, external_order_id="W-2", order_total="100.00", points=500
        )
    assert refused.value.code == "order_paid"
    assert state(member) == before


def test_paying_with_a_used_key_returns_the_first_or_conflicts(member):
    first = pay_with_points(
        member=member,
        external_order_id="W-3",
        order_total="100.00",
        points=200,
        idempotency_key="k-1",
    )
    again = pay_with_points(
        member=member,
        external_order_id="W-3",
        order_total="100.00",
        points=200,
        idempotency_key="k-1",
    )
    before = state(member)

    with pytest.raises(ValidationError) as refused:
        pay_with_points(
            member=member,
            external_order_id="W-4",
            order_total="100.00",
            points=200,
            idempotency_key="k-1",
        )

    assert again.pk == first.pk
    assert refused.value.code == "idempotency_conflict"
    assert state(member) == before == (4800, 1, before[2])


@pytest.mark.parametrize(
    ("order", "total", "points", "code"),
    [
        ("", "100.00", 200, "invalid_order"),
        ("W" * 65, "100.00", 200, "invalid_order"),
        ("W-5", "10.00", 400, "quote_above_total"),
        ("W-5", "100.00", 2000, "points_above_max"),
        ("W-5", "0.00", 200, "invalid_order_total"),
        ("W-5", "100.00", 0, "invalid_points"),
    ],
)
def test_bad_payments_change_nothing(member, order, total, points, code):
    before = state(member)

    with pytest.raises(ValidationError) as refused:
        pay_with_points(
            member=member, external_order_id=order, order_total=total, points=points
        )

    assert refused.value.code == code
    assert state(member) == before


def test_another_shops_order_or_store_is_not_ours(member, in_shop, other_shop):
    stranger = MemberFactory(shop=other_shop)
    with shop_scope(other_shop):
        settlement.record_purchase(
            shop=other_shop, member=stranger, external_order_id="X-1", amount="10"
        )
    theirs = StoreFactory(shop=other_shop)
    neighbour = MemberFactory(shop=in_shop)
    settlement.record_purchase(
        shop=in_shop, member=neighbour, external_order_id="N-1", amount="10"
    )
    before = state(member)

    with pytest.raises(ValidationError) as refused:
        pay_with_points(
            member=member,
            external_order_id="W-6",
            order_total="100",
            points=200,
            store=theirs,
        )
    assert refused.value.code == "invalid_store"
    # Another member's order in this shop: as if it did not exist for them.
    with pytest.raises(NotFound):
        pay_with_points(
            member=member, external_order_id="N-1", order_total="10", points=100
        )
    assert state(member) == before
    # The same order number in another shop is another order.
    paid = pay_with_points(
        member=member, external_order_id="X-1", order_total="100", points=200
    )
    assert paid.purchase is None


# -------------------------------------------------------------------- returns


def pay_and_buy(member, shop, *, order="R-1", points=1000, complete=True):
    """Pay 1000 points (50.00) towards a 100.00 order, then record it."""
    paid = pay_with_points(
        member=member, external_order_id=order, order_total="100.00", points=points
    )
    purchase = settlement.record_purchase(
        shop=shop,
        member=member,
        external_order_id=order,
        amount="100.00",
        complete=complete,
    )
    return paid, purchase


def test_cancelling_the_purchase_returns_all_points_paid(member, in_shop):
    paid, purchase = pay_and_buy(member, in_shop, complete=False)
    assert balance(member) == 4000

    cancelled = settlement.cancel_purchase(purchase=purchase)

    paid.refresh_from_db()
    assert balance(member) == 5000
    assert cancelled.points_entry.points == 1000
    assert paid.status == RedemptionStatus.CANCELLED
    # Cancelling again gives nothing more back.
    settlement.cancel_purchase(purchase=purchase)
    assert balance(member) == 5000


def test_a_full_refund_returns_all_points_paid(member, in_shop):
    paid, purchase = pay_and_buy(member, in_shop)

    refund = settlement.refund_purchase(purchase=purchase)

    paid.refresh_from_db()
    assert refund.points_returned.points == 1000
    assert balance(member) == 5000
    assert paid.status == RedemptionStatus.CANCELLED
    assert paid.purchase == purchase


def test_partial_refunds_return_their_share_cumulatively(
    member, in_shop, assert_ledger_ok
):
    paid, purchase = pay_and_buy(member, in_shop)

    first = settlement.refund_purchase(purchase=purchase, amount="33.33")
    second = settlement.refund_purchase(purchase=purchase, amount="33.33")

    # floor(1000 x 33.33%) = 333, then floor(1000 x 66.66%) - 333 = 333.
    assert (first.points_returned.points, second.points_returned.points) == (
        333,
        333,
    )
    assert balance(member) == 4666
    paid.refresh_from_db()
    assert paid.status == RedemptionStatus.COMPLETED

    last = settlement.refund_purchase(purchase=purchase, amount="33.34")

    paid.refresh_from_db()
    assert last.points_returned.points == 334
    assert balance(member) == 5000
    assert paid.status == RedemptionStatus.CANCELLED
    assert_ledger_ok()


def test_a_refund_returns_its_share_once(member, in_shop):
    _paid, purchase = pay_and_buy(member, in_shop)
    refund = settlement.refund_purchase(
        purchase=purchase, amount="50.00", external_refund_id="RF-1"
    )
    assert balance(member) == 4500

    replay = settlement.refund_purchase(
        purchase=purchase, amount="50.00", external_refund_id="RF-1"
    )
    direct = return_order_payment(purchase=refund.purchase, refund=refund)

    assert replay.pk == refund.pk
    assert direct.pk == refund.points_returned.pk
    assert balance(member) == 4500


def test_returned_points_keep_their_original_expiry(in_shop, policy):
    member = MemberFactory(shop=in_shop)
    soon = timezone.now() + timedelta(days=20)
    later = timezone.now() + timedelta(days=400)
    give(member, 600, expires_at=soon)
    give(member, 1000, expires_at=later)
    _paid, purchase = pay_and_buy(member, in_shop, points=800)
    # The soon lot went first: 600 from it, 200 from the later one.

    settlement.refund_purchase(purchase=purchase)

    lots = PointsLot.objects.filter(account__member=member, remaining__gt=0)
    assert sum(lot.remaining for lot in lots if lot.expires_at == soon) == 600
    assert sum(lot.remaining for lot in lots if lot.expires_at == later) == 1000


def test_cancelling_a_payment_after_a_partial_refund_returns_the_rest(
    member, in_shop, assert_ledger_ok
):
    paid, purchase = pay_and_buy(member, in_shop)
    settlement.refund_purchase(purchase=purchase, amount="25.00")
    assert balance(member) == 4250

    cancel_redemption(redemption=paid)

    assert balance(member) == 5000
    # A later full refund of the order returns nothing more.
    refund = settlement.refund_purchase(purchase=purchase)
    assert refund.points_returned is None
    assert balance(member) == 5000
    assert_ledger_ok()


def test_a_purchase_paid_without_points_returns_nothing(member, in_shop):
    purchase = settlement.record_purchase(
        shop=in_shop, member=member, external_order_id="P-1", amount="100.00"
    )

    refund = settlement.refund_purchase(purchase=purchase)

    assert refund.points_returned is None
    assert balance(member) == 5000


def test_an_order_cancelled_before_payment_cannot_be_paid(member, in_shop):
    purchase = settlement.record_purchase(
        shop=in_shop,
        member=member,
        external_order_id="P-2",
        amount="100.00",
        complete=False,
    )
    settlement.cancel_purchase(purchase=purchase)
    before = state(member)

    with pytest.raises(ValidationError) as refused:
        pay_with_points(
            member=member, external_order_id="P-2", order_total="100", points=200
        )

    assert refused.value.code == "order_closed"
    assert state(member) == before


def test_a_refund_takes_back_what_was_earned_and_returns_what_was_paid(
    member, in_shop, assert_ledger_ok
):
    # 1 point per 1.00 paid: the 100.00 purchase earns 100 points.
    EarningRuleFactory(shop=in_shop, points_per_unit="1.00")
    paid, purchase = pay_and_buy(member, in_shop)
    assert balance(member) == 4100

    refund = settlement.refund_purchase(purchase=purchase, amount="50.00")

    assert refund.points_entry.points == -50
    assert refund.points_returned.points == 500
    assert balance(member) == 4550
    settlement.refund_purchase(purchase=purchase)
    paid.refresh_from_db()
    assert balance(member) == 5000
    assert paid.status == RedemptionStatus.CANCELLED
    assert_ledger_ok()


def test_points_past_their_expiry_are_not_quoted(in_shop, policy):
    member = MemberFactory(shop=in_shop)
    give(member, 300)
    # Expired a minute ago; the nightly expiry run has not taken them yet.
    give(member, 500, expires_at=timezone.now() - timedelta(minutes=1))

    figures = quote(member=member, order_total="100.00")

    assert (figures.spendable, figures.max_points) == (300, 300)
    with pytest.raises(ValidationError) as refused:
        pay_with_points(
            member=member, external_order_id="E-1", order_total="100", points=400
        )
    assert refused.value.code == "insufficient_points"
