"""Expiry: due lots expire set-based, once; other shops are left alone."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from points.models import EntryKind, EntrySource, PointsAccount, PointsEntry, PointsLot
from points.services import ledger
from points.services.expiry import expire_due_lots
from points.tasks import expire_due_lots_everywhere
from shops.models import OutboxEvent
from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db

EARN = {"kind": EntryKind.EARN, "source": EntrySource.CAMPAIGN}


def credit(member, points, expires_at):
    return ledger.credit(member=member, points=points, expires_at=expires_at, **EARN)


def test_due_lots_expire_as_one_entry_per_account(in_shop, member, assert_ledger_ok):
    now = timezone.now()
    credit(member, 10, now - timedelta(days=1))
    credit(member, 15, now - timedelta(hours=1))
    credit(member, 20, now + timedelta(days=1))
    credit(member, 5, None)
    ledger.debit(member=member, points=4, kind=EntryKind.REDEEM, source="reward")

    expired = expire_due_lots(shop=in_shop, now=now)

    assert expired == 25
    account = PointsAccount.objects.get(member=member)
    assert (account.balance, account.expired) == (21, 25)
    entry = PointsEntry.objects.get(kind=EntryKind.EXPIRE)
    assert entry.points == -25
    assert entry.total_after == 21
    assert sorted(entry.consumptions.values_list("points", flat=True)) == [10, 15]
    event = OutboxEvent.objects.get(topic="points.expired")
    assert event.payload["member"]["id"] == member.pk
    assert event.payload["entry"]["points"] == -25
    assert event.payload["balance"] == 21
    assert_ledger_ok()


@pytest.mark.parametrize("chunk", [1, 2, 50_000])
def test_chunks_of_accounts_expire_the_same_as_one(in_shop, assert_ledger_ok, chunk):
    now = timezone.now()
    members = [MemberFactory(shop=in_shop) for _ in range(5)]
    for points, member in enumerate(members, start=1):
        credit(member, points, now - timedelta(days=1))
        credit(member, 100, now + timedelta(days=1))

    assert expire_due_lots(shop=in_shop, now=now, chunk=chunk) == 1 + 2 + 3 + 4 + 5

    balances = dict(PointsAccount.objects.values_list("member_id", "balance"))
    assert balances == {member.pk: 100 for member in members}
    assert PointsEntry.objects.filter(kind=EntryKind.EXPIRE).count() == 5
    assert OutboxEvent.objects.filter(topic="points.expired").count() == 5
    assert expire_due_lots(shop=in_shop, now=now, chunk=chunk) == 0
    assert_ledger_ok()


def test_a_second_run_expires_nothing_more(in_shop, member, assert_ledger_ok):
    now = timezone.now()
    credit(member, 10, now - timedelta(days=1))
    expire_due_lots(shop=in_shop, now=now)

    assert expire_due_lots(shop=in_shop, now=now) == 0
    assert expire_due_lots(shop=in_shop, now=now + timedelta(minutes=1)) == 0

    assert PointsEntry.objects.filter(kind=EntryKind.EXPIRE).count() == 1
    assert PointsAccount.objects.get(member=member).balance == 0
    assert_ledger_ok()


def test_expiry_leaves_other_shops_alone(in_shop, member, other_shop):
    stranger = MemberFactory(shop=other_shop)
    past = timezone.now() - timedelta(days=1)
    credit(member, 10, past)
    with shop_scope(other_shop):
        credit(stranger, 7, past)

    assert expire_due_lots(shop=in_shop) == 10

    with shop_scope(other_shop):
        assert PointsAccount.objects.get(member=stranger).balance == 7
        assert PointsLot.objects.get().remaining == 7


@pytest.mark.postgres
def test_statements_do_not_grow_with_the_number_of_lots(in_shop):
    past = timezone.now() - timedelta(days=1)

    def run_with(lots: int) -> int:
        for _ in range(lots):
            credit(MemberFactory(shop=in_shop), 3, past)
        with CaptureQueriesContext(connection) as queries:
            expire_due_lots(shop=in_shop)
        return len(queries)

    assert run_with(2) == run_with(25)


def test_expired_pending_points_leave_pending_too(in_shop, member, assert_ledger_ok):
    now = timezone.now()
    ledger.credit(
        member=member,
        points=9,
        expires_at=now + timedelta(days=1),
        available_at=now + timedelta(days=5),
        **EARN,
    )

    expire_due_lots(shop=in_shop, now=now + timedelta(days=2))

    account = PointsAccount.objects.get(member=member)
    assert (account.balance, account.pending) == (0, 0)
    assert_ledger_ok()


def test_the_everywhere_task_runs_every_active_shop(
    in_shop, member, other_shop, eager_tasks
):
    stranger = MemberFactory(shop=other_shop)
    past = timezone.now() - timedelta(days=1)
    credit(member, 10, past)
    with shop_scope(other_shop):
        credit(stranger, 7, past)

    assert expire_due_lots_everywhere() == 2

    assert PointsAccount.objects.get(member=member).balance == 0
    with shop_scope(other_shop):
        assert PointsAccount.objects.get(member=stranger).balance == 0


def test_release_pending_everywhere_makes_waited_points_spendable(
    in_shop, member, eager_tasks
):
    from points.tasks import release_pending_everywhere

    now = timezone.now()
    ledger.credit(member=member, points=12, available_at=now - timedelta(1), **EARN)
    # Written as pending a moment ago; its window has ended since.
    PointsAccount.objects.filter(member=member).update(pending=12)

    assert release_pending_everywhere() >= 1

    assert PointsAccount.objects.get(member=member).pending == 0


def test_the_expiring_soon_selector_lists_only_this_shops_members(
    in_shop, member, other_shop
):
    from points.services.ledger import members_with_points_expiring

    soon = timezone.now() + timedelta(days=5)
    credit(member, 10, soon)
    credit(member, 5, timezone.now() + timedelta(days=90))
    with shop_scope(other_shop):
        credit(MemberFactory(shop=other_shop), 7, soon)

    rows = list(members_with_points_expiring(in_shop, days=30))

    assert rows == [{"member_id": member.pk, "points": 10}]


@pytest.mark.postgres
def test_accounts_keep_room_on_each_page_for_their_next_balance():
    # Expiry, earning and redemption rewrite account rows: with room on the
    # page the new version goes beside the old one, touching no index (HOT).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = 'points_pointsaccount'"
        )
        assert "fillfactor=80" in cursor.fetchone()[0]
