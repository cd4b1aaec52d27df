"""The ledger under real concurrency (two connections, PostgreSQL row locks):
never overspent, never credited twice."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from points.models import EntryKind, EntrySource, PointsAccount, PointsEntry
from points.services import ledger
from points.services.expiry import expire_due_lots
from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REDEEM = {"kind": EntryKind.REDEEM, "source": EntrySource.REWARD}
EARN = {"kind": EntryKind.EARN, "source": EntrySource.CAMPAIGN}


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


def test_two_debits_at_once_when_only_one_fits(shop, assert_ledger_ok):
    member = MemberFactory(shop=shop)
    with shop_scope(shop):
        ledger.credit(member=member, points=100, **EARN)

    results = at_once(
        shop,
        lambda: ledger.debit(member=member, points=70, **REDEEM),
        lambda: ledger.debit(member=member, points=70, **REDEEM),
    )

    refused = [r for r in results if isinstance(r, ledger.InsufficientPoints)]
    written = [r for r in results if isinstance(r, PointsEntry)]
    assert (len(refused), len(written)) == (1, 1)
    with shop_scope(shop):
        assert PointsAccount.objects.get(member=member).balance == 30
        assert_ledger_ok()


def test_many_debits_at_once_spend_exactly_the_balance(shop, assert_ledger_ok):
    member = MemberFactory(shop=shop)
    with shop_scope(shop):
        for _ in range(3):
            ledger.credit(member=member, points=10, **EARN)

    results = at_once(
        shop, *[lambda: ledger.debit(member=member, points=4, **REDEEM)] * 8
    )

    assert sum(isinstance(r, PointsEntry) for r in results) == 7
    with shop_scope(shop):
        assert PointsAccount.objects.get(member=member).balance == 2
        assert_ledger_ok()


def test_one_key_at_once_credits_once(shop):
    member = MemberFactory(shop=shop)

    results = at_once(
        shop,
        *[
            lambda: ledger.credit(
                member=member, points=25, idempotency_key="order-9", **EARN
            )
        ]
        * 3,
    )

    assert all(isinstance(r, PointsEntry) for r in results), results
    assert len({r.pk for r in results}) == 1
    with shop_scope(shop):
        assert PointsAccount.objects.get(member=member).balance == 25


def test_first_credits_of_a_new_member_at_once_share_one_account(shop):
    member = MemberFactory(shop=shop)

    at_once(
        shop,
        lambda: ledger.credit(member=member, points=5, **EARN),
        lambda: ledger.credit(member=member, points=6, **EARN),
    )

    with shop_scope(shop):
        assert PointsAccount.objects.get(member=member).balance == 11


def test_expiry_and_a_debit_at_once_never_spend_expired_points(shop, assert_ledger_ok):
    member = MemberFactory(shop=shop)
    now = timezone.now()
    with shop_scope(shop):
        ledger.credit(member=member, points=50, expires_at=now - timedelta(1), **EARN)
        ledger.credit(member=member, points=50, expires_at=None, **EARN)

    expired, spent = at_once(
        shop,
        lambda: expire_due_lots(shop=shop),
        lambda: ledger.debit(member=member, points=80, **REDEEM),
    )

    # Past-due points are not spendable, whether the expiry ran first or not.
    assert expired == 50
    assert isinstance(spent, ledger.InsufficientPoints)
    with shop_scope(shop):
        assert PointsAccount.objects.get(member=member).balance == 50
        assert_ledger_ok()


def test_expiry_and_a_fitting_debit_at_once_stay_consistent(shop, assert_ledger_ok):
    member = MemberFactory(shop=shop)
    now = timezone.now()
    with shop_scope(shop):
        ledger.credit(member=member, points=50, expires_at=now - timedelta(1), **EARN)
        ledger.credit(member=member, points=50, expires_at=None, **EARN)

    expired, spent = at_once(
        shop,
        lambda: expire_due_lots(shop=shop),
        lambda: ledger.debit(member=member, points=30, **REDEEM),
    )

    assert expired == 50
    assert spent.points == -30
    with shop_scope(shop):
        assert PointsAccount.objects.get(member=member).balance == 20
        assert_ledger_ok()


def test_chunks_on_two_connections_expire_each_due_lot_once(
    shop, assert_ledger_ok, monkeypatch
):
    from points.services import expiry

    now = timezone.now()
    members = [MemberFactory(shop=shop) for _ in range(6)]
    with shop_scope(shop):
        for points, member in enumerate(members, start=1):
            ledger.credit(
                member=member, points=points, expires_at=now - timedelta(1), **EARN
            )
            ledger.credit(member=member, points=100, expires_at=None, **EARN)
    threads = []
    chunk = expiry._expire_chunk
    monkeypatch.setattr(
        expiry,
        "_expire_chunk",
        lambda params: threads.append(threading.get_ident()) or chunk(params),
    )

    expired = expire_due_lots(shop=shop, now=now, chunk=1, workers=2)

    assert expired == 1 + 2 + 3 + 4 + 5 + 6
    # Six chunks, each in a worker thread (a connection of its own), two at most.
    assert len(threads) == 6
    assert threading.get_ident() not in threads
    assert len(set(threads)) <= 2
    assert expire_due_lots(shop=shop, now=now, chunk=1, workers=2) == 0
    with shop_scope(shop):
        balances = dict(PointsAccount.objects.values_list("member_id", "balance"))
        assert balances == {member.pk: 100 for member in members}
        assert PointsEntry.objects.filter(kind=EntryKind.EXPIRE).count() == 6
        assert_ledger_ok()
