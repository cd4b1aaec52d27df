"""The points API as a POS or CRM uses it: a member's figures, history, lots,
hand adjustments, quotes and paying with points. Bad input is a clear 4xx
that changes nothing; another shop's member is a 404; a read key cannot
write; a retried write with the same Idempotency-Key does its work once."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from points.models import EntryKind, EntrySource, PointsAccount, PointsEntry, Redemption
from points.services import ledger
from shops import rawsql
from shops.models import ApiKeyScope
from shops.tenancy import shop_scope
from tests.factories import StoreFactory, make_api_key
from tests.members.factories import MemberFactory
from tests.points.factories import PointsPolicyFactory

pytestmark = pytest.mark.django_db


def client_for(shop, scope=ApiKeyScope.WRITE) -> APIClient:
    _key, plain = make_api_key(shop=shop, scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


@pytest.fixture
def api(shop):
    PointsPolicyFactory(shop=shop, expiry="never", cash_points=20)
    return client_for(shop)


def give(member, points, *, expires_at=None, available_at=None, reason="gift"):
    with shop_scope(member.shop):
        return ledger.credit(
            member=member,
            points=points,
            kind=EntryKind.EARN,
            source=EntrySource.CAMPAIGN,
            reason=reason,
            expires_at=expires_at,
            available_at=available_at,
        )


def account(member):
    with shop_scope(member.shop):
        return PointsAccount.objects.filter(member=member).first()


def entries(member):
    with shop_scope(member.shop):
        return list(PointsEntry.objects.filter(account__member=member))


def post(api, path, body, key="k-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(path, body, format="json", **headers)


# ----------------------------------------------------------------- figures


def test_the_figures_show_balance_pending_and_what_expires_soon(api, member):
    soon = timezone.now() + timedelta(days=10)
    give(member, 100)
    give(member, 30, expires_at=soon)
    give(member, 50, available_at=timezone.now() + timedelta(days=7))
    give(member, 9, expires_at=timezone.now() + timedelta(days=90))

    response = api.get(f"/api/v1/members/{member.pk}/points")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["balance"] == 189
    assert body["pending"] == 50
    assert body["spendable"] == 139
    assert body["lifetime_earned"] == 189
    assert body["redeemed"] == 0
    assert body["expiring_soon"] == 30
    assert [row["points"] for row in body["expiring"]] == [30]


def test_a_member_who_never_had_points_reads_zero(api, member):
    response = api.get(f"/api/v1/members/{member.pk}/points")

    assert response.status_code == 200
    assert response.json()["balance"] == 0
    assert response.json()["expiring"] == []
    assert account(member) is None  # reading does not create an account


def test_the_balance_read_is_one_statement_after_the_key(api, member, on_postgres):
    give(member, 10)
    api.get(f"/api/v1/members/{member.pk}/points")  # warm: key, caches

    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/api/v1/members/{member.pk}/points")

    assert response.status_code == 200
    assert response.json()["balance"] == 10
    statements = [rawsql.statement_of(q["sql"]) for q in queries]
    points_queries = [sql for sql in statements if "points_points" in sql]
    # PostgreSQL: member, account and expiring lots in one statement (the
    # embedded SQLite reads the account and the lots apart).
    assert len(points_queries) == (1 if on_postgres else 2), points_queries


@pytest.mark.parametrize("part", ["points", "points/entries", "points/lots"])
def test_a_member_id_beyond_bigint_is_a_404(api, part):
    response = api.get(f"/api/v1/members/{2**70}/{part}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_entries_are_newest_first_and_filter_by_kind(api, member):
    give(member, 10, reason="first")
    give(member, 20, reason="second")
    with shop_scope(member.shop):
        ledger.adjust(member=member, points=-5, reason="broken cup")

    everything = api.get(f"/api/v1/members/{member.pk}/points/entries").json()
    adjusted = api.get(f"/api/v1/members/{member.pk}/points/entries?kind=adjust").json()

    assert [e["points"] for e in everything["results"]] == [-5, 20, 10]
    assert [e["reason"] for e in adjusted["results"]] == ["broken cup"]
    assert everything["results"][0]["total_after"] == 25


def test_entries_page_with_a_cursor(api, member):
    for n in range(1, 4):
        give(member, n)

    first = api.get(f"/api/v1/members/{member.pk}/points/entries?page_size=2").json()
    second = api.get(first["next"]).json()

    assert [e["points"] for e in first["results"]] == [3, 2]
    assert [e["points"] for e in second["results"]] == [1]


def test_an_unknown_kind_filter_is_a_400(api, member):
    response = api.get(f"/api/v1/members/{member.pk}/points/entries?kind=gift")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "kind" in response.json()["error"]["fields"]


def test_lots_list_open_lots_with_remaining_and_expiry(api, member):
    expiry = timezone.now() + timedelta(days=40)
    give(member, 10, expires_at=expiry)
    give(member, 20)
    with shop_scope(member.shop):
        ledger.adjust(member=member, points=-10, reason="used up")

    lots = api.get(f"/api/v1/members/{member.pk}/points/lots").json()["results"]

    assert [(lot["points"], lot["remaining"]) for lot in lots] == [(20, 20)]
    assert lots[0]["expires_at"] is None
    assert lots[0]["spendable"] is True


# ----------------------------------------------------------------- adjustments


def test_an_adjustment_adds_points_with_its_reason(api, member):
    response = post(
        api,
        f"/api/v1/members/{member.pk}/points/adjustments",
        {"points": 25, "reason": "Sorry for the wait"},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "adjust"
    assert body["points"] == 25
    assert body["by"] == "API key POS"
    assert body["account"]["balance"] == 25
    assert account(member).balance == 25


def test_a_negative_adjustment_above_the_balance_is_a_409(api, member):
    give(member, 10)

    response = post(
        api,
        f"/api/v1/members/{member.pk}/points/adjustments",
        {"points": -11, "reason": "oops"},
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_points"
    assert account(member).balance == 10
    assert len(entries(member)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": 0, "reason": "nothing"}, "points"),
        ({"points": 5}, "reason"),
        ({"points": 5, "reason": "   "}, "reason"),
        ({"points": "five", "reason": "x"}, "points"),
        ({"points": 1.5, "reason": "x"}, "points"),
    ],
)
def test_bad_adjustments_are_refused_and_change_nothing(api, member, body, field):
    response = post(api, f"/api/v1/members/{member.pk}/points/adjustments", body)

    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert entries(member) == []


def test_an_adjustment_needs_an_idempotency_key(api, member):
    response = post(
        api,
        f"/api/v1/members/{member.pk}/points/adjustments",
        {"points": 5, "reason": "x"},
        key=None,
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert entries(member) == []


def test_a_replayed_adjustment_credits_once(api, member):
    path = f"/api/v1/members/{member.pk}/points/adjustments"
    first = post(api, path, {"points": 5, "reason": "x"}, key="adj-1")
    again = post(api, path, {"points": 5, "reason": "x"}, key="adj-1")
    other = post(api, path, {"points": 6, "reason": "x"}, key="adj-1")

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    # The shared Idempotency-Key rule of the API: another body is a 422.
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert account(member).balance == 5
    assert len(entries(member)) == 1


def test_a_read_key_cannot_write(shop, member):
    reader = client_for(shop, scope=ApiKeyScope.READ)

    adjust = post(
        reader,
        f"/api/v1/members/{member.pk}/points/adjustments",
        {"points": 5, "reason": "x"},
    )
    pay = post(
        reader,
        f"/api/v1/members/{member.pk}/points/pay",
        {"external_order_id": "A", "order_total": "10.00", "points": 20},
    )
    read = reader.get(f"/api/v1/members/{member.pk}/points")

    assert adjust.status_code == 403
    assert adjust.json()["error"]["code"] == "insufficient_scope"
    assert pay.status_code == 403
    assert read.status_code == 200
    assert entries(member) == []


# ----------------------------------------------------------------- cash


def test_a_quote_says_how_many_points_an_order_may_use(api, member):
    give(member, 1000)

    response = post(
        api,
        f"/api/v1/members/{member.pk}/points/quote",
        {"order_total": "10.00", "points": 100},
        key=None,
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    # 20 points = 1.00, at most 50% of the order: 5.00, i.e. 100 points.
    assert body["max_points"] == 100
    assert body["max_value"] == "5.00"
    assert body["value"] == "5.00"
    assert body["allowed"] is True
    assert account(member).balance == 1000


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"order_total": "0.00"}, "invalid_order_total"),
        ({"order_total": "-5"}, "invalid_order_total"),
        ({"order_total": "1.00", "points": 400}, "quote_above_total"),
        ({"order_total": "10.00", "points": 0}, "invalid_points"),
        ({"order_total": "10.00", "points": -20}, "invalid_points"),
    ],
)
def test_bad_quotes_are_a_400(api, member, body, code):
    give(member, 1000)

    response = post(api, f"/api/v1/members/{member.pk}/points/quote", body, key=None)

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == code


def test_paying_with_points_takes_them_once(api, member):
    give(member, 1000)
    path = f"/api/v1/members/{member.pk}/points/pay"
    body = {"external_order_id": "POS-9", "order_total": "10.00", "points": 60}

    first = post(api, path, body, key="pay-1")
    again = post(api, path, body, key="pay-1")

    assert first.status_code == 201, first.json()
    assert first.json()["kind"] == "order_payment"
    assert first.json()["cash_value"] == "3.00"
    assert first.json()["account"]["balance"] == 940
    assert again.json() == first.json()
    assert account(member).balance == 940
    with shop_scope(member.shop):
        assert Redemption.objects.count() == 1


def test_paying_more_points_than_the_member_holds_is_a_409(api, member):
    give(member, 50)

    response = post(
        api,
        f"/api/v1/members/{member.pk}/points/pay",
        {"external_order_id": "POS-9", "order_total": "100.00", "points": 60},
    )

    assert response.status_code == 409, response.json()
    assert response.json()["error"]["code"] == "insufficient_points"
    assert account(member).balance == 50


def test_paying_at_another_shops_store_is_a_400(api, member, other_shop):
    give(member, 1000)
    elsewhere = StoreFactory(shop=other_shop)

    response = post(
        api,
        f"/api/v1/members/{member.pk}/points/pay",
        {
            "external_order_id": "POS-9",
            "order_total": "10.00",
            "points": 20,
            "store": elsewhere.pk,
        },
    )

    assert response.status_code == 400
    assert "store" in response.json()["error"]["fields"]
    assert account(member).balance == 1000


# ----------------------------------------------------------------- isolation


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "points", None),
        ("get", "points/entries", None),
        ("get", "points/lots", None),
        ("get", "redemptions", None),
        ("post", "points/adjustments", {"points": 5, "reason": "x"}),
        ("post", "points/quote", {"order_total": "10.00"}),
        (
            "post",
            "points/pay",
            {"external_order_id": "A", "order_total": "9", "points": 20},
        ),
        ("post", "redemptions", {"reward": 1}),
    ],
)
def test_another_shops_member_is_a_404(api, other_shop, method, suffix, body):
    stranger = MemberFactory(shop=other_shop)
    give(stranger, 1000)

    if method == "get":
        response = api.get(f"/api/v1/members/{stranger.pk}/{suffix}")
    else:
        response = post(api, f"/api/v1/members/{stranger.pk}/{suffix}", body)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert account(stranger).balance == 1000
    assert len(entries(stranger)) == 1


def test_paying_again_for_one_order_returns_the_first_or_a_409(api, member):
    give(member, 1000)
    path = f"/api/v1/members/{member.pk}/points/pay"
    body = {"external_order_id": "POS-9", "order_total": "10.00", "points": 60}
    first = post(api, path, body, key="pay-1")

    same = post(api, path, body, key="pay-2")
    other = post(api, path, {**body, "points": 80}, key="pay-3")

    assert same.status_code == 200, same.json()
    assert same.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "order_paid"
    assert account(member).balance == 940


def test_entries_filter_by_source(api, member):
    give(member, 10)
    with shop_scope(member.shop):
        ledger.adjust(member=member, points=3, reason="kind words")

    response = api.get(f"/api/v1/members/{member.pk}/points/entries?source=manual")

    assert [e["points"] for e in response.json()["results"]] == [3]
