"""The points admin: the member page's points panel, adjustment (managers and
owners) and counter redemption (everyone) forms, redemptions and their
cancelling, the read-only entries list, and shop isolation."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from points.models import (
    EntryKind,
    EntrySource,
    PointsAccount,
    PointsEntry,
    PointsLot,
    Redemption,
    RedemptionStatus,
    Reward,
)
from points.services.ledger import credit
from points.services.rewards import redeem_reward
from shops.models import Role, StaffMembership
from shops.services.tenants import update_staff_member
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, StoreFactory
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db

ENTRIES = reverse("admin:points_pointsentry_changelist")
REDEMPTIONS = reverse("admin:points_redemption_changelist")


def member_page(member):
    return reverse("admin:members_member_change", args=[member.pk])


def adjust_url(member):
    return reverse("admin:points_member_adjust", args=[member.pk])


def redeem_url(member):
    return reverse("admin:points_member_redeem", args=[member.pk])


@pytest.fixture(autouse=True)
def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


@pytest.fixture
def login(client, shop):
    def as_role(role=Role.MANAGER, target_shop=None):
        membership = MembershipFactory(
            shop=target_shop or shop,
            role=role,
            user__is_staff=True,
            user__first_name="Lin",
        )
        client.force_login(membership.user)
        client.user = membership.user
        return client

    return as_role


def earn(member, points, *, days=None, pending_days=0, reason="Welcome gift"):
    """Credit `points` expiring in `days` days (None: never)."""
    now = timezone.now()
    with shop_scope(member.shop):
        return credit(
            member=member,
            points=points,
            kind=EntryKind.EARN,
            source=EntrySource.CAMPAIGN,
            reason=reason,
            expires_at=now + datetime.timedelta(days=days) if days else None,
            available_at=now + datetime.timedelta(days=pending_days)
            if pending_days
            else None,
        )


def account(member) -> PointsAccount | None:
    return PointsAccount.objects.unscoped().filter(member=member).first()


def balance(member) -> int:
    found = account(member)
    return found.balance if found else 0


def entry_count(member) -> int:
    return PointsEntry.objects.unscoped().filter(account__member=member).count()


def make_reward(shop, **values):
    values.setdefault("name", "Gaiwan")
    values.setdefault("points_price", 100)
    return Reward.objects.unscoped().create(shop=shop, **values)


def form_errors(response) -> dict:
    return response.context["form"].errors


# The panel ------------------------------------------------------------------


def test_the_panel_shows_figures_lots_and_entries_with_reasons_and_who(
    login, shop, member
):
    earn(member, 120, days=10, reason="Spring campaign")
    earn(member, 80, days=400)
    earn(member, 30, pending_days=7, reason="Order 77")
    client = login(Role.MANAGER)
    with shop_scope(shop):
        from points.services.ledger import adjust

        adjust(member=member, points=-20, reason="Broken cup", acting_user=client.user)

    response = client.get(member_page(member))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="points-panel"' in html
    assert 'data-testid="points-balance">210<' in html
    assert 'data-testid="points-spendable">180<' in html
    assert 'data-testid="points-pending">30<' in html
    # 120 expiring in ten days, less the 20 the adjustment took from it first.
    assert 'data-testid="points-expiring">100<' in html
    assert html.count('data-testid="points-lot"') == 3
    assert html.count('data-testid="points-entry"') == 4
    assert "Spring campaign" in html
    assert "Broken cup" in html
    assert "Lin" in html  # who adjusted
    assert f"account__member__id__exact={member.pk}" in html
    assert 'data-testid="adjust-form"' in html
    assert 'data-testid="redeem-form"' in html


def test_a_clerk_sees_the_panel_without_the_adjustment_form(login, shop, member):
    earn(member, 50)

    html = login(Role.CLERK).get(member_page(member)).content.decode()

    assert 'data-testid="points-balance">50<' in html
    assert 'data-testid="redeem-form"' in html
    assert 'data-testid="adjust-form"' not in html


def test_the_all_entries_link_lists_this_members_entries_only(login, shop, member):
    other = MemberFactory(shop=shop)
    earn(member, 50, reason="Mine")
    earn(other, 70, reason="Theirs")

    response = login(Role.CLERK).get(ENTRIES, {"account__member__id__exact": member.pk})

    assert response.status_code == 200
    assert [e.reason for e in response.context["cl"].result_list] == ["Mine"]


def test_the_entries_list_searches_by_member_phone_and_code(login, shop, member):
    other = MemberFactory(shop=shop)
    earn(member, 50, reason="Mine")
    earn(other, 70, reason="Theirs")
    client = login(Role.CLERK)

    for query in (member.phone, member.member_code):
        response = client.get(ENTRIES, {"q": query})
        assert [e.reason for e in response.context["cl"].result_list] == ["Mine"]
    by_kind = client.get(ENTRIES, {"kind": "earn", "source": "campaign"})
    assert len(by_kind.context["cl"].result_list) == 2


# Adjustments ------------------------------------------------------------------


def test_a_manager_adjusts_points_with_a_reason(login, shop, member):
    earn(member, 100)
    client = login(Role.MANAGER)

    response = client.post(
        adjust_url(member), {"points": "-40", "reason": "Returned a gift box"}
    )

    assert response.status_code == 302
    assert response["Location"] == member_page(member)
    assert balance(member) == 60
    entry = PointsEntry.objects.unscoped().filter(account__member=member).first()
    assert (entry.kind, entry.points, entry.reason) == (
        "adjust",
        -40,
        "Returned a gift box",
    )
    assert entry.acting_user == client.user

    client.post(adjust_url(member), {"points": "25", "reason": "Goodwill"})
    assert balance(member) == 85


def test_the_same_adjustment_form_sent_twice_writes_once(login, shop, member):
    client = login(Role.OWNER)
    data = {"points": "30", "reason": "Birthday gift", "once": "a1b2c3"}

    client.post(adjust_url(member), data)
    client.post(adjust_url(member), data)

    assert balance(member) == 30
    assert entry_count(member) == 1


def test_a_clerk_may_not_adjust_points(login, shop, member):
    earn(member, 100)
    client = login(Role.CLERK)

    assert client.get(adjust_url(member)).status_code == 403
    response = client.post(adjust_url(member), {"points": "500", "reason": "Me"})

    assert response.status_code == 403
    assert balance(member) == 100
    assert entry_count(member) == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"points": "0", "reason": "Nothing"}, "points"),
        ({"points": "", "reason": "Nothing"}, "points"),
        ({"points": "1.5", "reason": "Half"}, "points"),
        ({"points": "10", "reason": ""}, "reason"),
        ({"points": "10", "reason": "   "}, "reason"),
        ({"points": "-101", "reason": "Too much"}, "__all__"),
    ],
)
def test_a_bad_adjustment_is_a_form_error_and_changes_nothing(
    login, shop, member, data, field
):
    earn(member, 100)
    client = login(Role.MANAGER)

    response = client.post(adjust_url(member), data)

    assert response.status_code == 200
    assert field in form_errors(response)
    assert balance(member) == 100
    assert entry_count(member) == 1


def test_taking_more_than_the_spendable_points_says_so(login, shop, member):
    earn(member, 100)
    earn(member, 50, pending_days=5)  # not spendable yet

    response = login(Role.MANAGER).post(
        adjust_url(member), {"points": "-120", "reason": "Too much"}
    )

    assert "not have enough points" in str(form_errors(response))
    assert balance(member) == 150


# Redeeming at the counter ---------------------------------------------------------


def test_a_clerk_redeems_a_reward_at_the_counter(login, shop, member):
    earn(member, 500)
    reward = make_reward(shop, points_price=150, stock=5)
    client = login(Role.CLERK)

    response = client.post(redeem_url(member), {"reward": reward.pk, "quantity": "2"})

    assert response.status_code == 302
    assert balance(member) == 200
    redemption = Redemption.objects.unscoped().get(member=member)
    assert (redemption.quantity, redemption.points) == (2, 300)
    assert redemption.acting_user == client.user
    reward.refresh_from_db()
    assert reward.stock == 3


def test_a_clerk_limited_to_a_store_redeems_in_that_store(login, shop, member):
    earn(member, 500)
    store = StoreFactory(shop=shop)
    reward = make_reward(shop)
    client = login(Role.CLERK)
    with shop_scope(shop):
        membership = StaffMembership.objects.get(user=client.user)
        update_staff_member(
            membership=membership, role=Role.CLERK, stores=[store], is_active=True
        )

    elsewhere = StoreFactory(shop=shop)

    page = client.get(redeem_url(member))
    refused = client.post(
        redeem_url(member),
        {"reward": reward.pk, "quantity": "1", "store": elsewhere.pk},
    )
    client.post(
        redeem_url(member), {"reward": reward.pk, "quantity": "1", "store": store.pk}
    )

    assert list(page.context["form"].fields["store"].queryset) == [store]
    assert "store" in form_errors(refused)
    assert Redemption.objects.unscoped().get(member=member).store == store


def _refusal_cases(shop, member):
    now = timezone.now()
    return {
        "insufficient": (make_reward(shop, name="Pot", points_price=1000), "1"),
        "out_of_stock": (make_reward(shop, name="Cup", stock=0), "1"),
        "beyond_stock": (make_reward(shop, name="Tin", stock=2), "3"),
        "expired": (
            make_reward(
                shop, name="Old", available_until=now - datetime.timedelta(days=1)
            ),
            "1",
        ),
        "zero_quantity": (make_reward(shop, name="Box"), "0"),
        "inactive": (make_reward(shop, name="Off", is_active=False), "1"),
    }


@pytest.mark.parametrize(
    "case",
    ["insufficient", "out_of_stock", "beyond_stock", "expired", "zero_quantity",
     "inactive", "limit"],
)  # fmt: skip
def test_each_refused_redemption_is_a_form_error_and_changes_nothing(
    login, shop, member, case
):
    earn(member, 500)
    if case == "limit":
        reward = make_reward(shop, name="Once", per_member_limit=1)
        with shop_scope(shop):
            redeem_reward(member=member, reward=reward)
        quantity = "1"
    else:
        reward, quantity = _refusal_cases(shop, member)[case]
    before = (
        balance(member),
        entry_count(member),
        Redemption.objects.unscoped().count(),
    )
    stock = reward.stock

    response = login(Role.CLERK).post(
        redeem_url(member), {"reward": reward.pk, "quantity": quantity}
    )

    assert response.status_code == 200
    assert form_errors(response)
    assert 'class="text-red-600' in response.content.decode()
    after = (
        balance(member),
        entry_count(member),
        Redemption.objects.unscoped().count(),
    )
    assert after == before
    reward.refresh_from_db()
    assert reward.stock == stock


# Redemptions ------------------------------------------------------------------


def test_cancelling_redemptions_returns_points_and_stock(login, shop, member):
    earn(member, 400, days=200)
    reward = make_reward(shop, points_price=100, stock=3)
    with shop_scope(shop):
        first = redeem_reward(member=member, reward=reward)
        second = redeem_reward(member=member, reward=reward)
    assert balance(member) == 200
    client = login(Role.MANAGER)

    response = client.post(
        REDEMPTIONS,
        {"action": "cancel_selected", "_selected_action": [first.pk, second.pk]},
    )

    assert response.status_code == 302
    assert balance(member) == 400
    assert set(Redemption.objects.unscoped().values_list("status", flat=True)) == {
        RedemptionStatus.CANCELLED
    }
    reward.refresh_from_db()
    assert reward.stock == 3
    # The points came back with their original expiry.
    expiries = {
        lot.expires_at.date()
        for lot in PointsLot.objects.unscoped().filter(
            account__member=member, remaining__gt=0
        )
    }
    assert expiries == {(timezone.now() + datetime.timedelta(days=200)).date()}


def test_one_redemption_is_cancelled_from_its_page(login, shop, member):
    earn(member, 100)
    reward = make_reward(shop, points_price=100)
    with shop_scope(shop):
        redemption = redeem_reward(member=member, reward=reward)
    url = reverse("admin:points_redemption_cancel_one", args=[redemption.pk])
    client = login(Role.OWNER)

    assert client.get(url).status_code == 200
    client.post(url)
    client.post(url)  # a second click returns nothing more

    assert balance(member) == 100
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.CANCELLED


def test_a_clerk_may_not_cancel_a_redemption(login, shop, member):
    earn(member, 100)
    reward = make_reward(shop, points_price=100)
    with shop_scope(shop):
        redemption = redeem_reward(member=member, reward=reward)
    client = login(Role.CLERK)

    client.post(
        REDEMPTIONS, {"action": "cancel_selected", "_selected_action": [redemption.pk]}
    )
    url = reverse("admin:points_redemption_cancel_one", args=[redemption.pk])

    assert client.post(url).status_code == 403
    assert balance(member) == 0
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.COMPLETED


def test_the_redemptions_list_filters_by_kind_status_and_store(login, shop):
    store = StoreFactory(shop=shop)
    here, there = MemberFactory(shop=shop), MemberFactory(shop=shop)
    earn(here, 500)
    earn(there, 500)
    reward = make_reward(shop)
    with shop_scope(shop):
        in_store = redeem_reward(member=here, reward=reward, store=store)
        elsewhere = redeem_reward(member=there, reward=reward)
    client = login(Role.CLERK)

    def listed(params):
        return {r.pk for r in client.get(REDEMPTIONS, params).context["cl"].result_list}

    assert listed({"store": store.pk}) == {in_store.pk}
    assert listed({"kind": "reward", "status": "completed"}) == {
        in_store.pk,
        elsewhere.pk,
    }
    assert listed({"status": "cancelled"}) == set()


# Entries are append-only --------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.MANAGER, Role.CLERK])
def test_nobody_adds_changes_or_deletes_an_entry(login, shop, member, role):
    entry = earn(member, 100, reason="Kept")
    client = login(role)
    change = reverse("admin:points_pointsentry_change", args=[entry.pk])
    delete = reverse("admin:points_pointsentry_delete", args=[entry.pk])

    assert client.get(reverse("admin:points_pointsentry_add")).status_code == 403
    assert client.get(change).status_code == 200  # read-only view
    assert client.post(change, {"points": "9999", "reason": "x"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    response = client.post(
        ENTRIES, {"action": "delete_selected", "_selected_action": [entry.pk]}
    )

    assert response.status_code in (200, 302)
    entry.refresh_from_db()
    assert (entry.points, entry.reason) == (100, "Kept")
    assert balance(member) == 100


# Shop isolation -----------------------------------------------------------------


def test_another_shops_points_are_invisible_and_404(login, shop, other_shop):
    theirs = MemberFactory(shop=other_shop)
    entry = earn(theirs, 300, reason="Other shop")
    reward = make_reward(other_shop, name="Their reward")
    with shop_scope(other_shop):
        redemption = redeem_reward(member=theirs, reward=reward)
    mine = MemberFactory(shop=shop)
    earn(mine, 10, reason="Ours")
    client = login(Role.MANAGER)

    assert [e.reason for e in client.get(ENTRIES).context["cl"].result_list] == ["Ours"]
    assert list(client.get(REDEMPTIONS).context["cl"].result_list) == []
    rewards = client.get(reverse("admin:points_reward_changelist"))
    assert list(rewards.context["cl"].result_list) == []
    for url in (
        reverse("admin:points_pointsentry_change", args=[entry.pk]),
        reverse("admin:points_reward_change", args=[reward.pk]),
        reverse("admin:points_redemption_change", args=[redemption.pk]),
        reverse("admin:points_redemption_cancel_one", args=[redemption.pk]),
        adjust_url(theirs),
        redeem_url(theirs),
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(adjust_url(theirs), {"points": "5", "reason": "x"}).status_code
        == 404
    )
    # Their reward cannot be redeemed by our member either.
    response = client.post(redeem_url(mine), {"reward": reward.pk, "quantity": "1"})
    assert "reward" in form_errors(response)
    client.post(
        REDEMPTIONS, {"action": "cancel_selected", "_selected_action": [redemption.pk]}
    )
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.COMPLETED
    assert balance(theirs) == 200


# The member list's points filters -------------------------------------------------


def test_the_member_list_filters_by_points_expiring_and_balance(login, shop):
    soon, later, none = (MemberFactory(shop=shop) for _n in range(3))
    earn(soon, 50, days=20)
    earn(later, 2000, days=90)
    client = login(Role.CLERK)
    members = reverse("admin:members_member_changelist")

    def listed(params):
        return {m.pk for m in client.get(members, params).context["cl"].result_list}

    assert listed({"points_expiring": "30"}) == {soon.pk}
    assert listed({"points_balance": "1-99"}) == {soon.pk}
    assert listed({"points_balance": "1000-4999"}) == {later.pk}
    assert listed({"points_balance": "none"}) == {none.pk}


def test_the_redemptions_list_searches_by_member_phone(login, shop):
    wanted, other = MemberFactory(shop=shop), MemberFactory(shop=shop)
    earn(wanted, 500)
    earn(other, 500)
    reward = make_reward(shop)
    with shop_scope(shop):
        mine = redeem_reward(member=wanted, reward=reward)
        redeem_reward(member=other, reward=reward)

    response = login(Role.CLERK).get(REDEMPTIONS, {"q": wanted.phone})

    assert [r.pk for r in response.context["cl"].result_list] == [mine.pk]


def test_a_superuser_in_the_all_shops_view_reads_entries_but_writes_nothing(
    client, shop, other_shop, member
):
    from tests.factories import UserFactory

    earn(member, 75, reason="Seen from above")
    earn(MemberFactory(shop=other_shop), 5, reason="Elsewhere")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    entries = client.get(ENTRIES)
    adjusted = client.post(adjust_url(member), {"points": "5", "reason": "x"})

    assert entries.status_code == 200
    assert {e.reason for e in entries.context["cl"].result_list} == {
        "Seen from above",
        "Elsewhere",
    }
    assert adjusted.status_code == 403
    assert balance(member) == 75


def test_points_past_their_expiry_are_not_offered_as_spendable(login, shop, member):
    earn(member, 40, days=-1)  # due; the nightly expiry has not run yet
    earn(member, 60, days=100)

    html = login(Role.CLERK).get(member_page(member)).content.decode()

    assert 'data-testid="points-balance">100<' in html
    assert 'data-testid="points-spendable">60<' in html
    assert 'data-testid="points-expiring">0<' in html


def test_the_entries_list_counts_no_further_than_its_cap(
    login, shop, member, monkeypatch
):
    from shops.admin.base import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "CAP", 2)
    for n in range(4):
        earn(member, 10 + n)

    response = login(Role.CLERK).get(ENTRIES)

    # Three counted (the cap plus one), the newest first.
    assert response.context["cl"].result_count == 3
    assert [e.points for e in response.context["cl"].result_list][:3] == [13, 12, 11]


def test_every_points_admin_page_opens_for_a_manager(login, shop, member):
    entry = earn(member, 500)
    reward = make_reward(shop, stock=4)
    with shop_scope(shop):
        redemption = redeem_reward(member=member, reward=reward)
        from points.models import EarningRule, PointsPolicy

        policy = PointsPolicy.objects.create(shop=shop)
        rule = EarningRule.objects.create(shop=shop, kind="purchase")
    client = login(Role.MANAGER)
    pages = [
        ENTRIES,
        f"{ENTRIES}?created_at_from=2026-01-01&created_at_to=2030-01-01",
        reverse("admin:points_pointsentry_change", args=[entry.pk]),
        REDEMPTIONS,
        f"{REDEMPTIONS}?created_at_from=2026-01-01",
        reverse("admin:points_redemption_change", args=[redemption.pk]),
        reverse("admin:points_reward_changelist"),
        reverse("admin:points_reward_add"),
        reverse("admin:points_reward_change", args=[reward.pk]),
        reverse("admin:points_pointspolicy_change", args=[policy.pk]),
        reverse("admin:points_earningrule_changelist"),
        reverse("admin:points_earningrule_add"),
        reverse("admin:points_earningrule_change", args=[rule.pk]),
        reverse("admin:points_liability"),
        reverse("admin:app_list", args=["points"]),
        adjust_url(member),
        redeem_url(member),
        member_page(member),
        reverse("admin:members_member_changelist") + "?points_expiring=30",
    ]

    for url in pages:
        assert client.get(url).status_code == 200, url
