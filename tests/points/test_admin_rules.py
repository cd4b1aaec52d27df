"""The rules editor (points policy, earning rules) and the rewards catalogue in
the admin: validation, roles and shop isolation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from points.models import EarningRule, PointsPolicy, Redemption, Reward
from points.services.ledger import credit
from points.services.rewards import redeem_reward
from shops.models import Role
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, StoreFactory
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db

POLICY_ADD = reverse("admin:points_pointspolicy_add")
RULE_ADD = reverse("admin:points_earningrule_add")
REWARD_ADD = reverse("admin:points_reward_add")
REWARDS = reverse("admin:points_reward_changelist")

GOOD_POLICY = {
    "expiry": "end_of_next_year",
    "expiry_months": "12",
    "pending_days": "7",
    "refund_policy": "take_remaining",
    "daily_cap": "",
    "cash_points": "20",
    "cash_value": "1.00",
    "cash_min_points": "100",
    "cash_max_share": "50",
}


@pytest.fixture(autouse=True)
def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


@pytest.fixture
def login(client, shop):
    def as_role(role=Role.MANAGER, target_shop=None):
        membership = MembershipFactory(
            shop=target_shop or shop, role=role, user__is_staff=True
        )
        client.force_login(membership.user)
        return client

    return as_role


def errors(response) -> dict:
    return response.context["adminform"].form.errors


def policies(shop):
    return PointsPolicy.objects.unscoped().filter(shop=shop)


def test_a_manager_saves_the_policy_once_per_shop(login, shop):
    client = login(Role.MANAGER)

    response = client.post(POLICY_ADD, GOOD_POLICY)

    assert response.status_code == 302
    policy = policies(shop).get()
    assert (policy.cash_points, policy.cash_value, policy.pending_days) == (
        20,
        Decimal("1.00"),
        7,
    )
    # One policy per shop: it is changed from now on, not added again.
    assert client.get(POLICY_ADD).status_code == 403
    change = reverse("admin:points_pointspolicy_change", args=[policy.pk])
    client.post(change, {**GOOD_POLICY, "cash_max_share": "30"})
    policy.refresh_from_db()
    assert policy.cash_max_share == Decimal(30)


def test_the_policy_list_opens_the_shops_one_policy(login, shop):
    client = login(Role.MANAGER)
    policies_url = reverse("admin:points_pointspolicy_changelist")

    first = client.get(policies_url)
    client.post(POLICY_ADD, GOOD_POLICY)
    then = client.get(policies_url)

    assert first["Location"] == POLICY_ADD
    policy = policies(shop).get()
    assert then["Location"] == reverse(
        "admin:points_pointspolicy_change", args=[policy.pk]
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pending_days": "-1"}, "pending_days"),
        ({"daily_cap": "-5"}, "daily_cap"),
        ({"cash_points": "0"}, "cash_points"),
        ({"cash_value": "0"}, "cash_value"),
        ({"cash_value": "-1.00"}, "cash_value"),
        ({"cash_min_points": "-1"}, "cash_min_points"),
        ({"cash_max_share": "100.01"}, "cash_max_share"),
        ({"cash_max_share": "150"}, "cash_max_share"),
        ({"cash_max_share": "-1"}, "cash_max_share"),
        ({"expiry": "months", "expiry_months": "0"}, "expiry_months"),
        ({"expiry": "months", "expiry_months": ""}, "expiry_months"),
        ({"expiry": "someday"}, "expiry"),
    ],
)
def test_a_bad_policy_is_refused_with_a_form_error(login, shop, change, field):
    response = login(Role.OWNER).post(POLICY_ADD, {**GOOD_POLICY, **change})

    assert response.status_code == 200
    assert field in errors(response)
    assert not policies(shop).exists()


def test_the_policy_form_explains_its_fields(login, shop):
    html = login(Role.MANAGER).get(POLICY_ADD).content.decode()

    assert "this many points" in html
    assert "0 to 100" in html
    assert "return window" in html


def test_a_clerk_reads_the_rules_but_does_not_change_them(login, shop):
    with shop_scope(shop):
        rule = EarningRule.objects.create(shop=shop, kind="registration", points=100)
    client = login(Role.CLERK)
    change = reverse("admin:points_earningrule_change", args=[rule.pk])

    assert client.get(POLICY_ADD).status_code == 403
    assert client.post(RULE_ADD, {"kind": "birthday", "points": "5"}).status_code == 403
    assert client.get(change).status_code == 200
    assert (
        client.post(change, {"kind": "registration", "points": "999"}).status_code
        == 403
    )
    rule.refresh_from_db()
    assert rule.points == 100


def rule_data(**values):
    data = {
        "kind": "purchase",
        "is_active": "on",
        "points_per_unit": "1.00",
        "rounding": "down",
        "excluded_skus": "",
        "points": "0",
        "daily_cap": "",
    }
    data.update(values)
    return {k: v for k, v in data.items() if v is not None}


def test_a_manager_adds_earning_rules_with_excluded_stores(login, shop, other_shop):
    store = StoreFactory(shop=shop)
    client = login(Role.MANAGER)

    response = client.post(
        RULE_ADD, rule_data(points_per_unit="2.50", excluded_stores=[store.pk])
    )
    client.post(RULE_ADD, rule_data(kind="birthday", points="300"))

    assert response.status_code == 302
    rules = {r.kind: r for r in EarningRule.objects.unscoped().filter(shop=shop)}
    assert rules["purchase"].points_per_unit == Decimal("2.50")
    with shop_scope(shop):
        assert list(rules["purchase"].excluded_stores.all()) == [store]
    assert rules["birthday"].points == 300


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"points_per_unit": "-1"}, "points_per_unit"),
        ({"points_per_unit": "0"}, "points_per_unit"),
        ({"kind": "birthday", "points": "0"}, "points"),
        ({"kind": "referral", "points": "-200"}, "points"),
        ({"daily_cap": "-1"}, "daily_cap"),
        ({"kind": "lottery"}, "kind"),
    ],
)
def test_a_bad_earning_rule_is_refused_with_a_form_error(login, shop, values, field):
    response = login(Role.MANAGER).post(RULE_ADD, rule_data(**values))

    assert response.status_code == 200
    assert field in errors(response)
    assert not EarningRule.objects.unscoped().filter(shop=shop).exists()


def test_one_rule_of_each_kind_and_only_this_shops_stores(login, shop, other_shop):
    with shop_scope(shop):
        EarningRule.objects.create(shop=shop, kind="purchase")
    theirs = StoreFactory(shop=other_shop)
    client = login(Role.MANAGER)

    twice = client.post(RULE_ADD, rule_data())
    their_store = client.post(
        RULE_ADD, rule_data(kind="birthday", points="10", excluded_stores=[theirs.pk])
    )

    assert "__all__" in errors(twice) or "kind" in errors(twice)
    assert "excluded_stores" in errors(their_store)
    assert EarningRule.objects.unscoped().filter(shop=shop).count() == 1


# Rewards ------------------------------------------------------------------------


def reward_data(**values):
    data = {
        "name": "Porcelain gaiwan",
        "description": "",
        "points_price": "2400",
        "stock": "12",
        "per_member_limit": "1",
        "is_active": "on",
    }
    data.update(values)
    return data


def test_the_catalogue_lists_stock_and_redemptions(login, shop):
    member = MemberFactory(shop=shop)
    with shop_scope(shop):
        credit(member=member, points=1000, kind="earn", source="campaign")
        cup = Reward.objects.create(shop=shop, name="Cup", points_price=100, stock=9)
        Reward.objects.create(shop=shop, name="Tin", points_price=200)
        redeem_reward(member=member, reward=cup, quantity=2)
        redeem_reward(member=member, reward=cup)
    client = login(Role.CLERK)

    response = client.get(REWARDS)

    rows = {r.name: r for r in response.context["cl"].result_list}
    assert rows["Cup"].redeemed == 2  # redemptions, not items
    assert rows["Cup"].stock == 6
    html = response.content.decode()
    assert "unlimited" in html
    assert Redemption.objects.unscoped().count() == 2


def test_a_manager_adds_a_reward_and_bad_ones_are_refused(login, shop):
    client = login(Role.MANAGER)

    good = client.post(REWARD_ADD, reward_data())
    bad_price = client.post(REWARD_ADD, reward_data(name="Free", points_price="0"))
    bad_stock = client.post(REWARD_ADD, reward_data(name="Minus", stock="-1"))
    bad_window = client.post(
        REWARD_ADD,
        reward_data(
            name="Backwards",
            available_from_0="2027-02-01",
            available_from_1="00:00:00",
            available_until_0="2027-01-01",
            available_until_1="00:00:00",
        ),
    )

    assert good.status_code == 302
    assert "points_price" in errors(bad_price)
    assert "stock" in errors(bad_stock)
    assert "available_until" in errors(bad_window)
    assert list(
        Reward.objects.unscoped().filter(shop=shop).values_list("name", flat=True)
    ) == ["Porcelain gaiwan"]


def test_a_clerk_cannot_change_the_catalogue(login, shop):
    client = login(Role.CLERK)

    assert client.post(REWARD_ADD, reward_data()).status_code == 403
    assert not Reward.objects.unscoped().exists()
