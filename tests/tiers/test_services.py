"""Tier evaluation as a shop sees it: upgrades on completed purchases, drops
on refunds (never below the tier the period started with), manual tiers,
progress, ladder validation and the tier.changed event."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from rest_framework.test import APIClient

from members.models import MemberChange
from points.services import settlement
from shops.models import OutboxEvent
from shops.tenancy import shop_scope
from tests.factories import UserFactory, make_api_key
from tests.members.factories import MemberFactory
from tests.tiers.factories import TierFactory
from tiers.models import (
    Basis,
    ManualMode,
    MemberTier,
    Tier,
    TierChange,
    TierChangeReason,
    TierPolicy,
    Window,
)
from tiers.services.figures import local_today
from tiers.services.ladder import entry_tier, policy_of, tier_of, validate_ladder
from tiers.services.manual import clear_manual_tier, set_manual_tier
from tiers.services.progress import tier_progress, tier_progress_many

pytestmark = pytest.mark.django_db


def changes(member):
    with shop_scope(member.shop):
        return list(
            TierChange.objects.filter(member=member)
            .order_by("id")
            .values_list("from_tier__name", "to_tier__name", "reason")
        )


def state(member):
    with shop_scope(member.shop):
        return MemberTier.objects.filter(member=member).first()


def tier_events(shop):
    with shop_scope(shop):
        return list(
            OutboxEvent.objects.filter(topic="tier.changed").values_list(
                "payload", flat=True
            )
        )


def set_policy(shop, **fields):
    with shop_scope(shop):
        TierPolicy.objects.filter(shop=shop).update(**fields)


# --- upgrades on completed purchases -------------------------------------------


def test_a_purchase_crossing_the_spend_threshold_moves_the_member_up(
    till, ladder, member
):
    first = till.buy(member, "600")
    assert first.tier_change is None
    assert tier_of(member).name == "Normal"

    second = till.buy(member, "450")

    assert second.tier_change is not None
    assert tier_of(member).name == "Senior"
    assert changes(member) == [("Normal", "Senior", "purchase")]
    detail = second.tier_change.detail
    assert detail["spend"] == "1050.00"
    assert detail["min_spend"] == "1000.00"
    assert detail["purchase_id"] == second.pk
    assert detail["window"] == "lifetime"


def test_a_threshold_changed_applies_to_the_next_purchase(till, ladder, member):
    till.buy(member, "600")  # the ladder as it was is read (and kept)
    senior = next(tier for tier in ladder if tier.name == "Senior")
    senior.min_spend = Decimal("500")
    senior.name = "Silver"
    senior.save()

    till.buy(member, "10")

    assert tier_of(member).name == "Silver"
    assert changes(member) == [("Normal", "Silver", "purchase")]


def test_a_big_purchase_jumps_straight_to_the_highest_tier_met(till, ladder, member):
    till.buy(member, "6000")
    assert tier_of(member).name == "VIP"
    assert changes(member) == [("Normal", "VIP", "purchase")]


def test_the_move_emits_tier_changed_in_the_same_transaction(till, ladder, member):
    purchase = till.buy(member, "1000")

    [payload] = tier_events(till.shop)
    assert payload["member"]["id"] == member.pk
    assert payload["member"]["member_code"] == member.member_code
    assert payload["from_tier"]["name"] == "Normal"
    assert payload["to_tier"] == {"id": ladder[1].pk, "name": "Senior", "rank": 1}
    assert payload["reason"] == "purchase"
    assert payload["change_id"] == purchase.tier_change.pk


def test_orders_basis_counts_completed_orders(till, ladder, member):
    set_policy(till.shop, basis=Basis.ORDERS)
    for _ in range(4):
        till.buy(member, "1")
    assert tier_of(member).name == "Normal"

    till.buy(member, "1")

    assert tier_of(member).name == "Senior"


def test_either_basis_is_met_by_orders_alone(till, ladder, member):
    set_policy(till.shop, basis=Basis.EITHER)
    for _ in range(5):
        till.buy(member, "10")
    assert tier_of(member).name == "Senior"


def test_both_basis_needs_spend_and_orders(till, ladder, member):
    set_policy(till.shop, basis=Basis.BOTH)
    for _ in range(5):
        till.buy(member, "10")
    assert tier_of(member).name == "Normal"
    till.buy(member, "2000")  # both met now: 2050 spent, 6 orders
    assert tier_of(member).name == "Senior"


def test_a_pending_purchase_does_not_count_until_completed(till, ladder, member):
    pending = till.buy(member, "1500", complete=False)
    assert pending.tier_change is None
    assert tier_of(member).name == "Normal"

    done = settlement.complete_purchase(purchase=pending)

    assert done.tier_change is not None
    assert tier_of(member).name == "Senior"


def test_a_cancelled_purchase_never_counts(till, ladder, member):
    pending = till.buy(member, "1500", complete=False)
    settlement.cancel_purchase(purchase=pending, reason="changed mind")
    till.buy(member, "100")
    assert tier_of(member).name == "Normal"
    assert changes(member) == []


def test_a_shop_without_tiers_evaluates_to_nothing(till, member):
    purchase = till.buy(member, "99999")
    assert purchase.tier_change is None
    assert tier_of(member) is None
    assert tier_progress(member) is None


def test_members_without_a_row_hold_the_entry_tier(ladder, member, in_shop):
    assert entry_tier(in_shop).name == "Normal"
    assert tier_of(member).name == "Normal"
    assert state(member) is None


def test_rolling_window_counts_only_purchases_inside_it(till, ladder, member):
    set_policy(till.shop, window=Window.ROLLING, window_months=12)
    now = datetime.datetime.now(tz=datetime.UTC)
    till.buy(member, "900", occurred_at=now - datetime.timedelta(days=400))
    till.buy(member, "200")
    # 1100 spent in the member's life, 200 in the last 12 months.
    assert tier_of(member).name == "Normal"
    till.buy(member, "800")
    assert tier_of(member).name == "Senior"
    assert state(member).period_ends_on is not None


def test_calendar_year_period_ends_on_31_december(till, ladder, member):
    set_policy(till.shop, window=Window.CALENDAR_YEAR)
    till.buy(member, "1000")
    today = local_today(till.shop)
    assert state(member).period_ends_on == datetime.date(today.year, 12, 31)


# --- refunds -----------------------------------------------------------------


def test_a_refund_below_the_threshold_drops_the_member(till, ladder, member):
    purchase = till.buy(member, "1200")
    assert tier_of(member).name == "Senior"

    refund = till.refund(purchase, "300")

    assert refund.purchase.tier_change is not None
    assert tier_of(member).name == "Normal"
    assert changes(member)[-1] == ("Senior", "Normal", "refund")


def test_a_tier_left_only_in_members_history_cannot_be_deleted(till, ladder, member):
    purchase = till.buy(member, "1200")
    till.refund(purchase, "300")
    senior = ladder[1]
    with shop_scope(member.shop):
        assert not MemberTier.objects.filter(tier=senior).exists()

        # The history's keys are loose in the database: Django protects them.
        with pytest.raises(ProtectedError):
            senior.delete()

        assert Tier.objects.filter(pk=senior.pk).exists()
    assert changes(member) == [
        ("Normal", "Senior", "purchase"),
        ("Senior", "Normal", "refund"),
    ]


def test_a_refund_that_stays_above_the_threshold_keeps_the_tier(till, ladder, member):
    purchase = till.buy(member, "1500")
    till.refund(purchase, "100")
    assert tier_of(member).name == "Senior"
    assert len(changes(member)) == 1


def test_a_refund_never_drops_below_the_tier_the_period_started_with(
    till, ladder, member
):
    small = till.buy(member, "1200")
    big = till.buy(member, "5000")
    assert tier_of(member).name == "VIP"
    row = state(member)
    row.period_start_tier = ladder[1]  # Senior was earned in an earlier period
    with shop_scope(till.shop):
        row.save()

    till.refund(big)
    assert tier_of(member).name == "Senior"
    till.refund(small)  # nothing left spent: Senior still holds for the period

    assert tier_of(member).name == "Senior"
    assert changes(member)[-1] == ("VIP", "Senior", "refund")


# --- manual tiers ----------------------------------------------------------------


def test_a_fixed_manual_tier_holds_whatever_is_bought(till, ladder, member):
    staff = UserFactory()
    change = set_manual_tier(
        member=member,
        tier=ladder[2],
        mode=ManualMode.FIXED,
        reason="Friend of the owner",
        acting_user=staff,
    )

    assert change.reason == TierChangeReason.MANUAL
    assert change.detail["reason"] == "Friend of the owner"
    assert change.acting_user == staff
    row = state(member)
    assert (row.manual_mode, row.manual_by, row.manual_reason) == (
        "fixed",
        staff,
        "Friend of the owner",
    )
    with shop_scope(till.shop):
        assert MemberChange.objects.filter(member=member, action="tier_locked").exists()
    till.buy(member, "30000")
    assert tier_of(member).name == "VIP"


def test_clearing_a_lock_lets_the_figures_decide_again(till, ladder, member):
    set_manual_tier(member=member, tier=ladder[2], mode="fixed", reason="Promo")
    till.buy(member, "1500")

    change = clear_manual_tier(member=member)

    assert change.from_tier == ladder[2]
    assert change.to_tier == ladder[1]
    assert state(member).manual_tier is None
    with shop_scope(till.shop):
        assert MemberChange.objects.filter(
            member=member, action="tier_unlocked"
        ).exists()


def test_a_floor_allows_moving_up_but_not_down(till, ladder, member):
    set_manual_tier(member=member, tier=ladder[1], mode="floor", reason="Loyal")
    assert tier_of(member).name == "Senior"

    purchase = till.buy(member, "5500")
    assert tier_of(member).name == "VIP"
    till.refund(purchase)
    assert tier_of(member).name == "Senior"


def test_a_lock_that_changes_nothing_writes_no_tier_change(till, ladder, member):
    till.buy(member, "6000")  # VIP
    change = set_manual_tier(member=member, tier=ladder[1], mode="floor", reason="x")
    assert change is None
    assert changes(member) == [("Normal", "VIP", "purchase")]
    assert state(member).manual_tier == ladder[1]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("mode", {"mode": "sometimes"}),
        ("until", {"until": datetime.date(2000, 1, 1)}),
        ("reason", {"reason": "  "}),
    ],
)
def test_bad_manual_tier_input_is_refused_and_changes_nothing(
    ladder, member, in_shop, field, kwargs
):
    values = {"tier": ladder[2], "mode": "fixed", "reason": "why", **kwargs}
    with pytest.raises(ValidationError) as refused:
        set_manual_tier(member=member, **values)
    assert field in refused.value.message_dict
    assert state(member) is None


def test_another_shops_tier_cannot_be_set(ladder, member, other_shop, in_shop):
    foreign = TierFactory(shop=other_shop, rank=5, name="Elsewhere")
    with pytest.raises(ValidationError):
        set_manual_tier(member=member, tier=foreign, mode="fixed", reason="x")
    assert state(member) is None


# --- progress ----------------------------------------------------------------


def test_progress_says_what_is_needed_for_the_next_tier(till, ladder, member):
    till.buy(member, "770")

    progress = tier_progress(member)

    assert progress.tier.name == "Normal"
    assert progress.next_tier.name == "Senior"
    assert progress.spend_to_next == Decimal("230.00")
    assert progress.orders_to_next is None
    assert progress.keep_by is None
    assert progress.sentence == "Spend 230.00 more to reach Senior."


def test_progress_with_either_basis_and_a_calendar_year(till, ladder, member):
    set_policy(till.shop, basis=Basis.EITHER, window=Window.CALENDAR_YEAR)
    for _ in range(3):
        till.buy(member, "100")
    till.buy(member, "470")

    progress = tier_progress(member)

    assert (progress.spend_to_next, progress.orders_to_next) == (Decimal("230.00"), 1)
    assert progress.sentence == (
        "Spend 230.00 more or 1 more order by 31 Dec to reach Senior."
    )
    till.buy(member, "1")  # any order qualifies: 5 orders
    progress = tier_progress(member)
    assert progress.tier.name == "Senior"
    assert progress.keep_by == datetime.date(local_today(till.shop).year, 12, 31)
    assert progress.spend_to_keep == Decimal("0.00")
    assert "to reach VIP" in progress.sentence
    assert "is kept" in progress.sentence


def test_progress_of_a_page_costs_a_fixed_number_of_queries(
    till, ladder, shop, django_assert_max_num_queries
):
    set_policy(shop, window=Window.ROLLING)
    members = [MemberFactory(shop=shop) for _ in range(12)]
    for member in members[:6]:
        till.buy(member, "1200")
    with django_assert_max_num_queries(4):
        progress = tier_progress_many(members)
    assert {p.tier.name for p in progress.values()} == {"Normal", "Senior"}
    assert progress[members[0].pk].spend == Decimal("1200.00")


# --- ladder validation ------------------------------------------------------------


def proposal(*steps, **policy):
    tiers = [
        Tier(name=name, rank=rank, min_spend=Decimal(spend), min_orders=orders)
        for name, rank, spend, orders in steps
    ]
    return tiers, TierPolicy(**policy)


def refusal(shop, tiers, policy) -> str:
    with pytest.raises(ValidationError) as refused:
        validate_ladder(shop=shop, tiers=tiers, policy=policy)
    return " ".join(refused.value.messages)


def test_a_good_ladder_passes(shop):
    tiers, policy = proposal(("Normal", 0, "0", 0), ("Gold", 1, "100", 2))
    validate_ladder(shop=shop, tiers=tiers, policy=policy)


def test_two_tiers_with_one_rank_are_refused(shop):
    tiers, policy = proposal(("Normal", 0, "0", 0), ("Gold", 0, "100", 0))
    assert "same rank" in refusal(shop, tiers, policy)


def test_thresholds_that_do_not_rise_with_rank_are_refused(shop):
    tiers, policy = proposal(
        ("Normal", 0, "0", 0), ("Gold", 1, "500", 0), ("Silver", 2, "300", 0)
    )
    assert "Silver needs more spend than Gold" in refusal(shop, tiers, policy)


def test_order_thresholds_are_checked_when_the_basis_uses_them(shop):
    tiers, policy = proposal(
        ("Normal", 0, "0", 0),
        ("Gold", 1, "500", 5),
        ("Silver", 2, "900", 5),
        basis=Basis.BOTH,
    )
    assert "Silver needs more orders than Gold" in refusal(shop, tiers, policy)


def test_a_negative_discount_is_refused(shop):
    tiers, policy = proposal(("Normal", 0, "0", 0))
    tiers[0].discount_percent = Decimal("-5")
    assert "discount of tier Normal" in refusal(shop, tiers, policy)


def test_a_multiplier_of_zero_is_refused(shop):
    tiers, policy = proposal(("Normal", 0, "0", 0))
    tiers[0].points_multiplier = Decimal("0")
    assert "multiplier of tier Normal" in refusal(shop, tiers, policy)


def test_a_rolling_window_of_zero_months_is_refused(shop):
    tiers, policy = proposal(
        ("Normal", 0, "0", 0), window=Window.ROLLING, window_months=0
    )
    assert "at least one month" in refusal(shop, tiers, policy)


def test_the_default_policy_is_created_once(shop):
    first = policy_of(shop)
    assert (first.basis, first.window, first.downgrade, first.grace_days) == (
        "spend",
        "lifetime",
        "highest_met",
        0,
    )
    assert policy_of(shop).pk == first.pk


# --- through the API -----------------------------------------------------------


def test_posting_a_purchase_moves_the_member_up(shop, ladder):
    member = MemberFactory(shop=shop)
    _key, plain = make_api_key(shop=shop)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")

    response = api.post(
        "/api/v1/purchases",
        {"member_id": member.pk, "external_order_id": "POS-9", "amount": "1200.00"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert tier_of(member).name == "Senior"
    assert changes(member) == [("Normal", "Senior", "purchase")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"window": Window.LIFETIME, "window_months": 0}, "at least one month"),
        ({"window": Window.ROLLING, "window_months": 121}, "at most 120 months"),
        ({"grace_days": 400}, "between 0 and 366 days"),
    ],
)
def test_policy_values_the_database_would_refuse_are_refused(shop, fields, message):
    tiers, policy = proposal(("Normal", 0, "0", 0), **fields)
    assert message in refusal(shop, tiers, policy)
