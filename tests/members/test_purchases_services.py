"""Purchase services: what is refused (and writes nothing), what counts in the
member's figures, refunds in full and in part, and the events emitted."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from members.models import Member, Purchase, PurchaseLine, PurchaseStatus, Refund
from members.services.purchases import (
    OrderExists,
    PurchaseStateError,
    RefundTooLarge,
    cancel_purchase,
    complete_purchase,
    record_purchase,
    refund_purchase,
)
from shops.errors import DomainError
from shops.models import OutboxEvent
from tests.factories import StoreFactory
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(in_shop):
    return MemberFactory(shop=in_shop)


@pytest.fixture
def buy(in_shop, member):
    """Record a purchase of `member` with sensible defaults."""
    counter = iter(range(1, 1000))

    def record(**kwargs):
        kwargs.setdefault("external_order_id", f"A-{next(counter)}")
        kwargs.setdefault("amount", "100.00")
        return record_purchase(
            shop=in_shop, member=kwargs.pop("member", member), **kwargs
        )

    return record


def figures(member):
    fresh = Member.objects.get(pk=member.pk)
    return (
        fresh.total_spent,
        fresh.order_count,
        fresh.first_purchase_at,
        fresh.last_purchase_at,
    )


def events(topic):
    return list(OutboxEvent.objects.filter(topic=topic).order_by("id"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "-1"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"amount": "100", "discount": "101"}, "discount"),
        ({"amount": "100", "paid_amount": "100.01"}, "paid_amount"),
        ({"currency": "USD"}, "currency"),
        ({"external_order_id": ""}, "external_order_id"),
        ({"channel": "fax"}, "channel"),
        ({"lines": [{"name": "Tea", "quantity": "0", "unit_price": "1"}]}, None),
        ({"lines": [{"name": "Tea", "quantity": "1", "unit_price": "-1"}]}, None),
        ({"lines": "tea"}, "lines"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(buy, member, changes, field):
    # When a purchase with bad input is recorded
    with pytest.raises(ValidationError) as refused:
        buy(**changes)

    # Then it names the field, and neither a purchase nor the figures changed
    if field:
        assert field in refused.value.message_dict
    assert Purchase.objects.count() == 0
    assert figures(member)[:2] == (Decimal("0.00"), 0)


def test_a_future_time_is_refused_but_small_clock_skew_is_not(buy):
    with pytest.raises(ValidationError) as refused:
        buy(occurred_at=timezone.now() + timedelta(hours=1))
    assert "occurred_at" in refused.value.message_dict

    assert buy(occurred_at=timezone.now() + timedelta(minutes=1)).pk


def test_a_store_or_member_of_another_shop_is_refused(buy, other_shop, in_shop):
    with pytest.raises(ValidationError) as refused:
        buy(store=StoreFactory(shop=other_shop))
    assert "store" in refused.value.message_dict

    with pytest.raises(DomainError) as not_found:
        buy(member=MemberFactory(shop=other_shop))
    assert not_found.value.status_code == 404
    assert Purchase.objects.count() == 0


def test_a_completed_purchase_counts_in_the_members_figures(buy, member):
    early = timezone.now() - timedelta(days=30)
    late = timezone.now() - timedelta(days=1)

    first = buy(amount="100.00", discount="10.00", occurred_at=late)
    second = buy(
        amount="50",
        occurred_at=early,
        lines=[{"sku": "T1", "name": "Tea", "quantity": "2", "unit_price": "25"}],
    )

    assert first.paid_amount == Decimal("90.00")
    assert first.status == PurchaseStatus.COMPLETED
    assert figures(member) == (Decimal("140.00"), 2, early, late)
    # The caller's member object carries the new figures too
    assert (member.total_spent, member.order_count) == (Decimal("140.00"), 2)
    assert second.lines.get().line_total == Decimal("50")
    # Each event carries the member's figures as that purchase left them.
    assert [
        (e.payload["member"]["total_spent"], e.payload["member"]["order_count"])
        for e in events("purchase.completed")
    ] == [("90.00", 1), ("140.00", 2)]
    assert [e.payload["purchase"]["id"] for e in events("purchase.completed")] == [
        first.pk,
        second.pk,
    ]


def test_a_pending_purchase_counts_only_once_completed(buy, member):
    pending = buy(complete=False)
    assert figures(member)[:2] == (Decimal("0.00"), 0)
    assert events("purchase.completed") == []

    complete_purchase(purchase=pending)
    again = complete_purchase(purchase=pending)

    assert again.status == PurchaseStatus.COMPLETED
    assert figures(member)[:2] == (Decimal("100.00"), 1)
    assert len(events("purchase.completed")) == 1


def test_completing_a_cancelled_purchase_is_refused(buy, member):
    pending = buy(complete=False)
    cancel_purchase(purchase=pending)

    with pytest.raises(PurchaseStateError) as refused:
        complete_purchase(purchase=pending)

    assert refused.value.code == "purchase_cancelled"
    assert figures(member)[:2] == (Decimal("0.00"), 0)


def test_a_completed_purchase_is_refunded_not_cancelled(buy):
    done = buy()

    with pytest.raises(PurchaseStateError) as refused:
        cancel_purchase(purchase=done)

    assert refused.value.code == "purchase_completed"
    assert Purchase.objects.get().status == PurchaseStatus.COMPLETED


def test_a_repeated_order_number_returns_the_first_or_is_refused(buy):
    first = buy(external_order_id="X-1", amount="10")

    again = buy(external_order_id="X-1", amount="10")
    with pytest.raises(OrderExists):
        buy(external_order_id="X-1", amount="11")

    assert again.pk == first.pk
    assert again.replayed
    assert Purchase.objects.count() == 1


def test_a_full_refund_takes_the_order_out_of_the_figures(buy, member):
    early = timezone.now() - timedelta(days=10)
    late = timezone.now() - timedelta(days=2)
    buy(amount="30", occurred_at=early)
    last = buy(amount="70", occurred_at=late)

    refund = refund_purchase(purchase=last, reason="broken cup")

    last.refresh_from_db()
    assert refund.amount == Decimal("70.00")
    assert last.status == PurchaseStatus.REFUNDED
    assert figures(member) == (Decimal("30.00"), 1, early, early)
    assert len(events("purchase.refunded")) == 1


def test_refunding_the_only_purchase_clears_first_and_last(buy, member):
    only = buy()
    refund_purchase(purchase=only)
    assert figures(member) == (Decimal("0.00"), 0, None, None)


def test_partial_refunds_by_amount_add_up_to_a_full_refund(buy, member):
    done = buy(amount="100")

    refund_purchase(purchase=done, amount="40")
    done.refresh_from_db()
    assert done.status == PurchaseStatus.PARTIALLY_REFUNDED
    assert figures(member)[:2] == (Decimal("60.00"), 1)

    with pytest.raises(RefundTooLarge):
        refund_purchase(purchase=done, amount="60.01")

    refund_purchase(purchase=done, amount="60")
    done.refresh_from_db()
    assert done.status == PurchaseStatus.REFUNDED
    assert figures(member)[:2] == (Decimal("0.00"), 0)
    with pytest.raises(RefundTooLarge):
        refund_purchase(purchase=done, amount="0.01")


def test_a_refund_larger_than_paid_is_refused_and_writes_nothing(buy, member):
    done = buy(amount="100", discount="20")

    with pytest.raises(RefundTooLarge) as refused:
        refund_purchase(purchase=done, amount="80.01")

    assert "amount" in refused.value.fields
    assert Refund.objects.count() == 0
    assert figures(member)[:2] == (Decimal("80.00"), 1)


def test_refund_by_lines_pays_back_their_share_of_what_was_paid(buy, member):
    # Given 2 teas at 30 and a cake at 40, with 10 off: 90 paid for 100
    done = buy(
        amount="100",
        discount="10",
        lines=[
            {"sku": "T", "name": "Tea", "quantity": "2", "unit_price": "30"},
            {"sku": "C", "name": "Cake", "quantity": "1", "unit_price": "40"},
        ],
    )
    tea, cake = PurchaseLine.objects.filter(purchase=done).order_by("id")

    # When one tea comes back, then the rest
    one = refund_purchase(purchase=done, lines={tea.pk: "1"})
    with pytest.raises(RefundTooLarge) as too_many:
        refund_purchase(purchase=done, lines={str(tea.pk): "2"})
    rest = refund_purchase(purchase=done, lines={tea.pk: 1, cake.pk: 1})

    # Then the first paid back 30 * 90/100, the last what was left
    assert one.amount == Decimal("27.00")
    assert too_many.value.code == "refund_exceeds_quantity"
    assert rest.amount == Decimal("63.00")
    done.refresh_from_db()
    assert done.status == PurchaseStatus.REFUNDED
    assert figures(member)[:2] == (Decimal("0.00"), 0)


def test_an_unknown_line_is_refused(buy):
    done = buy()
    with pytest.raises(ValidationError):
        refund_purchase(purchase=done, lines={"999999": "1"})


def test_a_refund_retry_with_the_same_refund_number_returns_the_first(buy, member):
    done = buy(amount="100")

    first = refund_purchase(purchase=done, amount="10", external_refund_id="R-1")
    again = refund_purchase(purchase=done, amount="10", external_refund_id="R-1")

    assert again.pk == first.pk
    assert again.replayed
    assert figures(member)[:2] == (Decimal("90.00"), 1)
    assert len(events("purchase.refunded")) == 1


def test_a_pending_purchase_cannot_be_refunded(buy):
    pending = buy(complete=False)
    with pytest.raises(PurchaseStateError) as refused:
        refund_purchase(purchase=pending)
    assert refused.value.code == "purchase_not_completed"
