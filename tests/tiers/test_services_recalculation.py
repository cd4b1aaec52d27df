"""Whole-shop recalculation, rule-change previews and applying rule changes:
set-based, only movers written, safe to run twice, one shop at a time."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shops.models import OutboxEvent, WebhookDelivery
from shops.services.events.outbox import process_outbox_event
from shops.tenancy import shop_scope
from tests.factories import WebhookEndpointFactory
from tests.members.factories import MemberFactory, PurchaseFactory
from tests.tiers.factories import make_ladder
from tiers import tasks
from tiers.models import (
    MemberTier,
    RecalculationStatus,
    Tier,
    TierChange,
    TierChangeReason,
    TierPolicy,
    Window,
)
from tiers.services.events import TIERS_MOVED
from tiers.services.figures import local_today
from tiers.services.ladder import policy_of, tier_of
from tiers.services.manual import set_manual_tier
from tiers.services.recalculation import (
    apply_rule_change,
    preview_rule_change,
    recalculate_shop,
)

pytestmark = pytest.mark.django_db


def spent(member, *amounts, at=None):
    for amount in amounts:
        PurchaseFactory(
            member=member,
            amount=Decimal(amount),
            occurred_at=at or datetime.datetime.now(tz=datetime.UTC),
        )


def row(member, **fields):
    with shop_scope(member.shop):
        return MemberTier.objects.unscoped().create(
            shop=member.shop,
            member=member,
            since=datetime.datetime.now(tz=datetime.UTC),
            **fields,
        )


def tier_changes(shop, **filters):
    with shop_scope(shop):
        return list(
            TierChange.objects.filter(**filters)
            .order_by("member_id")
            .values_list("member_id", "from_tier__name", "to_tier__name", "reason")
        )


@pytest.fixture
def people(shop, ladder):
    """a: 1200 spent (Senior), b: 6000 (VIP), c: 100 (Normal), d: held VIP
    with 100 spent (no earlier period to keep it)."""
    a, b, c, d = (MemberFactory(shop=shop) for _ in range(4))
    spent(a, "700", "500")
    spent(b, "6000")
    spent(c, "100")
    spent(d, "100")
    row(d, tier=ladder[2])
    return a, b, c, d


def test_recalculation_moves_the_right_members_and_records_only_movers(
    shop, ladder, people
):
    a, b, c, d = people

    up, down = recalculate_shop(shop=shop)

    assert (up, down) == (2, 1)
    assert [tier_of(m).name for m in people] == ["Senior", "VIP", "Normal", "Normal"]
    assert tier_changes(shop) == [
        (a.pk, "Normal", "Senior", "recalculation"),
        (b.pk, "Normal", "VIP", "recalculation"),
        (d.pk, "VIP", "Normal", "recalculation"),
    ]
    with shop_scope(shop):
        change = TierChange.objects.get(member=a)
        assert change.detail["spend"] == "1200.00"
        assert change.detail["min_spend"] == "1000.00"
        # c never moved: still no row (the entry tier costs nothing to store).
        assert not MemberTier.objects.filter(member=c).exists()


def process_outbox():
    """What the worker does with the events written so far."""
    pending = OutboxEvent.objects.unscoped().filter(processed_at=None).order_by("id")
    for event_id in list(pending.values_list("pk", flat=True)):
        process_outbox_event(event_id=event_id)


def tier_changed_payloads(shop):
    with shop_scope(shop):
        return list(
            OutboxEvent.objects.filter(topic="tier.changed").values_list(
                "payload", flat=True
            )
        )


def test_recalculation_emits_one_tier_changed_event_per_mover(shop, ladder, people):
    a, *_ = people
    recalculate_shop(shop=shop)
    process_outbox()

    payloads = tier_changed_payloads(shop)
    assert len(payloads) == 3
    mine = next(p for p in payloads if p["member"]["id"] == a.pk)
    assert mine["from_tier"]["name"] == "Normal"
    assert mine["to_tier"] == {"id": ladder[1].pk, "name": "Senior", "rank": 1}
    assert mine["reason"] == "recalculation"
    assert mine["member"]["member_code"] == a.member_code
    assert mine["member"]["external_id"] == a.external_id
    with shop_scope(shop):
        change = TierChange.objects.get(member=a)
    assert mine["change_id"] == change.pk


def test_the_worker_writes_each_movers_event_once_and_webhooks_see_only_those(
    shop, ladder, people, on_postgres
):
    endpoint = WebhookEndpointFactory(shop=shop, events=["*"])
    recalculate_shop(shop=shop)
    moved = OutboxEvent.objects.unscoped().filter(topic=TIERS_MOVED)
    # The recalculation commits one internal event for its moves (PostgreSQL;
    # the embedded database's path writes the movers' events itself).
    assert moved.count() == (1 if on_postgres else 0)

    process_outbox()
    process_outbox()  # nothing left to do
    for event in moved:  # a second hand-over of the same event
        assert process_outbox_event(event_id=event.pk) is False

    assert len(tier_changed_payloads(shop)) == 3
    with shop_scope(shop):
        delivered = set(
            WebhookDelivery.objects.filter(endpoint=endpoint).values_list(
                "event__topic", flat=True
            )
        )
    assert delivered == {"tier.changed"}


def test_a_second_run_moves_nobody(shop, ladder, people):
    recalculate_shop(shop=shop)
    before = len(tier_changes(shop))

    assert recalculate_shop(shop=shop) == (0, 0)
    assert len(tier_changes(shop)) == before


def test_recalculation_agrees_with_evaluation_on_purchase(till, ladder, member):
    till.buy(member, "1200")  # moved up at the till
    assert recalculate_shop(shop=till.shop) == (0, 0)


@pytest.mark.postgres  # elsewhere a member-by-member fallback runs
def test_the_statement_count_does_not_grow_with_members(shop, ladder):
    def statements(count):
        for _ in range(count):
            spent(MemberFactory(shop=shop), "1500")
        with CaptureQueriesContext(connection) as queries:
            recalculate_shop(shop=shop)
        return len(queries)

    few = statements(2)
    many = statements(40)
    assert many == few
    assert many <= 10


def test_manual_locks_are_respected(shop, ladder):
    fixed, floored = MemberFactory(shop=shop), MemberFactory(shop=shop)
    set_manual_tier(member=fixed, tier=ladder[0], mode="fixed", reason="Banned")
    set_manual_tier(member=floored, tier=ladder[2], mode="floor", reason="Partner")
    spent(fixed, "6000")
    spent(floored, "1200")

    recalculate_shop(shop=shop)

    assert tier_of(fixed).name == "Normal"
    assert tier_of(floored).name == "VIP"


def test_a_recalculation_keeps_the_tier_the_period_started_with(shop, ladder):
    policy = policy_of(shop)
    policy.window = Window.CALENDAR_YEAR
    with shop_scope(shop):
        policy.save()
    kept = MemberFactory(shop=shop)
    row(kept, tier=ladder[2], period_start_tier=ladder[2])

    assert recalculate_shop(shop=shop) == (0, 0)
    assert tier_of(kept).name == "VIP"
    # A rule change recalculates from the figures alone.
    assert recalculate_shop(shop=shop, reason=TierChangeReason.RULE_CHANGE) == (0, 1)
    assert tier_of(kept).name == "Normal"
    assert tier_changes(shop)[-1][-1] == "rule_change"


def test_recalculating_one_shop_never_touches_another(shop, other_shop, ladder):
    make_ladder(other_shop)
    theirs = MemberFactory(shop=other_shop)
    spent(theirs, "6000")
    mine = MemberFactory(shop=shop)
    spent(mine, "6000")

    assert recalculate_shop(shop=shop) == (1, 0)

    with shop_scope(other_shop):
        assert not MemberTier.objects.exists()
        assert not TierChange.objects.exists()
        assert not OutboxEvent.objects.filter(topic="tier.changed").exists()
    assert tier_of(theirs).name == "Normal"


def test_a_rolling_window_recalculation_ignores_old_purchases(shop, ladder):
    policy = policy_of(shop)
    policy.window, policy.window_months = Window.ROLLING, 6
    with shop_scope(shop):
        policy.save()
    old, recent = MemberFactory(shop=shop), MemberFactory(shop=shop)
    long_ago = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(days=250)
    spent(old, "6000", at=long_ago)
    spent(recent, "6000")

    assert recalculate_shop(shop=shop) == (1, 0)
    assert tier_of(old).name == "Normal"
    assert tier_of(recent).name == "VIP"
    with shop_scope(shop):
        assert MemberTier.objects.get(member=recent).period_ends_on is not None


# --- rule changes --------------------------------------------------------------


def proposed(shop, **thresholds):
    """The saved ladder with new spend thresholds by name (unsaved)."""
    with shop_scope(shop):
        tiers = list(Tier.objects.order_by("rank"))
        policy = TierPolicy.objects.get()
    for tier in tiers:
        if tier.name in thresholds:
            tier.min_spend = Decimal(thresholds[tier.name])
    return tiers, policy


def test_the_preview_counts_who_would_move_and_writes_nothing(shop, ladder, people):
    recalculate_shop(shop=shop)
    before = len(tier_changes(shop))

    # a (1200) drops out of Senior; c (100) and d (100) reach it.
    tiers, policy = proposed(shop, Senior="100")
    assert preview_rule_change(shop=shop, tiers=tiers, policy=policy) == {
        "up": 2,
        "down": 0,
        "unchanged": 2,
    }
    tiers, policy = proposed(shop, Senior="1500")
    assert preview_rule_change(shop=shop, tiers=tiers, policy=policy) == {
        "up": 0,
        "down": 1,
        "unchanged": 3,
    }
    assert len(tier_changes(shop)) == before
    assert tier_of(people[0]).name == "Senior"


def test_a_preview_of_a_bad_ladder_is_refused(shop, ladder):
    tiers, policy = proposed(shop, Senior="9000")  # above VIP's 5000
    with pytest.raises(ValidationError):
        preview_rule_change(shop=shop, tiers=tiers, policy=policy)


def test_apply_now_recalculates_everyone_in_the_background(
    shop, ladder, people, django_capture_on_commit_callbacks
):
    recalculate_shop(shop=shop)
    tiers, policy = proposed(shop, Senior="100")

    with django_capture_on_commit_callbacks() as queued:
        recalculation = apply_rule_change(
            shop=shop, tiers=tiers, policy=policy, mode="now"
        )

    assert recalculation.reason == TierChangeReason.RULE_CHANGE
    assert recalculation.status == RecalculationStatus.QUEUED
    assert queued  # the task is queued once the change commits
    tasks.recalculate_shop(recalculation.pk)
    with shop_scope(shop):
        recalculation.refresh_from_db()
        assert Tier.objects.get(name="Senior").min_spend == Decimal("100.00")
    assert recalculation.status == RecalculationStatus.DONE
    assert recalculation.steps_done == recalculation.steps_total
    assert (recalculation.members_up, recalculation.members_down) == (2, 0)
    assert [tier_of(m).name for m in people] == ["Senior", "VIP", "Senior", "Senior"]
    assert len(tier_changes(shop, reason="rule_change")) == 2
    # Safe to run twice.
    assert tasks.recalculate_shop(recalculation.pk) is None


def test_apply_at_next_purchase_moves_members_when_they_buy(till, ladder, member):
    till.buy(member, "150")
    tiers, policy = proposed(till.shop, Senior="100")

    assert (
        apply_rule_change(
            shop=till.shop, tiers=tiers, policy=policy, mode="next_purchase"
        )
        is None
    )
    assert tier_of(member).name == "Normal"  # nobody moved yet

    till.buy(member, "1")

    assert tier_of(member).name == "Senior"


def test_apply_refuses_a_bad_ladder_and_saves_nothing(shop, ladder):
    tiers, policy = proposed(shop, Senior="9000")
    with pytest.raises(ValidationError):
        apply_rule_change(shop=shop, tiers=tiers, policy=policy, mode="now")
    with shop_scope(shop):
        assert Tier.objects.get(name="Senior").min_spend == Decimal("1000.00")
    tiers, policy = proposed(shop)
    with pytest.raises(ValidationError):
        apply_rule_change(shop=shop, tiers=tiers, policy=policy, mode="someday")


def test_apply_can_swap_ranks(shop, ladder):
    tiers, policy = proposed(shop)
    # Renaming by swapping two ranks keeps the ladder valid when the
    # thresholds follow.
    tiers[1].rank, tiers[2].rank = tiers[2].rank, tiers[1].rank
    tiers[1].min_spend, tiers[2].min_spend = tiers[2].min_spend, tiers[1].min_spend
    apply_rule_change(shop=shop, tiers=tiers, policy=policy, mode="next_purchase")
    with shop_scope(shop):
        assert list(Tier.objects.order_by("rank").values_list("name", flat=True)) == [
            "Normal",
            "VIP",
            "Senior",
            "Supreme",
        ]


def test_moving_from_lifetime_to_a_calendar_year_starts_everyones_period(
    till, ladder, member
):
    till.buy(member, "1200")  # Senior, no period under a lifetime window
    with shop_scope(till.shop):
        assert MemberTier.objects.get(member=member).period_ends_on is None
    tiers, policy = proposed(till.shop)
    policy.window = Window.CALENDAR_YEAR

    apply_rule_change(shop=till.shop, tiers=tiers, policy=policy, mode="next_purchase")

    with shop_scope(till.shop):
        state = MemberTier.objects.get(member=member)
        today = local_today(till.shop)
    assert state.period_ends_on == datetime.date(today.year, 12, 31)
