"""Rewards and redemptions through the API: the catalogue (with what a member
can redeem and why not), redeeming at the counter, replays, every refusal
(nothing changed), cancelling (points back with their expiry, stock back),
and shop isolation."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from points.models import (
    EntryKind,
    EntrySource,
    PointsAccount,
    PointsLot,
    Redemption,
    Reward,
)
from points.services import ledger
from shops.models import ApiKeyScope
from shops.tenancy import shop_scope
from tests.factories import make_api_key
from tests.members.factories import MemberFactory
from tests.points.factories import PointsPolicyFactory
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def client_for(shop, scope=ApiKeyScope.WRITE) -> APIClient:
    _key, plain = make_api_key(shop=shop, scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


@pytest.fixture
def api(shop):
    PointsPolicyFactory(shop=shop, expiry="never")
    return client_for(shop)


def reward(shop, **fields):
    fields = {"name": "Tea cup", "points_price": 100, **fields}
    return Reward.objects.unscoped().create(shop=shop, **fields)


def give(member, points, *, expires_at=None):
    with shop_scope(member.shop):
        return ledger.credit(
            member=member,
            points=points,
            kind=EntryKind.EARN,
            source=EntrySource.CAMPAIGN,
            reason="gift",
            expires_at=expires_at,
        )


def balance(member):
    with shop_scope(member.shop):
        account = PointsAccount.objects.filter(member=member).first()
    return account.balance if account else 0


def stock(item):
    return Reward.objects.unscoped().get(pk=item.pk).stock


def redemptions(shop):
    with shop_scope(shop):
        return list(Redemption.objects.all())


def redeem(api, member, body, key="r-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(
        f"/api/v1/members/{member.pk}/redemptions", body, format="json", **headers
    )


# ----------------------------------------------------------------- catalogue


def test_the_catalogue_lists_visible_rewards_cheapest_first(api, shop, other_shop):
    later = timezone.now() + timedelta(days=3)
    mug = reward(shop, name="Mug", points_price=300)
    cup = reward(shop, name="Cup", points_price=100)
    reward(shop, name="Hidden", is_active=False)
    reward(shop, name="Coming", visible_from=later)
    reward(other_shop, name="Elsewhere")

    response = api.get("/api/v1/rewards")

    assert response.status_code == 200, response.json()
    assert [r["id"] for r in response.json()] == [cup.pk, mug.pk]
    assert response.json()[0]["availability"] is None


def test_with_a_member_the_catalogue_says_what_they_can_redeem(api, shop, member):
    give(member, 150)
    cup = reward(shop, name="Cup", points_price=100)
    mug = reward(shop, name="Mug", points_price=300)
    gone = reward(shop, name="Gone", points_price=10, stock=0)

    body = api.get(f"/api/v1/rewards?member={member.pk}").json()
    by_id = {r["id"]: r["availability"] for r in body}

    assert by_id[cup.pk]["redeemable"] is True
    assert by_id[mug.pk] == {
        "redeemable": False,
        "reason": "insufficient_points",
        "message": by_id[mug.pk]["message"],
    }
    assert by_id[gone.pk]["reason"] == "out_of_stock"


def test_one_reward_and_its_availability(api, shop, member):
    cup = reward(shop, stock=5)

    plain = api.get(f"/api/v1/rewards/{cup.pk}")
    for_member = api.get(f"/api/v1/rewards/{cup.pk}?member={member.pk}")

    assert plain.status_code == 200
    assert plain.json()["stock"] == 5
    assert for_member.json()["availability"]["reason"] == "insufficient_points"


def test_another_shops_reward_or_member_is_a_404(api, shop, other_shop, member):
    theirs = reward(other_shop)
    stranger = MemberFactory(shop=other_shop)

    assert api.get(f"/api/v1/rewards/{theirs.pk}").status_code == 404
    assert api.get(f"/api/v1/rewards?member={stranger.pk}").status_code == 404
    assert api.get("/api/v1/rewards?member=abc").status_code == 400


# ----------------------------------------------------------------- redeeming


def test_redeeming_takes_the_points_and_the_stock(api, shop, member):
    give(member, 250)
    cup = reward(shop, stock=3)

    response = redeem(api, member, {"reward": cup.pk, "quantity": 2})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "reward"
    assert body["reward_name"] == "Tea cup"
    assert body["points"] == 200
    assert body["status"] == "completed"
    assert body["account"]["balance"] == 50
    assert balance(member) == 50
    assert stock(cup) == 1

    listed = api.get(f"/api/v1/members/{member.pk}/redemptions").json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]


def test_a_replayed_redemption_debits_once(api, shop, member):
    give(member, 500)
    cup = reward(shop, stock=10)

    first = redeem(api, member, {"reward": cup.pk}, key="till-7")
    again = redeem(api, member, {"reward": cup.pk}, key="till-7")
    other = redeem(api, member, {"reward": cup.pk, "quantity": 2}, key="till-7")

    assert again.status_code == 201
    assert again.json() == first.json()
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert set(other.json()["error"]) == {"code", "message", "fields"}
    assert balance(member) == 400
    assert stock(cup) == 9
    assert len(redemptions(shop)) == 1


def test_redeeming_needs_a_key_and_a_write_key(api, shop, member):
    give(member, 500)
    cup = reward(shop)
    reader = client_for(shop, scope=ApiKeyScope.READ)

    without_key = redeem(api, member, {"reward": cup.pk}, key=None)
    read_only = redeem(reader, member, {"reward": cup.pk})

    assert without_key.status_code == 400
    assert read_only.status_code == 403
    assert balance(member) == 500
    assert redemptions(shop) == []


def _refusals(shop, member):
    past = timezone.now() - timedelta(days=1)
    vip = Tier.objects.unscoped().create(shop=shop, name="VIP", rank=1)
    Tier.objects.unscoped().create(shop=shop, name="Member", rank=0)
    vip_only = reward(shop, name="VIP lounge")
    with shop_scope(shop):
        vip_only.tiers.set([vip])
    return {
        "insufficient_points": reward(shop, points_price=10_000),
        "out_of_stock": reward(shop, stock=0),
        "reward_not_available": reward(shop, available_until=past),
        "tier_not_allowed": vip_only,
    }


@pytest.mark.parametrize(
    "code",
    ["insufficient_points", "out_of_stock", "reward_not_available", "tier_not_allowed"],
)
def test_refused_redemptions_are_409_and_change_nothing(api, shop, member, code):
    give(member, 500)
    item = _refusals(shop, member)[code]
    before = stock(item)

    response = redeem(api, member, {"reward": item.pk})

    assert response.status_code == 409, response.json()
    assert response.json()["error"]["code"] == code
    assert balance(member) == 500
    assert stock(item) == before
    assert redemptions(shop) == []


def test_beyond_the_per_member_limit_is_a_409(api, shop, member):
    give(member, 500)
    cup = reward(shop, per_member_limit=1)
    assert redeem(api, member, {"reward": cup.pk}, key="a").status_code == 201

    response = redeem(api, member, {"reward": cup.pk}, key="b")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "limit_reached"
    assert balance(member) == 400


@pytest.mark.parametrize("quantity", [0, -1, 101, "two"])
def test_a_bad_quantity_is_a_400(api, shop, member, quantity):
    give(member, 500)
    cup = reward(shop)

    response = redeem(api, member, {"reward": cup.pk, "quantity": quantity})

    assert response.status_code == 400, response.json()
    assert "quantity" in response.json()["error"]["fields"]
    assert balance(member) == 500


def test_an_unknown_or_another_shops_reward_is_a_404(api, shop, other_shop, member):
    give(member, 500)
    theirs = reward(other_shop)

    unknown = redeem(api, member, {"reward": theirs.pk + 1000}, key="a")
    foreign = redeem(api, member, {"reward": theirs.pk}, key="b")

    assert unknown.status_code == 404
    assert foreign.status_code == 404
    assert balance(member) == 500
    assert stock(theirs) is None


# ----------------------------------------------------------------- cancelling


def test_cancelling_returns_points_with_their_expiry_and_the_stock(api, shop, member):
    expiry = timezone.now() + timedelta(days=20)
    give(member, 100, expires_at=expiry)
    cup = reward(shop, stock=1)
    redemption = redeem(api, member, {"reward": cup.pk}).json()

    response = api.post(
        f"/api/v1/redemptions/{redemption['id']}/cancel",
        {"reason": "changed mind"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "cancelled"
    assert response.json()["account"]["balance"] == 100
    assert stock(cup) == 1
    with shop_scope(shop):
        open_lots = list(PointsLot.objects.filter(remaining__gt=0))
    assert [(lot.remaining, lot.expires_at) for lot in open_lots] == [(100, expiry)]

    again = api.post(f"/api/v1/redemptions/{redemption['id']}/cancel")
    assert again.status_code == 200
    assert balance(member) == 100


def test_another_shops_redemption_is_a_404(api, shop, other_shop):
    stranger = MemberFactory(shop=other_shop)
    give(stranger, 100)
    theirs = reward(other_shop)
    redemption = redeem(client_for(other_shop), stranger, {"reward": theirs.pk})

    read = api.get(f"/api/v1/redemptions/{redemption.json()['id']}")
    cancel = api.post(f"/api/v1/redemptions/{redemption.json()['id']}/cancel")

    assert read.status_code == 404
    assert cancel.status_code == 404
    assert balance(stranger) == 0
