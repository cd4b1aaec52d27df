"""The purchases API as a POS uses it: record, replay, complete, refund, cancel,
list and detail; bad input is a clear 4xx and writes nothing; another shop's
purchases and members are 404."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from members.models import Member, Purchase, PurchaseLine
from shops.models import OutboxEvent
from shops.tenancy import shop_scope
from tests.factories import StoreFactory, make_api_key
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db


def client_for(shop) -> APIClient:
    _key, plain = make_api_key(shop=shop)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


@pytest.fixture
def api(shop):
    return client_for(shop)


@pytest.fixture
def member(shop):
    return MemberFactory(shop=shop, external_id="crm-1")


def post(api, body, key=None, path="/api/v1/purchases"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(path, body, format="json", **headers)


def purchases(shop):
    with shop_scope(shop):
        return list(Purchase.objects.all())


def figures(member):
    with shop_scope(member.shop):
        fresh = Member.objects.get(pk=member.pk)
    return fresh.total_spent, fresh.order_count


def test_a_completed_purchase_returns_the_members_new_figures(api, shop, member):
    store = StoreFactory(shop=shop, code="SH01")

    response = post(
        api,
        {
            "member_code": member.member_code.lower(),
            "external_order_id": "POS-1",
            "amount": "128.00",
            "discount": 12.8,
            "store_code": "SH01",
            "lines": [{"sku": "T", "name": "Tea", "quantity": 2, "unit_price": "64"}],
        },
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "completed"
    assert body["paid_amount"] == "115.20"
    assert body["store_id"] == store.pk
    assert body["lines"][0]["quantity"] == "2.000"
    assert body["member"]["total_spent"] == "115.20"
    assert body["member"]["order_count"] == 1
    assert figures(member) == (Decimal("115.20"), 1)


def test_the_member_can_be_named_by_id_or_external_id(api, member):
    by_id = post(api, {"member_id": member.pk, "external_order_id": "A", "amount": 1})
    by_ext = post(
        api, {"member_external_id": "crm-1", "external_order_id": "B", "amount": 1}
    )
    assert (by_id.status_code, by_ext.status_code) == (201, 201)
    assert by_ext.json()["member"]["order_count"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"amount": [1]}, "amount"),
        ({"amount": "10", "discount": "11"}, "discount"),
        ({"amount": "10", "paid_amount": "10.50"}, "paid_amount"),
        ({"amount": "10", "currency": "USD"}, "currency"),
        ({"amount": "10", "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"amount": "10", "occurred_at": "yesterday"}, "occurred_at"),
        ({"amount": "10", "store_id": 999999}, "store_id"),
        ({"amount": "10", "complete": "yes"}, "complete"),
        ({"amount": "10", "external_order_id": "bad\x00id"}, "external_order_id"),
        ({"amount": "10", "lines": [{"name": "x", "quantity": -1}]}, None),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    api, shop, member, body, field
):
    response = post(api, {"member_id": member.pk, "external_order_id": "X", **body})

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "invalid"
    if field:
        assert field in response.json()["error"]["fields"]
    assert purchases(shop) == []
    assert figures(member) == (Decimal("0.00"), 0)


def test_a_store_of_another_shop_is_refused(api, shop, other_shop, member):
    elsewhere = StoreFactory(shop=other_shop)
    response = post(
        api,
        {
            "member_id": member.pk,
            "external_order_id": "X",
            "amount": "1",
            "store_id": elsewhere.pk,
        },
    )
    assert response.status_code == 400
    assert purchases(shop) == []


def test_a_member_of_another_shop_is_a_404(api, shop, other_shop):
    stranger = MemberFactory(shop=other_shop)

    response = post(
        api, {"member_id": stranger.pk, "external_order_id": "X", "amount": "1"}
    )
    missing = post(api, {"member_code": "NOPE", "external_order_id": "X", "amount": 1})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "member_not_found"
    assert missing.json() == response.json()
    assert purchases(other_shop) == []


def test_the_same_order_twice_returns_the_first_and_another_is_a_409(api, member):
    body = {"member_id": member.pk, "external_order_id": "POS-7", "amount": "20"}

    first = post(api, body)
    again = post(api, body)
    different = post(api, {**body, "amount": "21"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "order_exists"
    assert figures(member) == (Decimal("20.00"), 1)


def test_the_same_idempotency_key_replays_one_purchase(api, shop, member):
    body = {"member_id": member.pk, "external_order_id": "K-1", "amount": "5"}

    first = post(api, body, key="till-7-0001")
    again = post(api, body, key="till-7-0001")

    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert len(purchases(shop)) == 1


def test_pending_then_complete_then_refund_then_detail(api, shop, member):
    created = post(
        api,
        {
            "member_id": member.pk,
            "external_order_id": "WEB-1",
            "amount": "100",
            "complete": False,
            "channel": "online",
            "lines": [
                {"name": "Tea", "quantity": "2", "unit_price": "30"},
                {"name": "Cake", "quantity": "1", "unit_price": "40"},
            ],
        },
    ).json()
    assert created["status"] == "pending"
    assert created["member"]["order_count"] == 0
    url = f"/api/v1/purchases/{created['id']}"

    completed = post(api, {}, path=f"{url}/complete")
    assert completed.json()["member"]["total_spent"] == "100.00"

    tea = created["lines"][0]["id"]
    refund = post(
        api, {"lines": {str(tea): "1"}, "reason": "cracked"}, path=f"{url}/refund"
    )
    assert refund.status_code == 201, refund.json()
    assert refund.json()["refund"]["amount"] == "30.00"
    assert refund.json()["purchase"]["status"] == "partially_refunded"
    assert refund.json()["purchase"]["member"]["total_spent"] == "70.00"

    rest = post(api, {}, path=f"{url}/refund")
    assert rest.json()["purchase"]["status"] == "refunded"
    assert rest.json()["purchase"]["member"]["order_count"] == 0

    detail = api.get(url).json()
    assert [r["amount"] for r in detail["refunds"]] == ["30.00", "70.00"]
    assert [line["refunded_quantity"] for line in detail["lines"]] == ["2.000", "1.000"]


def test_refund_errors_are_clear(api, member):
    created = post(
        api, {"member_id": member.pk, "external_order_id": "R", "amount": "10"}
    ).json()
    url = f"/api/v1/purchases/{created['id']}/refund"

    too_much = post(api, {"amount": "10.01"}, path=url)
    negative = post(api, {"amount": "-1"}, path=url)

    assert too_much.status_code == 409
    assert too_much.json()["error"]["code"] == "refund_too_large"
    assert negative.status_code == 400
    assert figures(member) == (Decimal("10.00"), 1)


def test_cancel_pending_and_refuse_to_complete_it_or_cancel_a_completed(api, member):
    pending = post(
        api,
        {
            "member_id": member.pk,
            "external_order_id": "P",
            "amount": "1",
            "complete": False,
        },
    ).json()
    done = post(
        api, {"member_id": member.pk, "external_order_id": "D", "amount": "1"}
    ).json()

    cancelled = post(
        api, {"reason": "left"}, path=f"/api/v1/purchases/{pending['id']}/cancel"
    )
    complete = post(api, {}, path=f"/api/v1/purchases/{pending['id']}/complete")
    cancel_done = post(api, {}, path=f"/api/v1/purchases/{done['id']}/cancel")

    assert cancelled.json()["status"] == "cancelled"
    assert complete.status_code == 409
    assert complete.json()["error"]["code"] == "purchase_cancelled"
    assert cancel_done.status_code == 409
    assert cancel_done.json()["error"]["code"] == "purchase_completed"


def test_list_filters_and_another_shops_purchases_are_404(
    api, shop, other_shop, member
):
    store = StoreFactory(shop=shop)
    post(
        api,
        {
            "member_id": member.pk,
            "external_order_id": "1",
            "amount": "1",
            "store_id": store.pk,
        },
    )
    post(
        api,
        {
            "member_id": member.pk,
            "external_order_id": "2",
            "amount": "1",
            "complete": False,
        },
    )
    theirs = client_for(other_shop)
    stranger = MemberFactory(shop=other_shop)
    hidden = post(
        theirs, {"member_id": stranger.pk, "external_order_id": "1", "amount": "1"}
    ).json()

    everything = api.get("/api/v1/purchases").json()["results"]
    pending = api.get("/api/v1/purchases?status=pending").json()["results"]
    at_store = api.get(f"/api/v1/purchases?store={store.pk}").json()["results"]

    assert [p["external_order_id"] for p in everything] == ["2", "1"]
    assert [p["external_order_id"] for p in pending] == ["2"]
    assert [p["external_order_id"] for p in at_store] == ["1"]
    for path in ("", "/complete", "/refund", "/cancel"):
        url = f"/api/v1/purchases/{hidden['id']}{path}"
        response = api.get(url) if not path else post(api, {}, path=url)
        assert response.status_code == 404, path


def test_a_completed_post_stays_lean(api, member, django_assert_max_num_queries):
    store = StoreFactory(shop=member.shop, code="SH09")
    body = {
        "member_code": member.member_code,
        "external_order_id": "LEAN-1",
        "amount": "10",
        "store_code": "SH09",
        "lines": [{"name": "Tea", "quantity": 1, "unit_price": "10"}],
    }
    # The till's earlier sale: the key's last use is recorded (once a minute)
    # and the shop's points rules are read (once in a few seconds).
    post(api, {**body, "external_order_id": "LEAN-0"}, key="LEAN-0")

    # key, the member with its store, savepoint (the test runs inside a
    # transaction), purchase, lines, member UPDATE, outbox, the tier snapshot,
    # release, and the member's points account for the answer; the
    # idempotency record
    with django_assert_max_num_queries(11):
        response = post(api, {**body, "external_order_id": "LEAN-1"}, key="LEAN-1")

    assert response.status_code == 201
    assert store.pk == response.json()["store_id"]


@pytest.mark.parametrize(
    ("store_key", "value"),
    [
        ("store_code", "NOPE"),
        ("store_code", "OTHER"),  # another shop's store
        ("store_id", 10**12),
        ("store_id", "seven"),
    ],
)
def test_a_store_the_shop_does_not_have_is_refused_and_nothing_is_written(
    api, shop, other_shop, member, store_key, value
):
    StoreFactory(shop=other_shop, code="OTHER")
    body = {"member_id": member.pk, "external_order_id": "S-1", "amount": "9"}

    response = post(api, {**body, store_key: value})

    assert response.status_code == 400
    assert store_key in response.json()["error"]["fields"], response.json()
    assert purchases(shop) == []
    assert figures(member) == (Decimal("0.00"), 0)


def test_a_missing_member_is_a_404_whatever_the_store(api, shop):
    store = StoreFactory(shop=shop, code="SH01")
    for store_key, value in [("store_id", store.pk), ("store_code", "NOPE")]:
        body = {"member_id": 10**12, "external_order_id": "S", "amount": "9"}

        response = post(api, {**body, store_key: value})

        assert response.status_code == 404, store_key
    assert purchases(shop) == []


def test_webhook_events_are_emitted_once(api, shop, member):
    body = {"member_id": member.pk, "external_order_id": "W", "amount": "9"}
    created = post(api, body).json()
    post(api, body)
    post(
        api,
        {"external_refund_id": "R1"},
        path=f"/api/v1/purchases/{created['id']}/refund",
    )
    post(
        api,
        {"external_refund_id": "R1"},
        path=f"/api/v1/purchases/{created['id']}/refund",
    )

    with shop_scope(shop):
        topics = sorted(OutboxEvent.objects.values_list("topic", flat=True))
        assert PurchaseLine.objects.count() == 0
    assert topics == ["purchase.completed", "purchase.refunded"]


@pytest.mark.parametrize(
    "params", [{"occurred_from": "2026-01-01T00:00:00+22:13"}, {"occurred_to": "x"}]
)
def test_a_time_filter_postgresql_cannot_read_is_a_400(api, params):
    response = api.get("/api/v1/purchases", params)

    assert response.status_code == 400
    assert response.json()["error"]["fields"]
