"""The daily run: downgrades at the period end by each rule, grace periods,
rolling windows, and manual locks that run out. Idempotent per day."""

import datetime
from decimal import Decimal

import pytest

from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory, PurchaseFactory
from tests.tiers.factories import make_ladder
from tiers.models import DowngradeRule, MemberTier, TierChange, TierPolicy, Window
from tiers.services.figures import local_today
from tiers.services.ladder import tier_of
from tiers.services.manual import set_manual_tier
from tiers.services.periods import run_period_ends

pytestmark = pytest.mark.django_db

D = datetime.date


def at(shop, day, hour=12):
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=shop.zone)


def spent(member, amount, day):
    PurchaseFactory(
        member=member, amount=Decimal(amount), occurred_at=at(member.shop, day)
    )


def policy(shop, **fields):
    with shop_scope(shop):
        TierPolicy.objects.filter(shop=shop).update(**fields)


def holding(member, tier, *, ends, start=None):
    with shop_scope(member.shop):
        return MemberTier.objects.create(
            shop=member.shop,
            member=member,
            tier=tier,
            since=at(member.shop, ends - datetime.timedelta(days=200)),
            period_ends_on=ends,
            period_start_tier=start or tier,
        )


def reload(member):
    with shop_scope(member.shop):
        return MemberTier.objects.select_related(
            "tier", "period_start_tier", "grace_target"
        ).get(member=member)


def reasons(member):
    with shop_scope(member.shop):
        return list(
            TierChange.objects.filter(member=member)
            .order_by("id")
            .values_list("from_tier__name", "to_tier__name", "reason")
        )


@pytest.fixture
def supreme(shop, ladder):
    """A Supreme member whose calendar year 2025 ended with 1500 spent."""
    policy(shop, window=Window.CALENDAR_YEAR)
    member = MemberFactory(shop=shop)
    holding(member, ladder[3], ends=D(2025, 12, 31))
    spent(member, "1000", D(2025, 3, 1))
    spent(member, "500", D(2025, 12, 31))
    spent(member, "9000", D(2024, 12, 31))  # the year before: not counted
    return member


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (DowngradeRule.HIGHEST_MET, "Senior"),
        (DowngradeRule.ONE_STEP, "VIP"),
        (DowngradeRule.NEVER, "Supreme"),
    ],
)
def test_the_period_end_moves_down_by_the_shops_rule(shop, supreme, rule, expected):
    policy(shop, downgrade=rule)

    run_period_ends(shop=shop, today=D(2026, 1, 1))

    state = reload(supreme)
    assert state.tier.name == expected
    assert state.period_start_tier.name == expected
    assert state.period_ends_on == D(2026, 12, 31)
    if expected == "Supreme":
        assert reasons(supreme) == []
    else:
        assert reasons(supreme) == [("Supreme", expected, "period_end")]
        with shop_scope(shop):
            detail = TierChange.objects.get(member=supreme).detail
        assert detail["spend"] == "1500.00"


def test_nothing_happens_before_the_period_ends(shop, supreme):
    assert run_period_ends(shop=shop, today=D(2025, 12, 31))["period_end"] == (0, 0)
    assert reload(supreme).tier.name == "Supreme"


def test_a_second_run_the_same_day_changes_nothing(shop, supreme):
    first = run_period_ends(shop=shop, today=D(2026, 1, 1))
    second = run_period_ends(shop=shop, today=D(2026, 1, 1))

    assert first["period_end"] == (0, 1)
    assert second["period_end"] == (0, 0)
    assert len(reasons(supreme)) == 1


def test_a_member_who_met_the_tier_is_renewed(shop, ladder):
    policy(shop, window=Window.CALENDAR_YEAR)
    member = MemberFactory(shop=shop)
    holding(member, ladder[1], ends=D(2025, 12, 31), start=ladder[0])
    spent(member, "1200", D(2025, 5, 5))

    run_period_ends(shop=shop, today=D(2026, 1, 2))

    state = reload(member)
    assert state.tier.name == "Senior"
    assert state.period_start_tier.name == "Senior"
    assert state.period_ends_on == D(2026, 12, 31)
    assert reasons(member) == []


def test_grace_keeps_the_tier_then_moves(shop, supreme):
    policy(shop, grace_days=30)

    run_period_ends(shop=shop, today=D(2026, 1, 1))
    state = reload(supreme)
    assert state.tier.name == "Supreme"
    assert state.grace_until == D(2026, 1, 30)
    assert state.grace_target.name == "Senior"
    assert reasons(supreme) == []

    run_period_ends(shop=shop, today=D(2026, 1, 30))
    assert reload(supreme).tier.name == "Supreme"

    run_period_ends(shop=shop, today=D(2026, 1, 31))
    state = reload(supreme)
    assert state.tier.name == "Senior"
    assert state.grace_until is None
    assert state.grace_target is None
    assert state.period_start_tier.name == "Senior"
    assert state.period_ends_on == D(2026, 12, 31)
    assert reasons(supreme) == [("Supreme", "Senior", "grace_end")]


def test_requalifying_during_grace_keeps_the_tier(shop, supreme):
    policy(shop, grace_days=30)
    run_period_ends(shop=shop, today=D(2026, 1, 1))
    spent(supreme, "19000", D(2026, 1, 20))  # 20500 up to the grace end

    run_period_ends(shop=shop, today=D(2026, 1, 31))

    state = reload(supreme)
    assert state.tier.name == "Supreme"
    assert state.grace_until is None
    assert state.period_ends_on == D(2026, 12, 31)
    assert reasons(supreme) == []


def test_a_rolling_period_counts_the_months_before_its_end(shop, ladder):
    policy(shop, window=Window.ROLLING, window_months=12)
    member = MemberFactory(shop=shop)
    holding(member, ladder[2], ends=D(2026, 6, 30))
    spent(member, "6000", D(2025, 6, 30))  # one day before the window
    spent(member, "1200", D(2025, 7, 1))

    run_period_ends(shop=shop, today=D(2026, 7, 1))

    state = reload(member)
    assert state.tier.name == "Senior"
    assert state.period_ends_on == D(2027, 6, 30)
    assert reasons(member) == [("VIP", "Senior", "period_end")]


def test_a_fixed_manual_tier_outlives_the_period_end(shop, supreme, ladder):
    set_manual_tier(member=supreme, tier=ladder[3], mode="fixed", reason="Owner")
    run_period_ends(shop=shop, today=D(2026, 1, 1))
    assert reload(supreme).tier.name == "Supreme"


def test_a_floor_limits_the_fall_at_the_period_end(shop, supreme, ladder):
    set_manual_tier(member=supreme, tier=ladder[2], mode="floor", reason="Partner")
    run_period_ends(shop=shop, today=D(2026, 1, 1))
    assert reload(supreme).tier.name == "VIP"


def test_a_lock_until_a_date_ends_and_normal_evaluation_resumes(shop, ladder):
    member = MemberFactory(shop=shop)
    today = local_today(shop)
    until = today + datetime.timedelta(days=2)
    set_manual_tier(
        member=member, tier=ladder[2], mode="fixed", until=until, reason="Trial"
    )

    run_period_ends(shop=shop, today=until)
    assert tier_of(member).name == "VIP"

    done = run_period_ends(shop=shop, today=until + datetime.timedelta(days=1))

    assert done["manual_end"] == (0, 1)
    state = reload(member)
    assert state.tier.name == "Normal"
    assert state.manual_tier is None
    assert state.manual_reason == ""
    assert reasons(member)[-1] == ("VIP", "Normal", "manual_end")
    assert run_period_ends(shop=shop, today=until + datetime.timedelta(days=1))[
        "manual_end"
    ] == (0, 0)


def test_the_period_end_of_one_shop_leaves_another_alone(shop, other_shop, supreme):
    ladder = make_ladder(other_shop, window=Window.CALENDAR_YEAR)
    theirs = MemberFactory(shop=other_shop)
    holding(theirs, ladder[3], ends=D(2025, 12, 31))

    run_period_ends(shop=shop, today=D(2026, 1, 1))

    assert reload(theirs).tier.name == "Supreme"
    assert reload(supreme).tier.name == "Senior"
