"""The purchases admin: recording at the counter, who may refund and cancel,
a clerk limited to a store, and another shop's purchases are 404."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from members.admin.panels import panels_for
from members.models import Member, Purchase, PurchaseStatus
from members.services.purchases import record_purchase
from shops.models import Role
from shops.services.tenants import set_staff_stores
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, StoreFactory, UserFactory
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db

RECORD = "admin:members_purchase_record"


@pytest.fixture(autouse=True)
def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


@pytest.fixture
def login(client, shop):
    def log_in(role=Role.CLERK, stores=(), target_shop=None):
        membership = MembershipFactory(
            shop=target_shop or shop, role=role, user__is_staff=True
        )
        if stores:
            with shop_scope(membership.shop):
                set_staff_stores(membership=membership, stores=stores)
        client.force_login(membership.user)
        return client

    return log_in


@pytest.fixture
def member(shop):
    return MemberFactory(shop=shop, phone="+8613800138000", phone_last4="8000")


def buy(shop, member, order, store=None, **kwargs):
    with shop_scope(shop):
        return record_purchase(
            shop=shop,
            member=member,
            external_order_id=order,
            amount=kwargs.pop("amount", "100"),
            store=store,
            **kwargs,
        )


def change_url(purchase, action=""):
    if not action:
        return reverse("admin:members_purchase_change", args=[purchase.pk])
    return f"{reverse('admin:members_purchase_changelist')}{purchase.pk}/{action}/"


def test_a_clerk_records_a_purchase_found_by_phone(login, shop, member):
    store = StoreFactory(shop=shop)
    clerk = login(Role.CLERK, stores=[store])

    page = clerk.get(reverse(RECORD))
    response = clerk.post(
        reverse(RECORD),
        {
            "member": "138 0013 8000",
            "amount": "88.00",
            "discount": "8",
            "store": store.pk,
            "channel": "store",
            "complete": "on",
        },
    )

    assert page.status_code == 200
    assert f'value="{store.pk}" selected' in page.content.decode()
    assert response.status_code == 302
    with shop_scope(shop):
        purchase = Purchase.objects.get()
        fresh = Member.objects.get(pk=member.pk)
    assert purchase.paid_amount == Decimal("80.00")
    assert purchase.status == PurchaseStatus.COMPLETED
    assert (fresh.total_spent, fresh.order_count) == (Decimal("80.00"), 1)


def test_the_counter_form_explains_bad_input_and_writes_nothing(login, shop, member):
    clerk = login(Role.CLERK)

    unknown = clerk.post(
        reverse(RECORD), {"member": "NOBODY", "amount": "1", "channel": "store"}
    )
    too_much = clerk.post(
        reverse(RECORD),
        {
            "member": member.member_code,
            "amount": "10",
            "discount": "20",
            "channel": "store",
        },
    )

    assert "No single member matches" in unknown.content.decode()
    assert "cannot be more than the amount" in too_much.content.decode()
    with shop_scope(shop):
        assert Purchase.objects.count() == 0


def test_a_clerk_limited_to_a_store_sees_only_its_purchases(login, shop, member):
    mine, other = StoreFactory(shop=shop), StoreFactory(shop=shop)
    here = buy(shop, member, "HERE", store=mine)
    there = buy(shop, member, "THERE", store=other)
    clerk = login(Role.CLERK, stores=[mine])

    listing = clerk.get(reverse("admin:members_purchase_changelist")).content.decode()

    assert "HERE" in listing
    assert "THERE" not in listing
    assert clerk.get(change_url(here)).status_code == 200
    assert clerk.get(change_url(there)).status_code == 404
    refused = clerk.post(
        reverse(RECORD),
        {
            "member": member.member_code,
            "amount": "1",
            "store": other.pk,
            "channel": "store",
        },
    )
    assert refused.status_code == 200
    with shop_scope(shop):
        assert Purchase.objects.count() == 2


def test_search_by_order_number_member_code_and_phone(login, shop, member):
    buy(shop, member, "ORDER-1")
    someone = MemberFactory(shop=shop)
    buy(shop, someone, "ORDER-2")
    manager = login(Role.MANAGER)
    url = reverse("admin:members_purchase_changelist")

    by_order = manager.get(url, {"q": "ORDER-2"}).content.decode()
    by_phone = manager.get(url, {"q": "8000"}).content.decode()
    by_code = manager.get(url, {"q": someone.member_code}).content.decode()

    assert "ORDER-2" in by_order and "ORDER-1" not in by_order  # noqa: PT018
    assert "ORDER-1" in by_phone and "ORDER-2" not in by_phone  # noqa: PT018
    assert "ORDER-2" in by_code and "ORDER-1" not in by_code  # noqa: PT018


def test_the_purchase_list_counts_no_further_than_its_cap(
    login, shop, member, monkeypatch
):
    from shops.admin.base import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "CAP", 2)
    for n in range(3):
        buy(shop, member, f"ORDER-{n}")

    response = login().get(reverse("admin:members_purchase_changelist"))

    assert response.context["cl"].result_count == 3
    assert "purchases: more than 2" in response.content.decode()


def test_a_clerk_completes_but_cannot_refund_or_cancel(login, shop, member):
    pending = buy(shop, member, "P-1", complete=False)
    clerk = login(Role.CLERK)

    completed = clerk.post(change_url(pending, "complete"))
    refund = clerk.post(change_url(pending, "refund"), {"amount": "1"})
    cancel = clerk.post(change_url(pending, "cancel"))

    assert completed.status_code == 302
    assert refund.status_code in (302, 403)
    assert cancel.status_code in (302, 403)
    with shop_scope(shop):
        pending.refresh_from_db()
        assert pending.refunded_amount == 0
    assert pending.status == PurchaseStatus.COMPLETED


def test_a_manager_refunds_part_and_the_figures_follow(login, shop, member):
    done = buy(shop, member, "R-1", amount="100")
    manager = login(Role.MANAGER)

    page = manager.get(change_url(done, "refund"))
    too_much = manager.post(change_url(done, "refund"), {"amount": "100.01"})
    refunded = manager.post(
        change_url(done, "refund"), {"amount": "30", "reason": "cold"}
    )

    assert page.status_code == 200
    assert "can still be refunded" in too_much.content.decode()
    assert refunded.status_code == 302
    with shop_scope(shop):
        done.refresh_from_db()
        fresh = Member.objects.get(pk=member.pk)
    assert done.status == PurchaseStatus.PARTIALLY_REFUNDED
    assert fresh.total_spent == Decimal("70.00")


def test_a_manager_cannot_cancel_a_completed_purchase(login, shop, member):
    done = buy(shop, member, "C-1")
    manager = login(Role.MANAGER)

    response = manager.post(change_url(done, "cancel"), follow=True)

    assert "refund it instead" in response.content.decode()
    with shop_scope(shop):
        done.refresh_from_db()
    assert done.status == PurchaseStatus.COMPLETED


def test_another_shops_purchase_is_404(login, shop, other_shop):
    stranger = MemberFactory(shop=other_shop)
    theirs = buy(other_shop, stranger, "THEIRS")
    owner = login(Role.OWNER)

    listing = owner.get(reverse("admin:members_purchase_changelist")).content.decode()

    assert "THEIRS" not in listing
    for action in ("", "complete", "refund", "cancel"):
        assert owner.get(change_url(theirs, action)).status_code == 404, action


def test_the_member_page_panel_shows_figures_and_latest_purchases(
    rf, login, shop, member
):
    mine, other = StoreFactory(shop=shop), StoreFactory(shop=shop)
    buy(shop, member, "SEEN", store=mine)
    buy(shop, member, "HIDDEN", store=other)
    clerk = MembershipFactory(shop=shop, role=Role.CLERK)
    with shop_scope(shop):
        set_staff_stores(membership=clerk, stores=[mine])
        request = rf.get("/")
        request.user, request.shop = clerk.user, shop
        request.membership, request.role = clerk, clerk.role
        member.refresh_from_db()
        panel = next(
            p for p in panels_for(request, member) if p["panel"].key == "purchases"
        )
        shown = [p.external_order_id for p in panel["context"]["purchases"]]

    assert shown == ["SEEN"]
    assert panel["context"]["member"].order_count == 2
    assert f"?member={member.pk}" in panel["context"]["record_url"]


def test_a_superuser_in_the_all_shops_view_reads_and_searches(client, shop, member):
    buy(shop, member, "ANY-SHOP")
    admin_user = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(admin_user)
    url = reverse("admin:members_purchase_changelist")

    listing = client.get(url)
    searched = client.get(url, {"q": "ANY-SHOP"})

    assert listing.status_code == 200
    assert "ANY-SHOP" in searched.content.decode()
