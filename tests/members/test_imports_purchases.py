"""Importing historical purchases: members found by phone, code or external ID,
orders already known skipped, and the members' figures recomputed."""

import datetime
from decimal import Decimal

import pytest

from members.models import ImportStatus, Member, Purchase
from members.services.imports import recompute_member_figures
from shops.models import OutboxEvent
from shops.tenancy import shop_scope
from tests.factories import StoreFactory, UserFactory
from tests.members.test_imports import check_then_import, new_job

pytestmark = pytest.mark.django_db

HEADER = "手机,会员码,订单号,金额,优惠,门店,消费时间,状态\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def people(shop):
    with shop_scope(shop):
        ming = Member.objects.create(
            shop=shop, member_code="MING0001", phone="+8613800138000"
        )
        li = Member.objects.create(shop=shop, member_code="LI000001", phone="")
    return ming, li


def test_purchases_are_imported_and_the_members_figures_recomputed(shop, people):
    ming, li = people
    store = StoreFactory(shop=shop, code="SH01")
    content = HEADER + (
        "13800138000,,A-1,100.00,10,SH01,2023-01-05 10:00,\n"
        "13800138000,,A-2,50,,sh01,2024-03-01,已完成\n"
        ",li000001,A-3,80,,,2024-02-01 09:30,\n"
        "13800138000,,A-4,999,,,2024-04-01,已取消\n"
    )
    job = new_job(shop, UserFactory(), content, kind="purchases")

    done = check_then_import(job)

    assert done.status == ImportStatus.DONE
    assert done.created_count == 4
    with shop_scope(shop):
        ming.refresh_from_db()
        li.refresh_from_db()
        first = Purchase.objects.get(external_order_id="A-1")
    assert first.paid_amount == Decimal("90.00")
    assert first.store_id == store.pk
    assert first.status == "completed"
    assert ming.total_spent == Decimal("140.00")
    assert ming.order_count == 2
    zone = shop.zone
    assert ming.first_purchase_at == datetime.datetime(2023, 1, 5, 10, tzinfo=zone)
    assert ming.last_purchase_at == datetime.datetime(2024, 3, 1, tzinfo=zone)
    assert (li.total_spent, li.order_count) == (Decimal("80.00"), 1)
    # History brought in is not new business: no purchase events.
    assert not OutboxEvent.objects.unscoped().exists()


def test_orders_already_known_or_repeated_in_the_file_are_skipped(shop, people):
    ming, _li = people
    with shop_scope(shop):
        Purchase.objects.create(
            shop=shop,
            member=ming,
            external_order_id="OLD-1",
            amount=Decimal(30),
            paid_amount=Decimal(30),
            currency="CNY",
            status="completed",
        )
    content = HEADER + (
        "13800138000,,OLD-1,30,,,2024-01-01,\n"
        "13800138000,,NEW-1,20,,,2024-01-02,\n"
        "13800138000,,NEW-1,20,,,2024-01-02,\n"
    )
    job = new_job(shop, UserFactory(), content, kind="purchases")

    done = check_then_import(job)

    assert (done.created_count, done.skipped_count) == (1, 2)
    with shop_scope(shop):
        assert Purchase.objects.count() == 2
        ming.refresh_from_db()
    assert (ming.total_spent, ming.order_count) == (Decimal("50.00"), 2)


def test_bad_purchase_rows_are_reported_by_row_and_column(shop, people):
    content = HEADER + (
        "13900139000,,B-1,10,,,2024-01-01,\n"
        "13800138000,,B-2,-5,,,2024-01-01,\n"
        "13800138000,,B-3,10,20,,2024-01-01,\n"
        "13800138000,,B-4,10,,NOPE,yesterday,\n"
    )
    job = new_job(shop, UserFactory(), content, kind="purchases")

    done = check_then_import(job)

    assert done.created_count == 0
    assert [(e["row"], e["column"]) for e in done.errors] == [
        (2, "手机"),
        (3, "金额"),
        (4, "优惠"),
        (5, "门店"),
        (5, "消费时间"),
    ]


def test_figures_are_recomputed_in_one_statement(
    shop, people, django_assert_num_queries
):
    ming, li = people
    with shop_scope(shop):
        for number, member in enumerate([ming, li, ming]):
            Purchase.objects.create(
                shop=shop,
                member=member,
                external_order_id=f"X-{number}",
                amount=Decimal(10),
                paid_amount=Decimal(10),
                currency="CNY",
                status="completed",
            )
        with django_assert_num_queries(1):
            recompute_member_figures(shop=shop, member_ids=[ming.pk, li.pk])
        ming.refresh_from_db()
    assert (ming.total_spent, ming.order_count) == (Decimal("20.00"), 2)
