"""Exports of the filtered member and purchase lists: CSV streamed with a BOM,
Excel from a write-only workbook, phones optionally masked, managers only."""

import io
from decimal import Decimal

import openpyxl
import pytest
from django.conf import settings
from django.contrib import admin
from django.http import StreamingHttpResponse
from django.urls import reverse

from members.models import Member, Purchase
from members.services import exports
from shops.admin.base import ShopScopedAdmin
from shops.models import Role
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, StoreFactory

pytestmark = pytest.mark.django_db

MEMBERS_URL = reverse("admin:members_export_members")
PURCHASES_URL = reverse("admin:members_export_purchases")


class ListAdmin(ShopScopedAdmin):
    """Stands in for the member list's admin: a filter and a search."""

    list_filter = ("status",)
    search_fields = ("name",)


@pytest.fixture(autouse=True)
def member_list(monkeypatch):
    monkeypatch.setitem(admin.site._registry, Member, ListAdmin(Member, admin.site))


@pytest.fixture
def staff_client(client, shop):
    def login(role=Role.MANAGER):
        membership = MembershipFactory(shop=shop, role=role, user__is_staff=True)
        client.force_login(membership.user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return login


@pytest.fixture
def listed(shop):
    store = StoreFactory(shop=shop, code="SH01")
    with shop_scope(shop):
        ming = Member.objects.create(
            shop=shop,
            member_code="MING0001",
            name="王小明",
            phone="+8613800138000",
            birthday_month=5,
            birthday_day=31,
            birth_year=1990,
            home_store=store,
            status="blocked",
        )
        Member.objects.create(
            shop=shop, member_code="ALICE001", name="Alice", phone="+8613900139000"
        )
        Purchase.objects.create(
            shop=shop,
            member=ming,
            store=store,
            external_order_id="A-1",
            amount=Decimal("99.50"),
            paid_amount=Decimal("99.50"),
            currency="CNY",
            status="completed",
        )
    return ming


def csv_rows(response):
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return [line.split(",") for line in body.lstrip("\ufeff").splitlines()]


def test_the_member_csv_follows_the_lists_filters_and_masks_phones(
    staff_client, listed
):
    client = staff_client(Role.MANAGER)

    response = client.get(
        MEMBERS_URL, {"format": "csv", "mask": "1", "status__exact": "blocked"}
    )

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    header, *rows = csv_rows(response)
    assert header[:4] == ["Member code", "Name", "Phone", "Email"]
    assert rows == [
        [
            "MING0001", "王小明", "138****8000", "", "1990-05-31", "Not given",
            "SH01", "At the counter", "Blocked", rows[0][9], "0.00", "0", "",
            "no", "no", "",
        ]
    ]  # fmt: skip


def test_search_and_unmasked_phones(staff_client, listed):
    client = staff_client(Role.OWNER)

    response = client.get(MEMBERS_URL, {"format": "csv", "q": "Alice"})

    _header, *rows = csv_rows(response)
    assert [row[2] for row in rows] == ["+8613900139000"]


def test_the_csv_is_read_in_chunks_as_it_is_sent(
    staff_client, listed, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(exports, "CSV_FLUSH_ROWS", 1)
    chunk_sizes = []
    iterator = exports.QuerySet.iterator

    def spy(self, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return iterator(self, chunk_size=chunk_size)

    monkeypatch.setattr(exports.QuerySet, "iterator", spy)
    client = staff_client(Role.MANAGER)
    response = client.get(MEMBERS_URL, {"format": "csv"})
    assert chunk_sizes == []  # nothing read before the body is sent

    pieces = list(response.streaming_content)

    assert chunk_sizes == [exports.CHUNK_SIZE]
    assert len(pieces) == 3  # header with the first row, second row, the rest
    with django_assert_max_num_queries(1):
        # Outside the request, as a server sends the body: the generator
        # sets the shop's scope itself.
        list(
            exports.csv_chunks(
                exports.member_export(
                    shop=listed.shop,
                    queryset=Member.objects.unscoped().filter(shop=listed.shop),
                    mask_phones=False,
                )
            )
        )


def test_the_excel_export_holds_the_same_rows(staff_client, listed):
    client = staff_client(Role.MANAGER)

    response = client.get(MEMBERS_URL, {"format": "xlsx", "mask": "1"})

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"].startswith('attachment; filename="members-')
    sheet = openpyxl.load_workbook(
        io.BytesIO(b"".join(response.streaming_content))
    ).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Member code", "Name", "Phone")
    assert sorted(r[2] for r in rows[1:]) == ["138****8000", "139****9000"]


def test_purchases_are_exported(staff_client, listed):
    client = staff_client(Role.MANAGER)

    response = client.get(PURCHASES_URL, {"format": "csv"})

    header, *rows = csv_rows(response)
    assert header[:3] == ["Order number", "Member code", "Phone"]
    assert rows[0][:5] == ["A-1", "MING0001", "+8613800138000", "SH01", "99.50"]


def test_without_a_format_the_export_page_offers_the_choices(staff_client, listed):
    client = staff_client(Role.MANAGER)

    page = client.get(MEMBERS_URL, {"status__exact": "blocked"})

    assert page.status_code == 200
    assert "One row, as the list is filtered now." in page.text
    assert 'name="status__exact" value="blocked"' in page.text


def test_a_clerk_may_not_export(staff_client, listed):
    client = staff_client(Role.CLERK)

    assert client.get(MEMBERS_URL, {"format": "csv"}).status_code == 403
    assert client.get(PURCHASES_URL, {"format": "xlsx"}).status_code == 403


def test_an_export_holds_only_the_shops_own_members(staff_client, listed, other_shop):
    with shop_scope(other_shop):
        Member.objects.create(
            shop=other_shop, member_code="THEIRS01", phone="+8613700137000"
        )
    client = staff_client(Role.OWNER)

    _header, *rows = csv_rows(client.get(MEMBERS_URL, {"format": "csv"}))

    assert sorted(row[0] for row in rows) == ["ALICE001", "MING0001"]


def test_phones_are_masked_like_the_counter_shows_them():
    assert exports.mask_phone("+8613800138000") == "138****8000"
    assert exports.mask_phone("+14155550123") == "141****0123"
    assert exports.mask_phone("") == ""
