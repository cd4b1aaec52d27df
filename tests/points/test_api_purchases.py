"""A POS records a purchase and reads, in the same response, the member's new
tier and points balance and what this purchase earned; cancelling and refunding
answer with the balance after the points came back or were taken back."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from points.models import EntryKind, EntrySource, PointsAccount
from points.services import ledger
from shops import rawsql
from shops.tenancy import shop_scope
from tests.factories import make_api_key
from tests.members.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, PointsPolicyFactory
from tiers.models import Tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(shop):
    PointsPolicyFactory(shop=shop, expiry="never", cash_points=20)
    EarningRuleFactory(shop=shop, points_per_unit="1.00")
    _key, plain = make_api_key(shop=shop)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


@pytest.fixture
def ladder(shop):
    entry = Tier.objects.unscoped().create(shop=shop, name="Member", rank=0)
    silver = Tier.objects.unscoped().create(
        shop=shop, name="Silver", rank=1, min_spend=Decimal("100.00")
    )
    return entry, silver


def buy(api, member, amount, order="POS-1", **extra):
    return api.post(
        "/api/v1/purchases",
        {"member_id": member.pk, "external_order_id": order, "amount": amount, **extra},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"key-{order}",
    )


def balance(member):
    with shop_scope(member.shop):
        account = PointsAccount.objects.filter(member=member).first()
    return account.balance if account else 0


def test_the_purchase_response_carries_the_new_tier_and_balance(api, member, ladder):
    _entry, silver = ladder

    response = buy(api, member, "128.00")

    assert response.status_code == 201, response.json()
    figures = response.json()["member"]
    assert figures["tier"] == {"id": silver.pk, "name": "Silver", "changed": True}
    assert figures["points"]["balance"] == 128
    assert figures["points"]["spendable"] == 128
    assert figures["points"]["entry"]["points"] == 128
    assert figures["points"]["entry"]["kind"] == "earn"
    assert balance(member) == 128


def test_a_small_purchase_keeps_the_tier_and_adds_to_the_balance(api, member, ladder):
    entry_tier, _silver = ladder
    with shop_scope(member.shop):
        ledger.credit(
            member=member,
            points=10,
            kind=EntryKind.EARN,
            source=EntrySource.CAMPAIGN,
            reason="welcome",
        )

    figures = buy(api, member, "20.00").json()["member"]

    assert figures["tier"] == {"id": entry_tier.pk, "name": "Member", "changed": False}
    assert figures["points"]["balance"] == 30
    assert figures["points"]["entry"]["points"] == 20


def test_a_replayed_purchase_answers_the_same_and_earns_once(api, member, ladder):
    first = buy(api, member, "50.00")
    again = buy(api, member, "50.00")

    assert again.json() == first.json()
    assert balance(member) == 50


def test_the_points_part_reads_the_account_only_under_its_lock(api, member, ladder):
    buy(api, member, "10.00", order="warm-up")

    with CaptureQueriesContext(connection) as queries:
        response = buy(api, member, "10.00", order="POS-2")

    assert response.status_code == 201
    statements = [rawsql.statement_of(q["sql"]) for q in queries]
    reads = [
        sql
        for sql in statements
        if sql.startswith("SELECT") and "points_pointsaccount" in sql
    ]
    # The ledger's own lock (FOR UPDATE); the response shows the account as
    # the credit left it, without reading it again. SQLite has no FOR UPDATE
    # (it locks the whole database), so there the lock's read looks plain.
    assert len(reads) == 1, reads
    assert ("FOR UPDATE" in reads[0]) == (connection.vendor == "postgresql")
    points = response.json()["member"]["points"]
    assert points["balance"] == balance(member) == 20


def test_a_refund_answers_with_the_balance_after_the_points_went_back(
    api, member, ladder
):
    purchase = buy(api, member, "100.00").json()

    response = api.post(
        f"/api/v1/purchases/{purchase['id']}/refund",
        {"amount": "40.00"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["purchase"]["member"]["points"]["balance"] == 60
    assert balance(member) == 60


def test_cancelling_a_pending_order_paid_with_points_gives_them_back(
    api, member, ladder
):
    with shop_scope(member.shop):
        ledger.credit(
            member=member,
            points=200,
            kind=EntryKind.EARN,
            source=EntrySource.CAMPAIGN,
            reason="welcome",
        )
    paid = api.post(
        f"/api/v1/members/{member.pk}/points/pay",
        {"external_order_id": "POS-7", "order_total": "20.00", "points": 100},
        format="json",
        HTTP_IDEMPOTENCY_KEY="pay-7",
    )
    assert paid.status_code == 201, paid.json()
    pending = buy(api, member, "20.00", order="POS-7", complete=False).json()
    assert pending["member"]["points"]["balance"] == 100

    response = api.post(f"/api/v1/purchases/{pending['id']}/cancel")

    assert response.status_code == 200, response.json()
    assert response.json()["member"]["points"]["balance"] == 200
    assert response.json()["member"]["points"]["entry"]["points"] == 100


def test_another_shops_purchase_cannot_be_refunded(api, other_shop):
    stranger = MemberFactory(shop=other_shop)
    _key, plain = make_api_key(shop=other_shop)
    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    purchase = buy(theirs, stranger, "10.00").json()

    response = api.post(f"/api/v1/purchases/{purchase['id']}/refund", format="json")

    assert response.status_code == 404
