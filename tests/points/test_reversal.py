"""Refunds take back the purchase's points in proportion; when they were spent,
the shop's policy decides (go negative, or take what remains)."""

import pytest

from points.models import EntryKind, EntrySource, PointsAccount, PointsEntry
from points.services import ledger, reversal, settlement
from tests.points.factories import EarningRuleFactory, PointsPolicyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def purchase(in_shop, member):
    EarningRuleFactory(shop=in_shop)
    return settlement.record_purchase(
        shop=in_shop, member=member, external_order_id="P-1", amount="200"
    )


def account(member):
    return PointsAccount.objects.get(member=member)


def refund(purchase, amount, **kwargs):
    return settlement.refund_purchase(purchase=purchase, amount=amount, **kwargs)


def test_a_partial_refund_takes_back_its_share(purchase, member, assert_ledger_ok):
    first = refund(purchase, "50")
    second = refund(purchase, "25")

    assert first.points_entry.points == -50
    assert second.points_entry.points == -25
    assert first.points_entry.kind == EntryKind.REVERSE
    assert first.points_entry.source == EntrySource.REFUND
    acc = account(member)
    assert (acc.balance, acc.lifetime_earned) == (125, 125)
    assert_ledger_ok()


def test_proportions_are_rounded_on_the_running_total(in_shop, member):
    EarningRuleFactory(shop=in_shop)
    purchase = settlement.record_purchase(
        shop=in_shop, member=member, external_order_id="P-3", amount="3"
    )

    parts = [refund(purchase, "1").points_entry.points for _ in range(3)]

    assert sorted(parts) == [-1, -1, -1]
    assert account(member).balance == 0


def test_a_full_refund_takes_back_everything_from_the_purchase_lot_first(
    purchase, member, assert_ledger_ok
):
    other = ledger.credit(member=member, points=40, kind="earn", source="campaign")

    entry = refund(purchase, "200").points_entry

    assert entry.points == -200
    assert other.lots.get().remaining == 40
    assert account(member).balance == 40
    assert_ledger_ok()


def test_spent_points_go_negative_under_that_policy(
    in_shop, purchase, member, assert_ledger_ok
):
    PointsPolicyFactory(shop=in_shop, refund_policy="go_negative")
    ledger.debit(member=member, points=150, kind="redeem", source="reward")

    entry = refund(purchase, "200").points_entry

    assert entry.points == -200
    assert account(member).balance == -150
    assert_ledger_ok()


def test_only_what_remains_is_taken_under_take_remaining(
    in_shop, purchase, member, assert_ledger_ok
):
    PointsPolicyFactory(shop=in_shop, refund_policy="take_remaining")
    ledger.debit(member=member, points=150, kind="redeem", source="reward")

    entry = refund(purchase, "200").points_entry

    assert entry.points == -50
    assert "150" in entry.reason
    assert account(member).balance == 0
    assert_ledger_ok()


def test_nothing_left_to_take_writes_nothing(in_shop, purchase, member):
    PointsPolicyFactory(shop=in_shop, refund_policy="take_remaining")
    ledger.debit(member=member, points=200, kind="redeem", source="reward")

    done = refund(purchase, "200")

    assert done.points_entry is None
    assert account(member).balance == 0


def test_a_purchase_that_earned_nothing_reverses_nothing(in_shop, member):
    purchase = settlement.record_purchase(
        shop=in_shop, member=member, external_order_id="P-2", amount="50"
    )

    done = refund(purchase, "50")

    assert done.points_entry is None
    assert not PointsEntry.objects.exists()


def test_reversing_one_refund_twice_takes_once(purchase, member):
    done = refund(purchase, "100")

    again = reversal.reverse_for_refund(refund=done)

    assert again.pk == done.points_entry.pk
    assert account(member).balance == 100


def test_a_refund_reaches_the_purchase_points_while_pending(in_shop, member):
    PointsPolicyFactory(shop=in_shop, pending_days=7)
    EarningRuleFactory(shop=in_shop)
    ledger.credit(member=member, points=10, kind="earn", source="campaign")
    purchase = settlement.record_purchase(
        shop=in_shop, member=member, external_order_id="P-9", amount="100"
    )

    entry = refund(purchase, "100").points_entry

    assert entry.points == -100
    acc = account(member)
    assert (acc.balance, acc.pending) == (10, 0)
