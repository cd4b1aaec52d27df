"""The tiers admin: the ladder and policy editors with the preview of a rule
change and both ways to apply it, refusals as form errors, recalculation with
its progress page, the member page's tier panel and manual tier form, the
member list's tier filter, roles and shop isolation."""

import datetime
import json
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from shops.models import Role
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory
from tests.members.factories import MemberFactory, PurchaseFactory
from tests.tiers.factories import make_ladder
from tiers.models import (
    MemberTier,
    Tier,
    TierChange,
    TierChangeReason,
    TierPolicy,
    TierRecalculation,
)
from tiers.services.evaluation import evaluate_member

pytestmark = pytest.mark.django_db

TIERS = reverse("admin:tiers_tier_changelist")
ADD_TIER = reverse("admin:tiers_tier_add")
MEMBERS = reverse("admin:members_member_changelist")
TIER_FIELDS = (
    "name",
    "rank",
    "colour",
    "description",
    "min_spend",
    "min_orders",
    "discount_percent",
    "points_multiplier",
    "birthday_points",
    "perks",
)
POLICY_FIELDS = ("basis", "window", "window_months", "downgrade", "grace_days")


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
        client.user = membership.user
        return client

    return as_role


def tier_url(tier) -> str:
    return reverse("admin:tiers_tier_change", args=[tier.pk])


def policy_url(shop) -> str:
    with shop_scope(shop):
        policy = TierPolicy.objects.get(shop=shop)
    return reverse("admin:tiers_tierpolicy_change", args=[policy.pk])


def manual_url(member) -> str:
    return reverse("admin:tiers_member_manual_tier", args=[member.pk])


def tier_data(tier, **changes) -> dict:
    data = {field: getattr(tier, field) for field in TIER_FIELDS}
    data["name_translations"] = json.dumps(tier.name_translations or {})
    if tier.free_shipping:
        data["free_shipping"] = "on"
    data.update(changes)
    return {k: "" if v is None else v for k, v in data.items()}


def policy_data(shop, **changes) -> dict:
    with shop_scope(shop):
        policy = TierPolicy.objects.get(shop=shop)
    data = {field: getattr(policy, field) for field in POLICY_FIELDS}
    data.update(changes)
    return data


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


def tier_name_of(shop, member) -> str:
    with shop_scope(shop):
        state = MemberTier.objects.filter(member=member).select_related("tier").first()
        return state.tier.name if state else Tier.objects.order_by("rank")[0].name


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


# The ladder page -------------------------------------------------------------


def test_the_ladder_lists_tiers_by_rank_with_members_per_tier(login, shop):
    _normal, senior, vip, _top = make_ladder(shop)
    for spent in ("0", "10", "1200", "1500", "6000"):
        spender(shop, spent)
    MemberFactory(shop=shop)  # never evaluated: no row, the entry tier

    response = login(Role.CLERK).get(TIERS)

    assert response.status_code == 200
    assert [t.name for t in response.context["cl"].result_list] == [
        "Normal", "Senior", "VIP", "Supreme",
    ]  # fmt: skip
    counts = {r["tier"].name: r["members"] for r in response.context["distribution"]}
    assert counts == {"Normal": 3, "Senior": 2, "VIP": 1, "Supreme": 0}
    page = response.content.decode()
    assert 'data-testid="tier-distribution"' in page
    assert senior.colour in page
    del vip


def test_a_change_that_keeps_the_rules_saves_at_once(login, shop):
    _normal, senior, *_ = make_ladder(shop)
    member = spender(shop, "1200")

    response = login().post(
        tier_url(senior),
        tier_data(senior, colour="#123456", discount_percent="7.50", _save="Save"),
    )

    assert response.status_code == 302, form_errors(response)
    with shop_scope(shop):
        senior.refresh_from_db()
    assert senior.colour == "#123456"
    assert senior.discount_percent == Decimal("7.50")
    assert tier_name_of(shop, member) == "Senior"


def test_new_thresholds_show_the_preview_first_and_save_nothing(login, shop):
    _normal, senior, *_ = make_ladder(shop)
    spender(shop, "1200")
    spender(shop, "800")
    spender(shop, "300")

    response = login().post(
        tier_url(senior), tier_data(senior, min_spend="500", _save="Save")
    )

    assert response.status_code == 200
    assert "admin/tiers/confirm_rule_change.html" in [
        t.name for t in response.templates
    ]
    assert response.context["preview"]["up"] == 1
    assert response.context["preview"]["down"] == 0
    page = response.content.decode()
    assert "next purchase" in page
    assert "Recalculate everyone now" in page
    with shop_scope(shop):
        senior.refresh_from_db()
    assert senior.min_spend == Decimal("1000.00")


def test_applying_at_the_next_purchase_saves_and_moves_nobody(login, shop):
    _normal, senior, *_ = make_ladder(shop)
    member = spender(shop, "800")

    response = login().post(
        tier_url(senior),
        tier_data(senior, min_spend="500", _save="Save", _apply_mode="next_purchase"),
    )

    assert response.status_code == 302
    with shop_scope(shop):
        senior.refresh_from_db()
        assert not TierRecalculation.objects.exists()
    assert senior.min_spend == Decimal("500.00")
    assert tier_name_of(shop, member) == "Normal"


def test_recalculating_now_saves_and_shows_the_progress(login, shop):
    from tiers.services.recalculation import recalculate_shop

    _normal, senior, *_ = make_ladder(shop)
    member = spender(shop, "800")
    client = login()

    response = client.post(
        tier_url(senior),
        tier_data(senior, min_spend="500", _save="Save", _apply_mode="now"),
    )

    with shop_scope(shop):
        senior.refresh_from_db()
        recalculation = TierRecalculation.objects.get()
    assert senior.min_spend == Decimal("500.00")
    assert recalculation.reason == TierChangeReason.RULE_CHANGE
    page_url = reverse("admin:tiers_tierrecalculation_change", args=[recalculation.pk])
    assert response.status_code == 302
    assert response["Location"] == page_url
    # Without a worker in the test, run what the queued task runs.
    with shop_scope(shop):
        if recalculation.status != "done":
            recalculate_shop(
                shop=shop,
                reason=TierChangeReason.RULE_CHANGE,
                recalculation=recalculation,
            )
    assert tier_name_of(shop, member) == "Senior"
    done = client.get(page_url)
    assert done.status_code == 200
    assert "1 members moved up" in done.content.decode()


def test_adding_a_tier_goes_through_the_preview(login, shop):
    make_ladder(shop)
    spender(shop, "30000")
    client = login()
    data = {
        "name": "Diamond",
        "name_translations": json.dumps({"zh-hans": "钻石会员"}),
        "rank": 4,
        "colour": "#00bcd4",
        "min_spend": "25000",
        "min_orders": 80,
        "discount_percent": "20",
        "points_multiplier": "3",
        "birthday_points": 0,
        "perks": "",
        "description": "",
        "_save": "Save",
    }

    preview = client.post(ADD_TIER, data)
    saved = client.post(ADD_TIER, {**data, "_apply_mode": "next_purchase"})

    assert preview.context["preview"]["up"] == 1
    assert saved.status_code == 302
    with shop_scope(shop):
        diamond = Tier.objects.get(name="Diamond")
    assert diamond.shop_id == shop.pk
    assert diamond.display_name("zh-hans") == "钻石会员"


@pytest.mark.parametrize(
    ("tier_index", "changes", "field"),
    [
        (1, {"rank": 2}, None),  # the same rank as VIP
        (1, {"min_spend": "6000"}, None),  # above VIP's 5000
        (2, {"min_spend": "900"}, None),  # below Senior's 1000
        (1, {"points_multiplier": "0"}, "points_multiplier"),
        (1, {"discount_percent": "-5"}, "discount_percent"),
        (1, {"discount_percent": "120"}, "discount_percent"),
        (1, {"min_spend": "-1"}, "min_spend"),
        (1, {"name": ""}, "name"),
        (1, {"name_translations": '["VIP"]'}, "name_translations"),
    ],
)
def test_a_ladder_that_cannot_work_is_refused_with_a_form_error(
    login, shop, tier_index, changes, field
):
    tiers = make_ladder(shop)
    tier = tiers[tier_index]
    before = {t.pk: (t.rank, t.min_spend, t.discount_percent) for t in tiers}

    for mode in (None, "now"):
        data = tier_data(tier, _save="Save", **changes)
        if mode:
            data["_apply_mode"] = mode
        response = login().post(tier_url(tier), data)

        assert response.status_code == 200
        errors = form_errors(response)
        assert errors
        if field is not None:
            assert field in errors
    with shop_scope(shop):
        after = {
            t.pk: (t.rank, t.min_spend, t.discount_percent) for t in Tier.objects.all()
        }
        assert not TierRecalculation.objects.exists()
    assert after == before


def test_the_same_rank_is_named_in_the_message(login, shop):
    _normal, senior, *_ = make_ladder(shop)

    response = login().post(tier_url(senior), tier_data(senior, rank=2, _save="Save"))

    messages = " ".join(str(m) for m in form_errors(response).values())
    assert "rank" in messages.lower()


# The policy editor ---------------------------------------------------------------


def test_the_policy_list_opens_the_shops_policy(login, shop):
    make_ladder(shop)

    response = login(Role.CLERK).get(reverse("admin:tiers_tierpolicy_changelist"))

    assert response.status_code == 302
    assert response["Location"] == policy_url(shop)


def test_a_policy_change_shows_the_preview_then_applies(login, shop):
    make_ladder(shop)
    member = spender(shop, "300", orders=6)
    client = login()

    preview = client.post(policy_url(shop), policy_data(shop, basis="either"))
    saved = client.post(
        policy_url(shop),
        policy_data(shop, basis="either", _apply_mode="next_purchase"),
    )

    assert preview.status_code == 200
    assert preview.context["preview"]["up"] == 1
    assert saved.status_code == 302
    with shop_scope(shop):
        assert TierPolicy.objects.get().basis == "either"
    assert tier_name_of(shop, member) == "Normal"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"window": "rolling", "window_months": 0}, "window_months"),
        ({"basis": "sometimes"}, "basis"),
        ({"grace_days": -1}, "grace_days"),
    ],
)
def test_a_bad_policy_is_refused_with_a_form_error(login, shop, changes, field):
    make_ladder(shop)

    response = login().post(
        policy_url(shop), policy_data(shop, _apply_mode="now", **changes)
    )

    assert response.status_code == 200
    assert field in form_errors(response)
    with shop_scope(shop):
        policy = TierPolicy.objects.get()
        assert not TierRecalculation.objects.exists()
    assert (policy.basis, policy.window, policy.grace_days) == ("spend", "lifetime", 0)


def test_a_policy_that_breaks_the_ladder_is_refused(login, shop):
    # Orders do not rise with rank: fine on spend, refused on orders.
    make_ladder(shop, ("Normal", "0", 0), ("Senior", "1000", 5), ("VIP", "5000", 5))

    response = login().post(policy_url(shop), policy_data(shop, basis="orders"))

    assert response.status_code == 200
    assert form_errors(response)
    with shop_scope(shop):
        assert TierPolicy.objects.get().basis == "spend"


# Recalculate now -------------------------------------------------------------------


def test_recalculate_now_asks_then_starts_and_shows_progress(login, shop):
    make_ladder(shop)
    client = login()
    url = reverse("admin:tiers_tier_recalculate")

    asked = client.get(url)
    started = client.post(url)

    assert asked.status_code == 200
    with shop_scope(shop):
        recalculation = TierRecalculation.objects.get()
    assert recalculation.reason == TierChangeReason.RECALCULATION
    assert started.status_code == 302
    assert started["Location"] == reverse(
        "admin:tiers_tierrecalculation_change", args=[recalculation.pk]
    )
    status = client.get(
        reverse("admin:tiers_tierrecalculation_status", args=[recalculation.pk])
    )
    assert status.status_code == 200
    assert 'id="recalculation-progress"' in status.content.decode()


# The member page ----------------------------------------------------------------


def test_the_member_page_shows_the_tier_panel_with_progress_and_history(login, shop):
    make_ladder(shop)
    member = spender(shop, "1200", orders=3)

    response = login(Role.CLERK).get(
        reverse("admin:members_member_change", args=[member.pk])
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="tier-panel"' in page
    assert 'data-testid="current-tier"' in page
    assert "Senior" in page
    assert 'data-testid="tier-progress"' in page
    assert 'data-testid="tier-change"' in page
    # Clerks see the tier; only managers and owners set it.
    assert 'data-testid="manual-tier-form"' not in page


def test_a_manager_sets_and_ends_a_manual_tier(login, shop):
    _normal, _senior, vip, _top = make_ladder(shop)
    member = spender(shop, "1200")
    client = login(Role.MANAGER)
    member_page = reverse("admin:members_member_change", args=[member.pk])
    assert 'data-testid="manual-tier-form"' in client.get(member_page).content.decode()
    until = (timezone.now() + datetime.timedelta(days=60)).date()

    response = client.post(
        manual_url(member),
        {"action": "set", "tier": vip.pk, "mode": "fixed", "until": until.isoformat(),
         "reason": "Opening-day guest"},
    )  # fmt: skip

    assert response.status_code == 302
    assert response["Location"] == member_page
    with shop_scope(shop):
        state = MemberTier.objects.get(member=member)
        change = TierChange.objects.filter(member=member).first()
    assert (state.tier_id, state.manual_tier_id, state.manual_mode) == (
        vip.pk, vip.pk, "fixed",
    )  # fmt: skip
    assert state.manual_until == until
    assert state.manual_by == client.user
    assert change.reason == "manual"
    assert change.acting_user == client.user
    assert "Opening-day guest" in client.get(member_page).content.decode()

    ended = client.post(manual_url(member), {"action": "clear"})

    assert ended.status_code == 302
    with shop_scope(shop):
        state.refresh_from_db()
    assert state.manual_tier_id is None
    assert state.tier.name == "Senior"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"mode": "forever"}, "mode"),
        ({"until": "past"}, "until"),
        ({"tier": "other-shop"}, "tier"),
    ],
)
def test_a_bad_manual_tier_is_shown_on_the_form(
    login, shop, other_shop, changes, field
):
    _normal, _senior, vip, _top = make_ladder(shop)
    other_vip = make_ladder(other_shop)[2]
    member = spender(shop, "1200")
    data = {"action": "set", "tier": vip.pk, "mode": "fixed", "reason": "Guest"}
    data.update(changes)
    if data["tier"] == "other-shop":
        data["tier"] = other_vip.pk
    if data.get("until") == "past":
        data["until"] = (timezone.now() - datetime.timedelta(days=5)).date()

    response = login().post(manual_url(member), data)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    with shop_scope(shop):
        assert MemberTier.objects.get(member=member).manual_tier_id is None


def test_the_member_list_filters_by_tier(login, shop):
    normal, senior, vip, _top = make_ladder(shop)
    newcomer = spender(shop, "0")
    regular = spender(shop, "1500")
    big = spender(shop, "6000")
    client = login(Role.CLERK)

    def listed(tier):
        response = client.get(MEMBERS, {"tier": tier.pk})
        assert response.status_code == 200
        return {m.pk for m in response.context["cl"].result_list}

    assert listed(senior) == {regular.pk}
    assert listed(vip) == {big.pk}
    assert listed(normal) == {newcomer.pk}


# Roles and shops ------------------------------------------------------------------


def test_a_clerk_sees_the_ladder_but_cannot_change_it(login, shop):
    _normal, senior, *_ = make_ladder(shop)
    member = spender(shop, "1200")
    client = login(Role.CLERK)

    view = client.get(tier_url(senior))
    change = client.post(
        tier_url(senior),
        tier_data(senior, min_spend="10", _save="Save", _apply_mode="now"),
    )
    policy = client.post(policy_url(shop), policy_data(shop, basis="orders"))
    recalculate = client.post(reverse("admin:tiers_tier_recalculate"))
    manual = client.post(
        manual_url(member),
        {"action": "set", "tier": senior.pk, "mode": "fixed", "reason": "x"},
    )
    add = client.get(ADD_TIER)

    assert view.status_code == 200
    assert {change.status_code, policy.status_code, manual.status_code} == {403}
    assert recalculate.status_code in (302, 403)
    assert add.status_code == 403
    with shop_scope(shop):
        senior.refresh_from_db()
        assert TierPolicy.objects.get().basis == "spend"
        assert not TierRecalculation.objects.exists()
        assert MemberTier.objects.get(member=member).manual_tier_id is None
    assert senior.min_spend == Decimal("1000.00")


def test_another_shops_tiers_are_not_shown_and_are_404(login, shop, other_shop):
    make_ladder(shop)
    other_tiers = make_ladder(other_shop)
    stranger = spender(other_shop, "1500")
    with shop_scope(other_shop):
        other_recalculation = TierRecalculation.objects.create(
            shop=other_shop, reason="recalculation", as_of=datetime.date(2026, 1, 1)
        )
    client = login(Role.OWNER)

    listed = client.get(TIERS)
    shown = client.get(tier_url(other_tiers[1]))
    changed = client.post(
        tier_url(other_tiers[1]),
        tier_data(other_tiers[1], min_spend="10", _save="Save", _apply_mode="now"),
    )
    manual = client.post(
        manual_url(stranger),
        {"action": "set", "tier": other_tiers[2].pk, "mode": "fixed", "reason": "x"},
    )
    progress = client.get(
        reverse("admin:tiers_tierrecalculation_change", args=[other_recalculation.pk])
    )

    assert {t.shop_id for t in listed.context["cl"].result_list} == {shop.pk}
    assert {r["tier"].shop_id for r in listed.context["distribution"]} == {shop.pk}
    for response in (shown, changed, manual, progress):
        assert response.status_code == 404
    with shop_scope(other_shop):
        assert Tier.objects.get(pk=other_tiers[1].pk).min_spend == Decimal("1000.00")
        assert MemberTier.objects.get(member=stranger).manual_tier_id is None
    assert Member.objects.unscoped().filter(pk=stranger.pk).exists()


def test_only_an_owner_removes_a_tier_and_only_one_nobody_holds(login, shop):
    normal, senior, _vip, top = make_ladder(shop)
    spender(shop, "1200")

    def delete(client, tier):
        url = reverse("admin:tiers_tier_delete", args=[tier.pk])
        return client.post(url, {"post": "yes"})

    as_manager = delete(login(Role.MANAGER), top)
    owner = login(Role.OWNER)
    held = delete(owner, senior)
    entry = delete(owner, normal)
    unused = delete(owner, top)

    assert as_manager.status_code == 403
    assert held.status_code == 403
    assert entry.status_code == 403
    assert unused.status_code == 302
    with shop_scope(shop):
        assert list(Tier.objects.values_list("name", flat=True)) == [
            "Normal", "Senior", "VIP",
        ]  # fmt: skip
