"""End to end: a POS posts a completed purchase through the API; the member
earns once, and a replay with the same Idempotency-Key earns nothing more."""

import pytest
from rest_framework.test import APIClient

from points.models import PointsAccount, PointsEntry
from shops.tenancy import shop_scope
from tests.factories import make_api_key
from tests.members.factories import MemberFactory
from tests.points.factories import EarningRuleFactory

pytestmark = pytest.mark.django_db


def test_posting_a_purchase_earns_once_and_a_replay_earns_nothing(shop):
    member = MemberFactory(shop=shop)
    EarningRuleFactory(shop=shop, points_per_unit="2.00")
    _key, plain = make_api_key(shop=shop)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    body = {
        "member_code": member.member_code,
        "external_order_id": "POS-77",
        "amount": "64.00",
    }

    first = api.post(
        "/api/v1/purchases", body, format="json", HTTP_IDEMPOTENCY_KEY="k-77"
    )
    again = api.post(
        "/api/v1/purchases", body, format="json", HTTP_IDEMPOTENCY_KEY="k-77"
    )

    assert first.status_code == 201, first.content
    assert again.status_code in (200, 201), again.content
    assert again.json()["id"] == first.json()["id"]
    with shop_scope(shop):
        assert PointsAccount.objects.get(member=member).balance == 128
        assert PointsEntry.objects.count() == 1
