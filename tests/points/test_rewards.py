"""Rewards: what members see, redeeming at the counter or by API, cancelling."""

from datetime import timedelta

import factory
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.models import Member, MemberStatus
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
from points.services import ledger
from points.services.rewards import (
    cancel_redemption,
    redeem_reward,
    redeemable_rewards,
    visible_rewards,
)
from shops.errors import DomainError, NotFound
from shops.models import OutboxEvent
from shops.tenancy import shop_scope
from tests.factories import StoreFactory, TenantFactory
from tests.members.factories import MemberFactory
from tiers.models import MemberTier, Tier

pytestmark = pytest.mark.django_db


class RewardFactory(TenantFactory):
    class Meta:
        model = Reward
        skip_postgeneration_save = True

    shop = factory.SubFactory("tests.factories.ShopFactory")
    name = factory.Sequence(lambda n: f"Tea cup {n}")
    points_price = 100
    stock = 10

    @factory.post_generation
    def tiers(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.tiers.set(extracted)


def give(member, points, *, expires_at=None, key=""):
    """Credit `points` to `member` as a campaign bonus (inside the shop scope)."""
    return ledger.credit(
        member=member,
        points=points,
        kind=EntryKind.EARN,
        source=EntrySource.CAMPAIGN,
        reason="test",
        expires_at=expires_at,
        idempotency_key=key,
    )


def balance(member) -> int:
    return PointsAccount.objects.get(member=member).balance


def open_lots(member) -> list[tuple]:
    return sorted(
        PointsLot.objects.filter(account__member=member, remaining__gt=0).values_list(
            "expires_at", "remaining"
        ),
        key=lambda row: (row[0] is None, row[0], row[1]),
    )


@pytest.fixture
def member(in_shop):
    member = MemberFactory(shop=in_shop)
    give(member, 500)
    return member


def snapshot(member, reward):
    reward.refresh_from_db()
    return (
        balance(member),
        reward.stock,
        Redemption.objects.count(),
        PointsEntry.objects.count(),
    )


# ---------------------------------------------------------------- redeeming


def test_redeeming_debits_points_takes_stock_and_records_it(member, in_shop):
    reward = RewardFactory(shop=in_shop, points_price=120, stock=5)

    redemption = redeem_reward(member=member, reward=reward, quantity=2)

    reward.refresh_from_db()
    assert (redemption.status, redemption.points, redemption.quantity) == (
        RedemptionStatus.COMPLETED,
        240,
        2,
    )
    assert redemption.debit.points == -240
    assert redemption.debit.kind == EntryKind.REDEEM
    assert redemption.debit.source == EntrySource.REWARD
    assert balance(member) == 260
    assert reward.stock == 3
    assert OutboxEvent.objects.filter(topic="points.redeemed").count() == 1


def test_unlimited_stock_stays_unlimited(member, in_shop):
    reward = RewardFactory(shop=in_shop, stock=None)

    redeem_reward(member=member, reward=reward)

    reward.refresh_from_db()
    assert reward.stock is None
    assert balance(member) == 400


@pytest.mark.parametrize(
    ("change", "quantity", "code"),
    [
        ({"stock": 0}, 1, "out_of_stock"),
        ({"stock": 1}, 2, "out_of_stock"),
        ({"is_active": False}, 1, "reward_not_available"),
        ({"available_until": "past"}, 1, "reward_not_available"),
        ({"available_from": "future"}, 1, "reward_not_available"),
        ({"points_price": 501}, 1, "insufficient_points"),
        ({"points_price": 300}, 2, "insufficient_points"),
        ({}, 0, "invalid_quantity"),
        ({}, -1, "invalid_quantity"),
        ({}, "two", "invalid_quantity"),
        ({}, 101, "invalid_quantity"),
    ],
)
def test_each_refusal_changes_nothing(member, in_shop, change, quantity, code):
    now = timezone.now()
    moments = {"past": now - timedelta(days=1), "future": now + timedelta(days=1)}
    reward = RewardFactory(
        shop=in_shop, **{k: moments.get(v, v) for k, v in change.items()}
    )
    before = snapshot(member, reward)

    with pytest.raises(ValidationError) as refused:
        redeem_reward(member=member, reward=reward, quantity=quantity)

    assert refused.value.code == code
    assert refused.value.messages
    assert snapshot(member, reward) == before


def test_per_member_limit_counts_what_is_not_cancelled(member, in_shop):
    reward = RewardFactory(shop=in_shop, per_member_limit=2, points_price=10)
    first = redeem_reward(member=member, reward=reward, quantity=2)

    with pytest.raises(ValidationError) as refused:
        redeem_reward(member=member, reward=reward)
    assert refused.value.code == "limit_reached"
    assert balance(member) == 480

    cancel_redemption(redemption=first)
    again = redeem_reward(member=member, reward=reward, quantity=2)
    assert again.status == RedemptionStatus.COMPLETED
    # Another member has a limit of their own.
    other = MemberFactory(shop=in_shop)
    give(other, 10)
    assert redeem_reward(member=other, reward=reward).points == 10


def test_only_the_tiers_it_names_may_redeem_it(member, in_shop):
    entry = Tier.objects.create(shop=in_shop, name="Normal", rank=0)
    gold = Tier.objects.create(shop=in_shop, name="Gold", rank=1, min_spend=1000)
    reward = RewardFactory(shop=in_shop, tiers=[gold])
    before = snapshot(member, reward)

    with pytest.raises(ValidationError) as refused:
        redeem_reward(member=member, reward=reward)
    assert refused.value.code == "tier_not_allowed"
    assert snapshot(member, reward) == before

    MemberTier.objects.create(
        shop=in_shop, member=member, tier=gold, since=timezone.now()
    )
    assert redeem_reward(member=member, reward=reward).points == 100
    # A reward for the entry tier is for members without a tier row.
    newcomer = MemberFactory(shop=in_shop)
    give(newcomer, 100)
    basic = RewardFactory(shop=in_shop, tiers=[entry])
    assert redeem_reward(member=newcomer, reward=basic).points == 100


def test_a_replay_with_the_same_key_returns_the_first_redemption(member, in_shop):
    reward = RewardFactory(shop=in_shop, stock=5)
    first = redeem_reward(member=member, reward=reward, idempotency_key="pos-1")

    again = redeem_reward(member=member, reward=reward, idempotency_key="pos-1")

    reward.refresh_from_db()
    assert again.pk == first.pk
    assert again.replayed is True
    assert balance(member) == 400
    assert reward.stock == 4
    assert Redemption.objects.count() == 1


def test_the_same_key_with_another_body_is_a_conflict(member, in_shop):
    reward = RewardFactory(shop=in_shop)
    redeem_reward(member=member, reward=reward, idempotency_key="pos-2")
    before = snapshot(member, reward)

    with pytest.raises(ValidationError) as refused:
        redeem_reward(member=member, reward=reward, quantity=2, idempotency_key="pos-2")

    assert refused.value.code == "idempotency_conflict"
    assert snapshot(member, reward) == before


# ---------------------------------------------------------------- cancelling


def test_cancelling_returns_points_with_their_original_expiry_and_stock(
    in_shop, assert_ledger_ok
):
    member = MemberFactory(shop=in_shop)
    soon = timezone.now() + timedelta(days=10)
    later = timezone.now() + timedelta(days=300)
    give(member, 60, expires_at=soon)
    give(member, 100, expires_at=later)
    reward = RewardFactory(shop=in_shop, points_price=100, stock=1)
    redemption = redeem_reward(member=member, reward=reward)
    assert open_lots(member) == [(later, 60)]

    cancelled = cancel_redemption(redemption=redemption, reason="changed mind")

    reward.refresh_from_db()
    assert cancelled.status == RedemptionStatus.CANCELLED
    assert cancelled.cancelled_at is not None
    assert balance(member) == 160
    assert reward.stock == 1
    # The 60 points of the soon lot come back expiring soon, not later.
    assert sum(p for e, p in open_lots(member) if e == soon) == 60
    assert sum(p for e, p in open_lots(member) if e == later) == 100
    assert_ledger_ok()


def test_cancelling_twice_changes_nothing_the_second_time(member, in_shop):
    reward = RewardFactory(shop=in_shop, stock=3)
    redemption = redeem_reward(member=member, reward=reward)
    first = cancel_redemption(redemption=redemption)
    before = snapshot(member, reward)

    again = cancel_redemption(redemption=redemption)

    assert again.pk == first.pk
    assert again.status == RedemptionStatus.CANCELLED
    assert again.cancelled_at == first.cancelled_at
    assert snapshot(member, reward) == before
    assert before[:2] == (500, 3)


# ---------------------------------------------------------------- catalogue


def test_visible_rewards_follow_the_windows(in_shop):
    now = timezone.now()
    day = timedelta(days=1)
    shown = RewardFactory(shop=in_shop, name="shown", points_price=1)
    teaser = RewardFactory(
        shop=in_shop,
        name="teaser",
        points_price=2,
        visible_from=now - day,
        available_from=now + day,
    )
    RewardFactory(shop=in_shop, name="inactive", is_active=False)
    RewardFactory(shop=in_shop, name="over", available_until=now - day)
    RewardFactory(shop=in_shop, name="hidden", visible_until=now - day)
    RewardFactory(shop=in_shop, name="not yet", available_from=now + day)

    names = [r.name for r in visible_rewards(shop=in_shop, now=now)]

    assert names == [shown.name, teaser.name]


def test_visible_rewards_tell_a_member_why_not(member, in_shop):
    now = timezone.now()
    ok = RewardFactory(shop=in_shop, points_price=100)
    dear = RewardFactory(shop=in_shop, points_price=900)
    empty = RewardFactory(shop=in_shop, points_price=50, stock=0)
    teaser = RewardFactory(
        shop=in_shop,
        points_price=10,
        visible_from=now - timedelta(days=1),
        available_from=now + timedelta(days=1),
    )

    rewards = {r.pk: r for r in visible_rewards(shop=in_shop, member=member)}

    assert rewards[ok.pk].availability.redeemable is True
    assert rewards[dear.pk].availability.reason == "insufficient_points"
    assert rewards[empty.pk].availability.reason == "out_of_stock"
    assert rewards[teaser.pk].availability.reason == "reward_not_available"
    assert rewards[dear.pk].availability.message
    assert [r.pk for r in redeemable_rewards(shop=in_shop, member=member)] == [ok.pk]


# ---------------------------------------------------------------- isolation


def test_another_shops_reward_is_not_found_and_not_listed(member, in_shop, other_shop):
    theirs = RewardFactory(shop=other_shop, points_price=1)
    ours = RewardFactory(shop=in_shop)

    with pytest.raises(NotFound):
        redeem_reward(member=member, reward=theirs)

    assert [r.pk for r in visible_rewards(shop=in_shop)] == [ours.pk]
    assert balance(member) == 500
    theirs.refresh_from_db()
    assert theirs.stock == 10
    with shop_scope(other_shop):
        assert Redemption.objects.count() == 0
        assert [r.pk for r in visible_rewards(shop=other_shop)] == [theirs.pk]


def test_another_shops_store_is_refused(member, in_shop, other_shop):
    reward = RewardFactory(shop=in_shop)
    store = StoreFactory(shop=other_shop)
    before = snapshot(member, reward)

    with pytest.raises(ValidationError) as refused:
        redeem_reward(member=member, reward=reward, store=store)

    assert refused.value.code == "invalid_store"
    assert snapshot(member, reward) == before


def test_another_shops_redemption_cannot_be_cancelled(in_shop, other_shop):
    stranger = MemberFactory(shop=other_shop)
    with shop_scope(other_shop):
        give(stranger, 100)
        reward = RewardFactory(shop=other_shop, stock=1)
        theirs = redeem_reward(member=stranger, reward=reward)

    with pytest.raises(NotFound):
        cancel_redemption(redemption=theirs)

    with shop_scope(other_shop):
        theirs.refresh_from_db()
        reward.refresh_from_db()
        assert theirs.status == RedemptionStatus.COMPLETED
        assert (balance(stranger), reward.stock) == (0, 0)


# ---------------------------------------------------------------- pending


def test_points_in_the_return_window_cannot_be_redeemed_yet(in_shop):
    member = MemberFactory(shop=in_shop)
    give(member, 50)
    ledger.credit(
        member=member,
        points=100,
        kind=EntryKind.EARN,
        source=EntrySource.PURCHASE,
        available_at=timezone.now() + timedelta(days=7),
    )
    reward = RewardFactory(shop=in_shop, points_price=100)
    before = snapshot(member, reward)

    (listed,) = visible_rewards(shop=in_shop, member=member)
    with pytest.raises(ValidationError) as refused:
        redeem_reward(member=member, reward=reward)

    assert listed.availability.reason == "insufficient_points"
    assert refused.value.code == "insufficient_points"
    assert snapshot(member, reward) == before == (150, 10, 0, 2)


# ---------------------------------------------------------------- speed


def test_the_catalogue_for_a_member_costs_the_same_few_queries(
    member, in_shop, django_assert_num_queries
):
    gold = Tier.objects.create(shop=in_shop, name="Gold", rank=1, min_spend=1000)
    Tier.objects.create(shop=in_shop, name="Normal", rank=0)
    MemberTier.objects.create(
        shop=in_shop, member=member, tier=gold, since=timezone.now()
    )
    for _ in range(2):
        redeem_reward(member=member, reward=RewardFactory(shop=in_shop, tiers=[gold]))
    with CaptureQueriesContext(connection) as few:
        visible_rewards(shop=in_shop, member=member)
    for _ in range(20):
        RewardFactory(shop=in_shop, tiers=[gold], points_price=1)

    with django_assert_num_queries(len(few.captured_queries)):
        rewards = visible_rewards(shop=in_shop, member=member)

    assert len(rewards) == 22


def test_an_erased_member_cannot_redeem(member, in_shop):
    reward = RewardFactory(shop=in_shop)
    Member.objects.filter(pk=member.pk).update(status=MemberStatus.ERASED)
    member.refresh_from_db()
    before = snapshot(member, reward)

    with pytest.raises(DomainError) as refused:
        redeem_reward(member=member, reward=reward)

    assert refused.value.code == "member_erased"
    assert snapshot(member, reward) == before
