"""The tiers API: the ladder, the member's tier section and progress, the tier
filter, the tier history and the manual tier; and never another shop's."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from shops.models import ApiKeyScope
from shops.tenancy import shop_scope
from tests.factories import make_api_key
from tests.members.factories import MemberFactory, PurchaseFactory
from tests.tiers.factories import make_ladder
from tiers.models import MemberTier, TierChange, TierChangeReason
from tiers.services.evaluation import evaluate_member, move_member

pytestmark = pytest.mark.django_db


def client_for(shop, scope=ApiKeyScope.WRITE) -> APIClient:
    _key, plain = make_api_key(shop=shop, scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def spender(shop, spent="0.00", orders=None):
    """A member with completed purchases worth `spent` over `orders` orders
    (one order by default), figures to match, placed in the tier they meet."""
    orders = (1 if Decimal(spent) else 0) if orders is None else orders
    member = MemberFactory(shop=shop, total_spent=Decimal(spent), order_count=orders)
    amounts = [Decimal(spent) / orders] * orders if orders else []
    for amount in amounts:
        PurchaseFactory(
            member=member,
            shop=shop,
            amount=amount.quantize(Decimal("0.01")),
            completed_at=timezone.now(),
        )
    with shop_scope(shop):
        evaluate_member(member=member, reason=TierChangeReason.PURCHASE)
    return member


def test_the_ladder_lowest_rank_first_with_benefits_and_policy(shop):
    normal, senior, _vip, _top = make_ladder(shop, basis="either")
    with shop_scope(shop):
        senior.name_translations = {"zh-hans": "高级会员"}
        senior.discount_percent = Decimal("5.00")
        senior.perks = "Free tea\n\nTasting events"
        senior.save()

    response = client_for(shop).get("/api/v1/tiers")

    assert response.status_code == 200
    body = response.json()
    assert [t["name"] for t in body["tiers"]] == ["Normal", "Senior", "VIP", "Supreme"]
    assert [t["is_entry"] for t in body["tiers"]] == [True, False, False, False]
    second = body["tiers"][1]
    assert second["id"] == senior.pk
    assert second["min_spend"] == "1000.00"
    assert second["min_orders"] == 5
    assert second["name_translations"] == {"zh-hans": "高级会员"}
    assert second["benefits"]["discount_percent"] == "5.00"
    assert second["benefits"]["perks"] == ["Free tea", "Tasting events"]
    assert body["policy"]["basis"] == "either"
    assert body["policy"]["window"] == "lifetime"
    assert body["tiers"][0]["id"] == normal.pk


def test_the_ladder_in_the_request_language(shop):
    _normal, senior, *_rest = make_ladder(shop)
    with shop_scope(shop):
        senior.name_translations = {"zh-hans": "高级会员"}
        senior.save()
    api = client_for(shop)

    response = api.get("/api/v1/tiers", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.json()["tiers"][1]["name"] == "高级会员"


def test_a_shop_without_tiers_has_an_empty_ladder_and_no_tier_section(shop):
    member = MemberFactory(shop=shop)
    api = client_for(shop)

    assert api.get("/api/v1/tiers").json()["tiers"] == []
    assert api.get(f"/api/v1/members/{member.pk}").json()["tier"] is None


def test_the_member_carries_tier_benefits_and_progress(shop):
    make_ladder(shop)
    senior_member = spender(shop, "1200.00", 3)
    newcomer = spender(shop)
    api = client_for(shop)

    section = api.get(f"/api/v1/members/{senior_member.pk}").json()["tier"]
    entry = api.get(f"/api/v1/members/{newcomer.pk}").json()["tier"]

    assert section["name"] == "Senior"
    assert section["benefits"]["points_multiplier"] == "1.00"
    assert section["since"] is not None
    assert section["manual"] is None
    progress = section["progress"]
    assert progress["spend"] == "1200.00"
    assert progress["next_tier"]["name"] == "VIP"
    assert progress["spend_to_next"] == "3800.00"
    assert "3800" in progress["sentence"].replace(",", "")
    assert entry["name"] == "Normal"
    assert entry["since"] is None
    assert entry["progress"]["spend_to_next"] == "1000.00"


def test_a_page_of_members_costs_the_same_queries_whatever_its_size(shop):
    make_ladder(shop)
    api = client_for(shop)
    for spent in ("1200", "0", "6000"):
        spender(shop, spent)
    api.get("/api/v1/members")  # warm caches (key's last use, content types)

    with CaptureQueriesContext(connection) as small:
        first = api.get("/api/v1/members")
    for spent in ("1500", "30", "25000", "5500", "0", "9000"):
        spender(shop, spent)
    with CaptureQueriesContext(connection) as large:
        second = api.get("/api/v1/members")

    assert len(first.json()["results"]) == 3
    assert len(second.json()["results"]) == 9
    assert {m["tier"]["name"] for m in second.json()["results"]} == {
        "Normal", "Senior", "VIP", "Supreme",
    }  # fmt: skip
    assert len(large.captured_queries) == len(small.captured_queries)


def test_filter_members_by_tier(shop, other_shop):
    normal, senior, vip, _top = make_ladder(shop)
    _other_normal, other_senior, *_ = make_ladder(other_shop)
    newcomer = spender(shop)
    regular = spender(shop, "1500")
    big = spender(shop, "6000")
    dropped = spender(shop, "1500")
    with shop_scope(shop):
        # A member moved back to the entry tier has a row pointing at it.
        move_member(member=dropped, to_tier=normal, reason="manual", detail={})
    api = client_for(shop)

    def listed(tier_id):
        response = api.get("/api/v1/members", {"tier": tier_id})
        assert response.status_code == 200, response.json()
        return {m["id"] for m in response.json()["results"]}

    assert listed(senior.pk) == {regular.pk}
    assert listed(vip.pk) == {big.pk}
    assert listed(normal.pk) == {newcomer.pk, dropped.pk}
    assert listed(other_senior.pk) == set()
    assert listed(f"{senior.pk}.5") == set()
    bad = api.get("/api/v1/members", {"tier": "gold"})
    assert bad.status_code == 400
    assert "tier" in bad.json()["error"]["fields"]


def test_tier_history_newest_first_in_cursor_pages(shop):
    _normal, _senior, vip, _top = make_ladder(shop)
    member = spender(shop, "1500")
    with shop_scope(shop):
        move_member(member=member, to_tier=vip, reason="manual", detail={"reason": "x"})
    api = client_for(shop)

    first = api.get(f"/api/v1/members/{member.pk}/tier-history", {"page_size": 1})
    assert first.status_code == 200
    page = first.json()
    assert [
        (c["from_tier"]["name"], c["to_tier"]["name"]) for c in page["results"]
    ] == [("Senior", "VIP")]
    assert page["results"][0]["reason"] == "manual"
    assert page["results"][0]["reason_label"] == "Set by staff"
    second = api.get(page["next"]).json()
    assert [
        (c["from_tier"]["name"], c["to_tier"]["name"]) for c in second["results"]
    ] == [("Normal", "Senior")]
    assert second["results"][0]["reason"] == "purchase"
    assert second["results"][0]["detail"]["spend"] in ("1500.00", "1500")


def test_setting_and_clearing_a_manual_tier_needs_a_write_key(shop):
    _normal, _senior, vip, _top = make_ladder(shop)
    member = spender(shop, "1500")
    api = client_for(shop)
    until = (timezone.now() + datetime.timedelta(days=30)).date()

    response = api.put(
        f"/api/v1/members/{member.pk}/manual-tier",
        {"tier": vip.pk, "mode": "fixed", "until": until.isoformat(),
         "reason": "Complaint: make it right"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == "VIP"
    assert body["manual"]["tier"]["name"] == "VIP"
    assert body["manual"]["mode"] == "fixed"
    assert body["manual"]["until"] == until.isoformat()
    assert body["manual"]["reason"] == "Complaint: make it right"
    with shop_scope(shop):
        change = TierChange.objects.filter(member=member).first()
    assert change.reason == "manual"
    assert change.to_tier_id == vip.pk
    assert change.actor_label.startswith("API key")
    assert change.detail["reason"] == "Complaint: make it right"

    cleared = api.delete(f"/api/v1/members/{member.pk}/manual-tier")

    assert cleared.status_code == 200, cleared.json()
    assert cleared.json()["manual"] is None
    assert cleared.json()["name"] == "Senior"
    again = api.delete(f"/api/v1/members/{member.pk}/manual-tier")
    assert again.status_code == 200
    assert again.json()["name"] == "Senior"


def test_a_read_key_cannot_set_or_clear_a_manual_tier(shop):
    _normal, _senior, vip, _top = make_ladder(shop)
    member = spender(shop, "1500")
    api = client_for(shop, scope=ApiKeyScope.READ)

    put = api.put(
        f"/api/v1/members/{member.pk}/manual-tier",
        {"tier": vip.pk, "mode": "fixed", "reason": "VIP guest"},
        format="json",
    )
    delete = api.delete(f"/api/v1/members/{member.pk}/manual-tier")

    assert put.status_code == 403
    assert put.json()["error"]["code"] == "insufficient_scope"
    assert delete.status_code == 403
    with shop_scope(shop):
        assert not MemberTier.objects.filter(manual_tier__isnull=False).exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tier": 999_999_999}, "tier"),
        ({"tier": "other-shop"}, "tier"),
        ({"tier": "gold"}, "tier"),
        ({"mode": "forever"}, "mode"),
        ({"until": "past"}, "until"),
        ({"until": "31/12/2030"}, "until"),
        ({"reason": ""}, "reason"),
        ({"reason": None}, "reason"),
    ],
)
def test_bad_manual_tier_input_is_400_and_changes_nothing(
    shop, other_shop, change, field
):
    _normal, _senior, vip, _top = make_ladder(shop)
    other_tiers = make_ladder(other_shop)
    member = spender(shop, "1500")
    body = {"tier": vip.pk, "mode": "fixed", "reason": "VIP guest"}
    body.update(change)
    if body["tier"] == "other-shop":
        body["tier"] = other_tiers[2].pk
    if body.get("until") == "past":
        body["until"] = (timezone.now() - datetime.timedelta(days=3)).date().isoformat()

    response = client_for(shop).put(
        f"/api/v1/members/{member.pk}/manual-tier", body, format="json"
    )

    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    with shop_scope(shop):
        state = MemberTier.objects.get(member=member)
        assert state.manual_tier_id is None
        assert state.tier.name == "Senior"
        assert TierChange.objects.filter(member=member).count() == 1


def test_an_unknown_and_another_shops_tier_answer_alike(shop, other_shop):
    make_ladder(shop)
    other_tiers = make_ladder(other_shop)
    member = spender(shop, "1500")
    api = client_for(shop)
    url = f"/api/v1/members/{member.pk}/manual-tier"

    unknown = api.put(url, {"tier": 999_999_999, "mode": "fixed", "reason": "x"},
                      format="json")  # fmt: skip
    foreign = api.put(url, {"tier": other_tiers[2].pk, "mode": "fixed", "reason": "x"},
                      format="json")  # fmt: skip

    assert unknown.status_code == foreign.status_code == 400
    assert unknown.json() == foreign.json()


def test_another_shops_member_is_404_everywhere(shop, other_shop):
    make_ladder(shop)
    _normal, _senior, other_vip, _top = make_ladder(other_shop)
    stranger = spender(other_shop, "1500")
    api = client_for(shop)

    history = api.get(f"/api/v1/members/{stranger.pk}/tier-history")
    put = api.put(
        f"/api/v1/members/{stranger.pk}/manual-tier",
        {"tier": other_vip.pk, "mode": "fixed", "reason": "x"},
        format="json",
    )
    delete = api.delete(f"/api/v1/members/{stranger.pk}/manual-tier")
    missing = api.get("/api/v1/members/999999999/tier-history")

    for response in (history, put, delete, missing):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    with shop_scope(other_shop):
        assert not MemberTier.objects.filter(manual_tier__isnull=False).exists()


def test_the_schema_documents_the_tier_endpoints_as_they_answer(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]

    manual = paths["/api/v1/members/{id}/manual-tier"]
    assert {"200", "400", "403", "404"} <= set(manual["put"]["responses"])
    assert {"200", "403", "404"} <= set(manual["delete"]["responses"])
    assert "200" in paths["/api/v1/members/{id}/tier-history"]["get"]["responses"]
    assert "200" in paths["/api/v1/tiers"]["get"]["responses"]
    member_list = paths["/api/v1/members"]["get"]["parameters"]
    assert "tier" in {p["name"] for p in member_list}
    assert "tier" in schema["components"]["schemas"]["Member"]["properties"]
