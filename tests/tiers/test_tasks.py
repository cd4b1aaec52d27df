"""The tiers tasks: thin, idempotent, fanned out per shop with a ladder."""

import datetime
from decimal import Decimal

import pytest

from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory, PurchaseFactory
from tests.tiers.factories import make_ladder
from tiers import tasks
from tiers.models import RecalculationStatus, TierRecalculation
from tiers.services.ladder import tier_of

pytestmark = pytest.mark.django_db


def test_the_nightly_recalculation_runs_once_per_shop_and_day(
    shop, other_shop, ladder, django_capture_on_commit_callbacks
):
    member = MemberFactory(shop=shop)
    PurchaseFactory(member=member, amount=Decimal("1200"))
    # other_shop has no ladder: nothing to do there.

    with django_capture_on_commit_callbacks() as queued:
        assert tasks.recalculate_everywhere() == 1
    assert len(queued) == 1
    assert tasks.recalculate_everywhere() == 0  # already queued today

    with shop_scope(shop):
        recalculation = TierRecalculation.objects.get()
    tasks.recalculate_shop(recalculation.pk)

    with shop_scope(shop):
        recalculation.refresh_from_db()
    assert recalculation.status == RecalculationStatus.DONE
    assert recalculation.members_up == 1
    assert tier_of(member).name == "Senior"


def test_a_failed_recalculation_is_recorded(shop, ladder, monkeypatch):
    from tiers.services import recalculation as service

    with shop_scope(shop):
        row = TierRecalculation.objects.create(
            shop=shop, reason="recalculation", as_of=datetime.date(2026, 1, 1)
        )

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "recalculate_shop", broken)
    with pytest.raises(RuntimeError):
        tasks.recalculate_shop(row.pk)
    with shop_scope(shop):
        row.refresh_from_db()
    assert row.status == RecalculationStatus.FAILED
    assert "disk full" in row.error


def test_an_unknown_recalculation_is_a_no_op():
    assert tasks.recalculate_shop(987654321) is None


def test_period_ends_fan_out_to_shops_with_a_ladder(
    shop, other_shop, ladder, monkeypatch
):
    make_ladder(other_shop)
    queued = []
    monkeypatch.setattr(
        tasks.run_period_ends, "delay", lambda **kw: queued.append(kw["shop_id"])
    )

    assert tasks.run_period_ends_everywhere() == 2
    assert sorted(queued) == sorted([shop.pk, other_shop.pk])


def test_the_period_end_task_runs_in_the_shops_scope(shop, ladder):
    done = tasks.run_period_ends(shop_id=shop.pk)
    assert done == {"manual_end": [0, 0]}  # lifetime policy: no periods


def test_a_recalculation_whose_message_was_lost_is_queued_again(
    shop, ladder, monkeypatch
):
    from django.utils import timezone

    with shop_scope(shop):
        lost = TierRecalculation.objects.create(
            shop=shop, reason="rule_change", as_of=datetime.date(2026, 1, 1)
        )
        fresh = TierRecalculation.objects.create(
            shop=shop, reason="rule_change", as_of=datetime.date(2026, 1, 1)
        )
        TierRecalculation.objects.filter(pk=lost.pk).update(
            created_at=timezone.now() - datetime.timedelta(hours=2)
        )
    queued = []
    monkeypatch.setattr(tasks.recalculate_shop, "delay", queued.append)
    monkeypatch.setattr(tasks.recalculation, "start_recalculation", lambda **kw: None)

    tasks.recalculate_everywhere()

    assert queued == [lost.pk]
    assert fresh.pk not in queued


@pytest.mark.postgres
def test_the_nightly_run_drops_work_tables_a_killed_recalculation_left(
    shop, ladder, monkeypatch
):
    import time

    from django.db import connection

    from tiers.services.sql import CALC

    now = int(time.time())
    left = [f"{CALC}_{now - 3 * 3600}_0123456789ab", f"{CALC}_{'ab' * 16}"]
    running = f"{CALC}_{now - 60}_ba9876543210"
    with connection.cursor() as cursor:
        for name in [*left, running]:
            cursor.execute(f'CREATE UNLOGGED TABLE "{name}" (member_id bigint)')
    monkeypatch.setattr(tasks.recalculation, "start_recalculation", lambda **kw: None)

    tasks.recalculate_everywhere()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'tiers_recalc_calc_%'"
        )
        remaining = [row[0] for row in cursor.fetchall()]
    assert remaining == [running]  # a run still going keeps its table
