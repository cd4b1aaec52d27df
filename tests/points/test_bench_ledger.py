"""The benchmarks' ledger generator (bench/points_data.py): the ledger it makes
keeps the invariants the services keep, the services work on it, a seed gives
the same ledger, and the programme it sets up is a valid 4-tier ladder."""

import sys
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Sum

from bench.datagen import generate
from points.models import LotConsumption, PointsAccount, PointsEntry, PointsLot
from points.services.expiry import expire_due_lots
from shops.tenancy import shop_scope
from tests.factories import ShopFactory
from tiers.models import Tier, TierPolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import points_data

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def make(shop, *, members=120, entries=1500, seed=5):
    generate(shop=shop, members=members, purchases=0, seed=seed)
    return points_data.generate_ledger(shop, entries=entries, seed=seed)


def entries_of(shop):
    return PointsEntry.objects.unscoped().filter(shop=shop)


def test_counts_and_the_ledger_invariants_on_every_account():
    shop = ShopFactory()
    ledger = make(shop)

    assert PointsAccount.objects.unscoped().filter(shop=shop).count() == 120
    assert entries_of(shop).count() == ledger.entries == 1500
    assert PointsLot.objects.unscoped().filter(shop=shop).count() == ledger.lots
    checked, broken = points_data.check_invariants(shop)
    assert (checked, broken) == (120, 0)
    # Each debit took from lots exactly its points; no lot below zero.
    for debit in entries_of(shop).filter(kind="redeem")[:50]:
        taken = LotConsumption.objects.unscoped().filter(shop=shop, entry=debit)
        assert taken.aggregate(s=Sum("points"))["s"] == -debit.points
    assert not PointsLot.objects.unscoped().filter(shop=shop, remaining__lt=0)
    # total_after of each account's last entry is its balance.
    for account in PointsAccount.objects.unscoped().filter(shop=shop)[:30]:
        last = entries_of(shop).filter(account=account).order_by("-id").first()
        assert last.total_after == account.balance


def test_due_lots_are_opening_balances_and_the_expiry_service_clears_them():
    shop = ShopFactory()
    ledger = make(shop)
    due = PointsLot.objects.unscoped().filter(
        shop=shop, remaining__gt=0, expires_at__lte=ledger.reference
    )
    assert due.count() == ledger.due_lots > 50
    assert set(due.values_list("entry__source", flat=True)) == {"import"}
    due_points = due.aggregate(s=Sum("remaining"))["s"]

    with shop_scope(shop):
        expire_due_lots(shop=shop, now=ledger.reference)

    assert not due.exists()
    assert points_data.check_invariants(shop) == (120, 0)
    expired = PointsAccount.objects.unscoped().filter(shop=shop)
    assert expired.aggregate(s=Sum("expired"))["s"] == due_points


def test_a_kept_ledger_is_found_by_its_marker_and_a_seed_gives_the_same_ledger():
    first, second = ShopFactory(), ShopFactory()
    ledger = make(first, seed=9)
    make(second, seed=9)

    found = points_data.find_ledger(first, 1500, seed=9)
    assert found is not None
    assert found.reference == ledger.reference
    assert points_data.find_ledger(first, 1501, seed=9) is None
    assert points_data.find_ledger(first, 1500, seed=8) is None

    def shape(shop):
        return list(
            entries_of(shop)
            .order_by("id")
            .values_list("kind", "points", "total_after", "source", "created_at")
        )

    assert shape(first) == shape(second)


def test_the_programme_is_a_valid_ladder_made_once():
    shop = ShopFactory()
    points_data.ensure_programme(shop)
    points_data.ensure_programme(shop)

    with shop_scope(shop):
        tiers = list(Tier.objects.filter(shop=shop).order_by("rank"))
        policy = TierPolicy.objects.get(shop=shop)
    assert [t.rank for t in tiers] == [0, 1, 2, 3]
    spends = [t.min_spend for t in tiers]
    assert spends == sorted(spends)
    assert len(set(spends)) == 4
    assert (policy.window, policy.window_months) == ("rolling", 12)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM points_earningrule WHERE shop_id = %s", [shop.pk]
        )
        assert cursor.fetchone()[0] == 1
