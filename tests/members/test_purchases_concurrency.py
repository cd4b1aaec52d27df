"""Purchases under real concurrency (PostgreSQL row locks): money and counts
stay exact when requests for one purchase or one member arrive together."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from members.models import Member, Purchase, PurchaseStatus, Refund
from members.services.purchases import (
    complete_purchase,
    record_purchase,
    refund_purchase,
)
from shops.errors import DomainError
from shops.models import OutboxEvent
from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def at_once(shop, *calls):
    """Run each call in its own thread and connection, released together."""
    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            with shop_scope(shop):
                start.wait()
                results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def member_row(shop, member):
    with shop_scope(shop):
        return Member.objects.get(pk=member.pk)


def test_two_refunds_at_once_never_exceed_what_was_paid(shop):
    member = MemberFactory(shop=shop)
    with shop_scope(shop):
        purchase = record_purchase(
            shop=shop, member=member, external_order_id="C-1", amount="100"
        )

    results = at_once(
        shop,
        lambda: refund_purchase(purchase=purchase, amount="60"),
        lambda: refund_purchase(purchase=purchase, amount="60"),
    )

    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(refused) == 1
    assert refused[0].code == "refund_too_large"
    with shop_scope(shop):
        purchase.refresh_from_db()
        assert Refund.objects.count() == 1
    assert purchase.refunded_amount == Decimal("60.00")
    assert member_row(shop, member).total_spent == Decimal("40.00")


def test_two_completions_at_once_count_once(shop):
    member = MemberFactory(shop=shop)
    with shop_scope(shop):
        pending = record_purchase(
            shop=shop,
            member=member,
            external_order_id="C-2",
            amount="50",
            complete=False,
        )

    results = at_once(
        shop,
        lambda: complete_purchase(purchase=pending),
        lambda: complete_purchase(purchase=pending),
    )

    assert [r.status for r in results] == [PurchaseStatus.COMPLETED] * 2
    fresh = member_row(shop, member)
    assert (fresh.total_spent, fresh.order_count) == (Decimal("50.00"), 1)
    with shop_scope(shop):
        assert OutboxEvent.objects.filter(topic="purchase.completed").count() == 1


def test_purchases_of_one_member_at_once_all_count(shop):
    member = MemberFactory(shop=shop)

    def buy(number):
        return lambda: record_purchase(
            shop=shop, member=member, external_order_id=f"M-{number}", amount="10.10"
        )

    results = at_once(shop, *(buy(n) for n in range(6)))

    assert all(isinstance(r, Purchase) for r in results), results
    fresh = member_row(shop, member)
    assert (fresh.total_spent, fresh.order_count) == (Decimal("60.60"), 6)


def test_the_same_order_at_once_is_recorded_once(shop):
    member = MemberFactory(shop=shop)

    def buy():
        return record_purchase(
            shop=shop, member=member, external_order_id="SAME", amount="8"
        )

    results = at_once(shop, buy, buy, buy)

    recorded = [r for r in results if isinstance(r, Purchase)]
    assert recorded, results
    assert all(
        isinstance(r, Purchase) or getattr(r, "code", "") == "order_exists"
        for r in results
    )
    fresh = member_row(shop, member)
    assert (fresh.total_spent, fresh.order_count) == (Decimal("8.00"), 1)
