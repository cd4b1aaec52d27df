"""The ledger: credits form lots, debits spend oldest expiry first, retries with
one key change nothing, bad input is refused with nothing written."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.utils import timezone

from points.models import (
    EntryKind,
    EntrySource,
    PointsAccount,
    PointsEntry,
    PointsLot,
)
from points.services import ledger
from shops.models import OutboxEvent
from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory
from tests.points.factories import PointsPolicyFactory

pytestmark = pytest.mark.django_db

EARN = {"kind": EntryKind.EARN, "source": EntrySource.CAMPAIGN}
REDEEM = {"kind": EntryKind.REDEEM, "source": EntrySource.REWARD}


def account_of(member):
    return PointsAccount.objects.get(member=member)


def lots_of(member):
    return list(
        PointsLot.objects.filter(account__member=member)
        .order_by("id")
        .values_list("points", "remaining")
    )


def test_credit_makes_an_entry_and_a_lot_and_emits_earned(in_shop, member):
    entry = ledger.credit(member=member, points=120, reason="welcome", **EARN)

    account = account_of(member)
    assert (account.balance, account.lifetime_earned, account.pending) == (120, 120, 0)
    assert entry.points == 120
    assert entry.total_after == 120
    assert lots_of(member) == [(120, 120)]
    event = OutboxEvent.objects.get(topic="points.earned")
    assert event.payload["entry"]["points"] == 120
    assert event.payload["entry"]["id"] == entry.pk
    assert event.payload["member"] == {
        "id": member.pk,
        "member_code": member.member_code,
    }
    assert event.payload["balance"] == 120


def test_debit_spends_oldest_expiry_first_and_never_expiring_last(
    in_shop, member, assert_ledger_ok
):
    now = timezone.now()
    never = ledger.credit(member=member, points=50, expires_at=None, **EARN)
    late = ledger.credit(
        member=member, points=30, expires_at=now + timedelta(days=90), **EARN
    )
    soon = ledger.credit(
        member=member, points=20, expires_at=now + timedelta(days=10), **EARN
    )

    entry = ledger.debit(member=member, points=40, **REDEEM)

    assert entry.points == -40
    remaining = dict(PointsLot.objects.values_list("entry_id", "remaining"))
    assert remaining == {soon.pk: 0, late.pk: 10, never.pk: 50}
    consumed = sorted(entry.consumptions.values_list("lot__entry_id", "points"))
    assert consumed == sorted([(soon.pk, 20), (late.pk, 20)])
    account = account_of(member)
    assert (account.balance, account.redeemed) == (60, 40)
    assert OutboxEvent.objects.filter(topic="points.redeemed").count() == 1
    assert_ledger_ok()


def test_a_lot_or_debit_that_a_consumption_names_cannot_be_deleted(
    in_shop, member, assert_ledger_ok
):
    credit = ledger.credit(member=member, points=50, **EARN)
    debit = ledger.debit(member=member, points=20, **REDEEM)
    lot = PointsLot.objects.get(entry=credit)

    # Consumptions' keys are loose in the database: Django protects them.
    with pytest.raises(ProtectedError):
        lot.delete()
    with pytest.raises(ProtectedError):
        debit.delete()

    assert list(debit.consumptions.values_list("lot_id", "points")) == [(lot.pk, 20)]
    assert_ledger_ok()


def test_debit_of_more_than_spendable_is_refused_and_changes_nothing(in_shop, member):
    ledger.credit(member=member, points=30, **EARN)

    with pytest.raises(ledger.InsufficientPoints) as caught:
        ledger.debit(member=member, points=31, **REDEEM)

    assert caught.value.code == "insufficient_points"
    assert isinstance(caught.value, ValidationError)
    assert account_of(member).balance == 30
    assert PointsEntry.objects.count() == 1
    assert lots_of(member) == [(30, 30)]


def test_pending_points_cannot_be_spent_until_released(in_shop, member):
    now = timezone.now()
    ledger.credit(member=member, points=100, **EARN)
    ledger.credit(
        member=member, points=70, available_at=now + timedelta(days=7), **EARN
    )
    account = account_of(member)
    assert (account.balance, account.pending) == (170, 70)

    with pytest.raises(ledger.InsufficientPoints):
        ledger.debit(member=member, points=101, **REDEEM)
    ledger.debit(member=member, points=100, **REDEEM)

    assert ledger.release_pending(shop=in_shop) == 0
    later = now + timedelta(days=8)
    assert ledger.release_pending(shop=in_shop, now=later) == 1
    assert ledger.release_pending(shop=in_shop, now=later) == 0
    assert account_of(member).pending == 0


@pytest.mark.parametrize("points", [0, -5, 1.5, "10", True])
def test_credit_and_debit_refuse_points_that_are_not_positive_whole_numbers(
    in_shop, member, points
):
    with pytest.raises(ValidationError) as caught:
        ledger.credit(member=member, points=points, **EARN)
    assert "points" in caught.value.message_dict
    with pytest.raises(ValidationError):
        ledger.debit(member=member, points=points, **REDEEM)
    assert not PointsEntry.objects.exists()


def test_same_key_returns_the_first_entry_and_credits_once(in_shop, member):
    first = ledger.credit(member=member, points=10, idempotency_key="k1", **EARN)

    again = ledger.credit(member=member, points=10, idempotency_key="k1", **EARN)

    assert again.pk == first.pk
    assert again.replayed
    assert account_of(member).balance == 10
    assert PointsLot.objects.count() == 1


def test_same_key_with_another_body_is_a_conflict(in_shop, member):
    other = MemberFactory(shop=in_shop)
    ledger.credit(member=member, points=10, idempotency_key="k1", **EARN)

    for write, kwargs in (
        (ledger.credit, {"member": member, "points": 11, **EARN}),
        (ledger.credit, {"member": other, "points": 10, **EARN}),
        (ledger.debit, {"member": member, "points": 10, **REDEEM}),
    ):
        with pytest.raises(ledger.IdempotencyConflict) as caught:
            write(idempotency_key="k1", **kwargs)
        assert caught.value.code == "idempotency_conflict"

    assert PointsEntry.objects.count() == 1
    assert account_of(member).balance == 10


def test_a_debit_retried_after_the_balance_ran_out_returns_the_first(in_shop, member):
    ledger.credit(member=member, points=10, **EARN)
    first = ledger.debit(member=member, points=10, idempotency_key="r1", **REDEEM)

    again = ledger.debit(member=member, points=10, idempotency_key="r1", **REDEEM)

    assert again.pk == first.pk
    assert account_of(member).balance == 0


def test_keys_are_per_shop(in_shop, member, other_shop):
    stranger = MemberFactory(shop=other_shop)
    ledger.credit(member=member, points=10, idempotency_key="same", **EARN)

    with shop_scope(other_shop):
        entry = ledger.credit(
            member=stranger, points=99, idempotency_key="same", **EARN
        )
        assert PointsEntry.objects.count() == 1
    assert entry.points == 99
    assert PointsEntry.objects.count() == 1


def test_adjust_needs_a_reason_and_nonzero_points(in_shop, member):
    with pytest.raises(ValidationError) as caught:
        ledger.adjust(member=member, points=0, reason=" ")
    assert set(caught.value.message_dict) == {"points", "reason"}

    ledger.adjust(member=member, points=25, reason="Lost card")
    entry = ledger.adjust(member=member, points=-5, reason="Typo")

    assert entry.kind == EntryKind.ADJUST
    assert entry.source == EntrySource.MANUAL
    assert entry.reason == "Typo"
    assert account_of(member).balance == 20
    with pytest.raises(ledger.InsufficientPoints):
        ledger.adjust(member=member, points=-21, reason="too much")
    assert OutboxEvent.objects.filter(topic="points.adjusted").count() == 2


def test_credit_expiry_follows_the_shop_policy(in_shop, member):
    PointsPolicyFactory(shop=in_shop, expiry="end_of_next_year")

    entry = ledger.credit(member=member, points=5, **EARN)

    lot = entry.lots.get()
    local = timezone.localtime(lot.expires_at, in_shop.zone)
    this_year = timezone.localtime(timezone.now(), in_shop.zone).year
    assert (local.year, local.month, local.day, local.hour) == (this_year + 2, 1, 1, 0)


def test_a_negative_balance_is_paid_off_by_the_next_credit(
    in_shop, member, assert_ledger_ok
):
    ledger.credit(member=member, points=10, **EARN)
    ledger.debit(
        member=member,
        points=30,
        kind=EntryKind.REVERSE,
        source=EntrySource.REFUND,
        allow_negative=True,
    )
    assert account_of(member).balance == -20

    ledger.credit(member=member, points=50, **EARN)

    assert account_of(member).balance == 30
    assert [r for _p, r in lots_of(member)] == [0, 30]
    assert_ledger_ok()


def test_restore_gives_back_points_with_their_original_expiry(
    in_shop, member, assert_ledger_ok
):
    now = timezone.now()
    soon, late = now + timedelta(days=5), now + timedelta(days=50)
    ledger.credit(member=member, points=10, expires_at=soon, **EARN)
    ledger.credit(member=member, points=10, expires_at=late, **EARN)
    spent = ledger.debit(member=member, points=15, **REDEEM)

    back = ledger.restore_consumptions(
        debit_entry=spent, reason="cancelled", source=EntrySource.REWARD
    )

    assert back.points == 15
    assert sorted(back.lots.values_list("points", "expires_at")) == [
        (5, late),
        (10, soon),
    ]
    account = account_of(member)
    assert (account.balance, account.redeemed) == (20, 0)
    # Nothing more to give back: a second cancel writes nothing.
    assert (
        ledger.restore_consumptions(
            debit_entry=spent, reason="again", source=EntrySource.REWARD
        )
        is None
    )
    assert_ledger_ok()


def test_partial_restores_never_give_back_more_than_was_taken(in_shop, member):
    ledger.credit(member=member, points=100, **EARN)
    spent = ledger.debit(member=member, points=100, **REDEEM)

    parts = [
        ledger.restore_consumptions(
            debit_entry=spent, reason="part", source=EntrySource.REFUND, fraction=f
        )
        for f in ("0.6", "0.6")
    ]

    assert [p.points for p in parts] == [60, 40]
    assert account_of(member).balance == 100


def test_expiring_soon_groups_by_last_day_in_the_shop_time_zone(in_shop, member):
    now = timezone.now()
    ledger.credit(member=member, points=7, expires_at=now + timedelta(days=3), **EARN)
    ledger.credit(member=member, points=8, expires_at=now + timedelta(days=3), **EARN)
    ledger.credit(member=member, points=9, expires_at=now + timedelta(days=60), **EARN)

    soon = ledger.expiring_soon(member, days=30)

    day = timezone.localtime(now + timedelta(days=3), in_shop.zone).date()
    assert soon == [(day, 15)]
    assert ledger.expiring_soon_total(member, days=30) == 15
    rows = list(ledger.members_with_points_expiring(in_shop, days=30))
    assert rows == [{"member_id": member.pk, "points": 15}]


def test_accounts_are_per_shop(in_shop, member, other_shop):
    stranger = MemberFactory(shop=other_shop)
    with shop_scope(other_shop):
        ledger.credit(member=stranger, points=10, **EARN)

    assert not PointsAccount.objects.exists()
    assert ledger.account_for(member).balance == 0


def test_points_past_their_expiry_are_not_spendable_before_the_expiry_run(
    in_shop, member
):
    past = timezone.now() - timedelta(minutes=1)
    ledger.credit(member=member, points=40, expires_at=past, **EARN)
    ledger.credit(member=member, points=10, expires_at=None, **EARN)

    with pytest.raises(ledger.InsufficientPoints):
        ledger.debit(member=member, points=11, **REDEEM)
    assert ledger.debit(member=member, points=10, **REDEEM).points == -10


@pytest.mark.postgres
def test_a_credit_is_two_statements_on_the_hot_path(in_shop, member):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ledger.credit(member=member, points=1, expires_at=None, **EARN)

    with CaptureQueriesContext(connection) as queries:
        entry = ledger.credit(
            member=member, points=2, expires_at=None, idempotency_key="hot", **EARN
        )

    # The account lock, then entry + lot + account + event in one statement.
    assert len(queries) == 2, [q["sql"][:80] for q in queries]
    assert entry.lots.get().remaining == 2
    assert OutboxEvent.objects.filter(topic="points.earned").count() == 2


def test_restored_points_whose_lot_expired_meanwhile_go_with_the_next_expiry(
    in_shop, member, assert_ledger_ok
):
    from points.services.expiry import expire_due_lots

    now = timezone.now()
    ledger.credit(member=member, points=10, expires_at=now + timedelta(days=2), **EARN)
    spent = ledger.debit(member=member, points=10, **REDEEM)
    later = now + timedelta(days=3)

    with mock_now(later):
        back = ledger.restore_consumptions(
            debit_entry=spent, reason="cancelled", source=EntrySource.REWARD
        )
        with pytest.raises(ledger.InsufficientPoints):
            ledger.debit(member=member, points=1, **REDEEM)

    assert back.lots.get().expires_at == now + timedelta(days=2)
    assert expire_due_lots(shop=in_shop, now=later) == 10
    assert account_of(member).balance == 0
    assert_ledger_ok(now=later)


def mock_now(moment):
    from unittest import mock

    return mock.patch("django.utils.timezone.now", return_value=moment)
