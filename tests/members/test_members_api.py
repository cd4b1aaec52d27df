"""The members API: register, find, filter, sort, change, timeline, export,
erase; and never another shop's member."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from members.models import Member, MemberChange, MemberTag, Tag
from members.services.members import register_member
from shops.models import ApiKeyScope
from shops.tenancy import shop_scope
from tests.factories import StoreFactory, make_api_key
from tests.members.factories import PurchaseFactory

pytestmark = pytest.mark.django_db


def client_for(shop, scope=ApiKeyScope.WRITE) -> APIClient:
    _key, plain = make_api_key(shop=shop, scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


def member(shop, **details) -> Member:
    details.setdefault("source", "counter")
    with shop_scope(shop):
        return register_member(shop=shop, **details)


def test_registering_returns_the_member_with_code_and_figures(shop):
    api = client_for(shop)

    response = api.post(
        "/api/v1/members",
        {"phone": "13800138000", "name": "Li Wei", "sms_consent": True},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["phone"] == "+8613800138000"
    assert body["source"] == "api"
    assert len(body["member_code"]) == 8
    assert body["total_spent"] == "0.00"
    assert body["order_count"] == 0
    assert body["tags"] == []
    assert body["sms_consent"] is True
    again = api.post(
        "/api/v1/members",
        {"phone": "13800138000", "name": "Li Wei", "sms_consent": True},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert again.status_code == 201
    assert again.json()["id"] == body["id"]
    with shop_scope(shop):
        entry = MemberChange.objects.get(member_id=body["id"])
    assert entry.actor_label.startswith("API key")


def test_a_taken_phone_is_409_with_the_existing_member(shop):
    existing = member(shop, phone="13800138000", name="Li Wei")

    response = client_for(shop).post(
        "/api/v1/members", {"phone": "+8613800138000"}, format="json"
    )

    assert response.status_code == 409
    body = response.json()
    assert body["error"]["code"] == "member_exists"
    assert "phone" in body["error"]["fields"]
    assert body["member"] == {"id": existing.pk, "member_code": existing.member_code}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"phone": "123"}, "phone"),
        ({"email": "nope"}, "email"),
        (
            {"phone": "13800138000", "birthday_month": 2, "birthday_day": 31},
            "birthday_day",
        ),
        (
            {"phone": "13800138000", "custom_fields": {"unknown": 1}},
            "custom_fields.unknown",
        ),
        ({"phone": "13800138000", "home_store": 999999}, "home_store"),
        ({}, "phone"),
    ],
)
def test_bad_details_are_400_with_the_field_and_nothing_saved(shop, data, field):
    response = client_for(shop).post("/api/v1/members", data, format="json")

    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    with shop_scope(shop):
        assert not Member.objects.exists()


@pytest.mark.parametrize(
    "query", ["13800138000", "+86 138 0013 8000", "8000", "li@example.com", "wei"]
)
def test_search_by_phone_last_four_email_or_name(shop, query):
    wanted = member(shop, phone="13800138000", name="Li Wei", email="li@example.com")
    member(shop, phone="13900139000", name="Wang Fang")

    response = client_for(shop).get("/api/v1/members", {"q": query})

    assert [m["id"] for m in response.json()["results"]] == [wanted.pk]


def test_search_and_lookup_by_member_code(shop):
    wanted = member(shop, phone="13800138000")
    member(shop, phone="13900139000")
    api = client_for(shop)

    found = api.get("/api/v1/members", {"q": wanted.member_code.lower()})
    by_code = api.get(f"/api/v1/members/by-code/{wanted.member_code}")
    missing = api.get("/api/v1/members/by-code/NOPE")

    assert [m["id"] for m in found.json()["results"]] == [wanted.pk]
    assert by_code.json()["id"] == wanted.pk
    assert missing.status_code == 404


def test_filters_and_sorting(shop):
    store = StoreFactory(shop=shop)
    big = member(
        shop, phone="13800138000", home_store=store, birthday_month=5, birthday_day=1
    )
    small = member(shop, phone="13900139000", home_store=store)
    member(shop, phone="13700137000", source="import")
    with shop_scope(shop):
        Member.objects.filter(pk=big.pk).update(
            total_spent=Decimal("900"), order_count=9, last_purchase_at=timezone.now()
        )
        Member.objects.filter(pk=small.pk).update(
            total_spent=Decimal("100"),
            order_count=1,
            last_purchase_at=timezone.now() - datetime.timedelta(days=100),
        )
        vip = Tag.objects.create(shop=shop, name="VIP")
        MemberTag.objects.create(shop=shop, member=big, tag=vip)
    api = client_for(shop)

    def ids(**params):
        response = api.get("/api/v1/members", params)
        assert response.status_code == 200, response.json()
        return [m["id"] for m in response.json()["results"]]

    assert ids(home_store=store.pk, ordering="total_spent") == [small.pk, big.pk]
    assert ids(home_store=store.pk, ordering="-total_spent") == [big.pk, small.pk]
    assert ids(tag=vip.pk) == [big.pk]
    assert ids(total_spent_min="500") == [big.pk]
    assert ids(order_count_max=1, source="counter") == [small.pk]
    assert ids(birthday_month=5) == [big.pk]
    since = (timezone.now() - datetime.timedelta(days=30)).isoformat()
    assert ids(last_purchase_after=since) == [big.pk]
    assert ids(ordering="-last_purchase_at") == [big.pk, small.pk]
    assert len(ids(status="active", ordering="joined_at")) == 3
    body = api.get("/api/v1/members", {"tag": vip.pk}).json()
    assert body["results"][0]["tags"] == ["VIP"]


def test_an_unknown_ordering_is_400(shop):
    response = client_for(shop).get("/api/v1/members", {"ordering": "password"})

    assert response.status_code == 400
    assert "ordering" in response.json()["error"]["fields"]


def test_pages_follow_the_requested_order(shop):
    made = [member(shop, phone=f"1380013800{i}") for i in range(5)]
    with shop_scope(shop):
        for i, m in enumerate(made):
            Member.objects.filter(pk=m.pk).update(total_spent=Decimal(i * 10))
    api = client_for(shop)

    seen = []
    url = "/api/v1/members?ordering=-total_spent&page_size=2"
    while url:
        body = api.get(url).json()
        seen += [m["id"] for m in body["results"]]
        url = body["next"]

    assert seen == [m.pk for m in reversed(made)]


def test_patch_changes_profile_and_consent_and_shows_on_the_timeline(shop):
    m = member(shop, phone="13800138000", name="Li")
    api = client_for(shop)

    response = api.patch(
        f"/api/v1/members/{m.pk}",
        {"name": "Li Wei", "email_consent": True, "consent_source": "web shop"},
        format="json",
    )
    timeline = api.get(f"/api/v1/members/{m.pk}/changes").json()["results"]

    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Li Wei"
    assert response.json()["email_consent"] is True
    assert timeline[0]["action"] == "updated"
    assert timeline[0]["changes"]["name"] == ["Li", "Li Wei"]
    assert timeline[0]["by"].startswith("API key")
    assert timeline[1]["action"] == "created"


def test_patch_to_a_taken_email_is_409_and_changes_nothing(shop):
    holder = member(shop, email="li@example.com")
    m = member(shop, phone="13800138000", name="Wang")

    response = client_for(shop).patch(
        f"/api/v1/members/{m.pk}",
        {"email": "LI@example.com", "name": "X"},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["member"]["id"] == holder.pk
    m.refresh_from_db()
    assert m.name == "Wang"


def test_export_and_erase(shop):
    m = member(shop, phone="13800138000", name="Li Wei", email="li@example.com")
    PurchaseFactory(member=m, shop=shop)
    api = client_for(shop)

    export = api.get(f"/api/v1/members/{m.pk}/export")
    erased = api.post(f"/api/v1/members/{m.pk}/erase")

    assert export.status_code == 200
    assert export.json()["member"]["name"] == "Li Wei"
    assert len(export.json()["purchases"]) == 1
    assert erased.status_code == 200
    assert erased.json()["status"] == "erased"
    assert erased.json()["phone"] == ""
    assert erased.json()["name"] == ""


def test_a_read_key_cannot_erase(shop):
    m = member(shop, phone="13800138000")

    response = client_for(shop, scope=ApiKeyScope.READ).post(
        f"/api/v1/members/{m.pk}/erase"
    )

    assert response.status_code == 403
    m.refresh_from_db()
    assert m.phone == "+8613800138000"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("get", "/changes"),
        ("get", "/export"),
        ("post", "/erase"),
    ],
)
def test_another_shops_member_is_404(shop, other_shop, method, suffix):
    theirs = member(other_shop, phone="13800138000", name="Theirs")

    response = getattr(client_for(shop), method)(
        f"/api/v1/members/{theirs.pk}{suffix}", {"name": "Mine"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    theirs.refresh_from_db()
    assert (theirs.name, theirs.status) == ("Theirs", "active")


def test_another_shops_members_are_not_listed_or_found_by_code(shop, other_shop):
    theirs = member(other_shop, phone="13800138000")
    api = client_for(shop)

    assert api.get("/api/v1/members", {"q": "13800138000"}).json()["results"] == []
    assert api.get(f"/api/v1/members/by-code/{theirs.member_code}").status_code == 404


def test_the_list_reads_tags_in_a_fixed_number_of_queries(shop):
    # Whatever other apps add to each member (tier, points), a page costs the
    # same number of queries for one member as for ten.
    with shop_scope(shop):
        tag = Tag.objects.create(shop=shop, name="VIP")
    api = client_for(shop)

    made = []

    def tagged_members(count):
        for _i in range(count):
            made.append(1)
            m = member(shop, phone=f"138001380{len(made):02d}")
            with shop_scope(shop):
                MemberTag.objects.create(shop=shop, member=m, tag=tag)
        api.get("/api/v1/members")  # warm up: the key's last use, caches
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/api/v1/members")
        return len(queries), response

    one, _response = tagged_members(1)
    ten, response = tagged_members(9)

    assert len(response.json()["results"]) == 10
    assert ten == one
    assert all(m["tags"] == ["VIP"] for m in response.json()["results"])
