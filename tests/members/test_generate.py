"""The large-data generator: what it makes, that the figures add up, that a seed
gives the same data, and that it refuses a database without COPY."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F, Max, Min, Q, Sum

from bench.datagen import generate
from members.models import Member, Purchase, Refund
from members.models.purchase import COUNTED_STATUSES
from members.validation import normalize_phone
from shops.models import Shop, Store
from tests.factories import ShopFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("generate_members", *args, stdout=out)
    return out.getvalue()


def members_of(shop):
    return Member.objects.unscoped().filter(shop=shop)


def purchases_of(shop):
    return Purchase.objects.unscoped().filter(shop=shop)


def index_definitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename IN "
            "('members_member', 'members_purchase', 'members_refund')"
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.postgres
def test_the_command_creates_the_shop_and_fills_it():
    output = run(
        "--shop-slug", "gen", "--members", "300", "--purchases", "2500",
        "--seed", "7", "--stores", "3",
    )  # fmt: skip

    shop = Shop.objects.get(slug="gen")
    members, purchases = members_of(shop), purchases_of(shop)
    assert Store.objects.unscoped().filter(shop=shop).count() == 3
    assert members.count() == 300
    assert purchases.count() == 2500
    assert "300 members, 2,500 purchases" in output
    assert "purchases (COPY)" in output
    for field in ("member_code", "phone"):
        assert members.values(field).distinct().count() == 300
    emails = members.exclude(email="").values_list("email", flat=True)
    assert 50 < len(emails) == len(set(emails))
    assert purchases.values("external_order_id").distinct().count() == 2500


@pytest.mark.postgres
def test_members_look_like_real_ones(shop):
    generate(shop=shop, members=200, purchases=0, seed=3)

    for member in members_of(shop):
        assert normalize_phone(member.phone, region="CN") == member.phone
        assert member.phone_last4 == member.phone[-4:]
        assert member.name
        assert member.member_code
    names = "".join(members_of(shop).values_list("name", flat=True))
    assert any("\u4e00" <= char <= "\u9fff" for char in names)  # Chinese names
    assert any(char.isascii() and char.isalpha() for char in names)  # and English
    assert members_of(shop).filter(source="referral").exclude(referred_by=None)


@pytest.mark.postgres
def test_figures_equal_a_fresh_aggregate_over_purchases(shop):
    report = generate(shop=shop, members=150, purchases=3000, seed=11)

    counted = Q(purchases__status__in=COUNTED_STATUSES)
    fresh = members_of(shop).annotate(
        spent=Sum(F("purchases__paid_amount") - F("purchases__refunded_amount"),
                  filter=counted),
        orders=Count("purchases", filter=counted),
        first=Min("purchases__occurred_at", filter=counted),
        last=Max("purchases__occurred_at", filter=counted),
    )  # fmt: skip
    for member in fresh:
        assert member.total_spent == (member.spent or 0)
        assert member.order_count == member.orders
        assert member.first_purchase_at == member.first
        assert member.last_purchase_at == member.last
    statuses = set(purchases_of(shop).values_list("status", flat=True))
    assert statuses == {
        "completed", "refunded", "partially_refunded", "cancelled", "pending",
    }  # fmt: skip
    refunded = purchases_of(shop).filter(refunded_amount__gt=0)
    assert (
        report.refunds
        == refunded.count()
        == Refund.objects.unscoped().filter(shop=shop).count()
    )
    for purchase in refunded.annotate(refunded=Sum("refunds__amount")):
        assert purchase.refunded == purchase.refunded_amount


@pytest.mark.postgres
def test_the_same_seed_gives_the_same_data_in_another_shop(shop, other_shop):
    third = ShopFactory(slug="third")
    for target, seed in ((shop, 5), (other_shop, 5), (third, 6)):
        generate(shop=target, members=120, purchases=800, seed=seed)

    def data(target):
        first = members_of(target).aggregate(Min("id"))["id__min"]
        members = list(
            members_of(target)
            .order_by("id")
            .values_list("member_code", "name", "phone", "email", "birthday_month")
        )
        purchases = [
            (p.member_id - first, p.external_order_id, p.amount, p.status, p.channel)
            for p in purchases_of(target).order_by("id")
        ]
        return members, purchases

    assert data(shop) == data(other_shop)
    assert data(shop) != data(third)


@pytest.mark.postgres
def test_a_second_run_in_the_same_shop_adds_without_clashing(shop):
    generate(shop=shop, members=100, purchases=500, seed=1)
    generate(shop=shop, members=100, purchases=500, seed=1)

    members = members_of(shop)
    assert members.count() == 200
    assert members.values("phone").distinct().count() == 200
    assert members.values("member_code").distinct().count() == 200
    assert purchases_of(shop).values("external_order_id").distinct().count() == 1000


@pytest.mark.postgres
def test_a_rebuild_puts_every_index_back(shop):
    before = index_definitions()

    report = generate(shop=shop, members=50, purchases=200, indexes="rebuild")

    assert "members_phone_last4_idx" in report.indexes_rebuilt
    assert "members_purchase_order_uniq" in report.indexes_rebuilt
    assert index_definitions() == before


def test_it_refuses_a_database_without_copy(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")

    with pytest.raises(CommandError, match="PostgreSQL COPY"):
        run("--shop-slug", "gen", "--members", "10")
    assert not Shop.objects.filter(slug="gen").exists()


def test_it_refuses_nonsense_sizes(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "postgresql")

    with pytest.raises(CommandError, match="at least 1 member"):
        run("--shop-slug", "gen", "--members", "0")
