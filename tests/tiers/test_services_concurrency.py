"""Tier moves under real concurrency (PostgreSQL row locks): purchases of one
member arriving together move them once, and a recalculation racing a
purchase never overwrites the purchase's move."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from points.services import settlement
from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory, PurchaseFactory
from tests.tiers.factories import make_ladder
from tiers.models import MemberTier, TierChange, TierChangeReason
from tiers.services.ladder import tier_of
from tiers.services.recalculation import recalculate_shop

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def at_once(shop, *calls):
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
        thread.join(timeout=60)
    return results


def buy(shop, member, order, amount):
    return lambda: settlement.record_purchase(
        shop=shop, member=member, external_order_id=order, amount=amount
    )


def test_purchases_arriving_together_move_the_member_once(shop):
    make_ladder(shop)
    member = MemberFactory(shop=shop)

    results = at_once(shop, *(buy(shop, member, f"C-{i}", "600") for i in range(4)))

    assert not [r for r in results if isinstance(r, Exception)], results
    with shop_scope(shop):
        moves = list(
            TierChange.objects.filter(member=member).values_list(
                "to_tier__name", flat=True
            )
        )
        assert MemberTier.objects.filter(member=member).count() == 1
    # 600 -> Normal, 1200 -> Senior, 1800, 2400: one move, whoever crossed.
    assert moves == ["Senior"]
    assert tier_of(member).name == "Senior"


def test_a_recalculation_racing_purchases_writes_one_move_per_member(shop):
    make_ladder(shop)
    members = [MemberFactory(shop=shop) for _ in range(30)]
    for member in members:
        # 1200 spent: Senior is met, nobody has moved yet.
        PurchaseFactory(member=member, amount=Decimal("1200"))
        member.total_spent, member.order_count = Decimal("1200"), 1
        with shop_scope(shop):
            member.save(update_fields=["total_spent", "order_count"])

    results = at_once(
        shop,
        lambda: recalculate_shop(shop=shop),
        *(buy(shop, m, f"R-{m.pk}", "10") for m in members[:15]),
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    with shop_scope(shop):
        for member in members:
            assert list(
                TierChange.objects.filter(member=member).values_list(
                    "to_tier__name", flat=True
                )
            ) == ["Senior"]
    assert recalculate_shop(shop=shop) == (0, 0)


def test_a_recalculation_by_a_task_writes_its_movers_in_parts_at_once(
    shop, monkeypatch
):
    from tiers.services import sql

    make_ladder(shop)
    members = [MemberFactory(shop=shop) for _ in range(9)]
    for number, member in enumerate(members):
        PurchaseFactory(member=member, amount=Decimal("6000" if number % 3 else "1200"))
    threads = []
    write_part = sql._write_part
    monkeypatch.setattr(
        sql,
        "_write_part",
        lambda *args: threads.append(threading.get_ident()) or write_part(*args),
    )

    # Outside a transaction, as the task calls it.
    assert recalculate_shop(shop=shop) == (9, 0)

    # Two parts, each in a worker thread with a connection of its own.
    assert len(threads) == 2
    assert threading.get_ident() not in threads
    with shop_scope(shop):
        assert [tier_of(m).name for m in members] == ["Senior", "VIP", "VIP"] * 3
        assert TierChange.objects.count() == 9
    # The movers' table shared by the parts is gone.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'tiers_recalc%'"
        )
        assert cursor.fetchone()[0] == 0
    assert recalculate_shop(shop=shop) == (0, 0)
    assert threads[2:] == []


def test_each_parts_event_fans_out_only_its_own_members_moves(shop):
    from shops.db import MAX_ID
    from shops.models import OutboxEvent
    from shops.services.events.outbox import process_outbox_event
    from tiers.services.events import TIERS_MOVED

    normal, senior, *_ = make_ladder(shop)
    first, second = sorted(
        (MemberFactory(shop=shop) for _ in range(2)), key=lambda m: m.pk
    )
    at = timezone.now()
    # The two parts of one run share its moment and commit at once, so their
    # changes' ids interleave: part 1 moved `first`, part 2 `second`.
    with shop_scope(shop):
        changes = [
            TierChange.objects.create(
                shop=shop, member=m, from_tier=normal, to_tier=senior,
                reason=TierChangeReason.RECALCULATION,
            )
            for m in (first, second)
        ]  # fmt: skip
        TierChange.objects.update(created_at=at)
    for low, high in ((0, second.pk), (second.pk, MAX_ID)):
        OutboxEvent.objects.unscoped().create(
            shop=shop,
            topic=TIERS_MOVED,
            payload={
                "first": changes[0].pk, "last": changes[1].pk, "count": 1,
                "low": low, "high": high,
                "reason": TierChangeReason.RECALCULATION, "at": at.isoformat(),
            },
        )  # fmt: skip

    moved = OutboxEvent.objects.unscoped().filter(topic=TIERS_MOVED)
    for event_id in list(moved.values_list("pk", flat=True)):
        # Without a broker, tasks run in-process: the first event's relay may
        # already have processed the second, and this call is then a no-op.
        process_outbox_event(event_id=event_id)
    assert not moved.filter(processed_at=None).exists()

    with shop_scope(shop):
        members = sorted(
            OutboxEvent.objects.filter(topic="tier.changed").values_list(
                "payload__member__id", flat=True
            )
        )
    assert members == [first.pk, second.pk]
