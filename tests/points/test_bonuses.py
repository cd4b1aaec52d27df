"""Bonuses: registration and profile once, referral both sides once after the
first completed purchase, birthday once a year (Feb 29 on Feb 28)."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.models import Member
from points.models import EntrySource, PointsAccount, PointsEntry, RuleKind
from points.services import bonuses, settlement
from points.tasks import award_signup_bonuses_everywhere
from shops.models import OutboxEvent
from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory
from tests.points.factories import EarningRuleFactory
from tiers.models import MemberTier, Tier

pytestmark = pytest.mark.django_db


def balance(member):
    account = PointsAccount.objects.filter(member=member).first()
    return account.balance if account else 0


def buy(shop, member, order, amount="10"):
    return settlement.record_purchase(
        shop=shop, member=member, external_order_id=order, amount=amount
    )


# --- registration and profile ---------------------------------------------------


def test_registration_bonus_once_per_member(in_shop, member):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.REGISTRATION, points=30)

    first = bonuses.award_registration_bonus(member=member)
    again = bonuses.award_registration_bonus(member=member)

    assert first.points == 30
    assert again.pk == first.pk
    assert first.source == EntrySource.REGISTRATION
    assert balance(member) == 30


def test_profile_bonus_needs_a_complete_profile(in_shop):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.PROFILE, points=20)
    member = MemberFactory(shop=in_shop, name="Li", gender="")

    assert bonuses.award_profile_bonus(member=member) is None
    member.gender, member.birthday_month, member.birthday_day = "female", 3, 8
    assert bonuses.award_profile_bonus(member=member).points == 20
    assert bonuses.award_profile_bonus(member=member).replayed
    assert balance(member) == 20


def test_signup_task_gives_both_bonuses_set_based_and_once(in_shop, eager_tasks):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.REGISTRATION, points=30)
    EarningRuleFactory(shop=in_shop, kind=RuleKind.PROFILE, points=20)
    complete = MemberFactory(
        shop=in_shop, gender="male", birthday_month=1, birthday_day=2
    )
    plain = MemberFactory(shop=in_shop)
    long_ago = MemberFactory(shop=in_shop, joined_at=timezone.now() - timedelta(30))
    Member.objects.unscoped().filter(pk=long_ago.pk).update(
        updated_at=timezone.now() - timedelta(30)
    )
    gone = MemberFactory(shop=in_shop, status="inactive")

    assert award_signup_bonuses_everywhere() >= 1
    assert bonuses.award_signup_bonuses(shop=in_shop) == 0

    assert (balance(complete), balance(plain)) == (50, 30)
    assert (balance(long_ago), balance(gone)) == (0, 0)
    entry = PointsEntry.objects.get(idempotency_key=f"profile:{complete.pk}")
    assert entry.total_after in (20, 50)
    assert OutboxEvent.objects.filter(topic="points.earned").count() == 3


@pytest.mark.postgres
def test_signup_bonuses_run_in_a_fixed_number_of_statements(in_shop):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.REGISTRATION, points=30)

    def run_with(count):
        MemberFactory.create_batch(count, shop=in_shop)
        with CaptureQueriesContext(connection) as queries:
            bonuses.award_signup_bonuses(shop=in_shop)
        return len(queries)

    assert run_with(2) == run_with(30)


def test_signup_bonuses_pay_a_negative_balance_first(in_shop, member):
    from points.services import ledger

    ledger.credit(member=member, points=10, kind="earn", source="campaign")
    ledger.debit(
        member=member, points=25, kind="reverse", source="refund", allow_negative=True
    )
    EarningRuleFactory(shop=in_shop, kind=RuleKind.REGISTRATION, points=30)

    bonuses.award_signup_bonuses(shop=in_shop)

    assert balance(member) == 15
    assert PointsEntry.objects.get(source="registration").lots.get().remaining == 15


# --- referral ---------------------------------------------------------------------


def test_referral_pays_both_sides_after_the_first_purchase_only(in_shop):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.REFERRAL, points=50)
    referrer = MemberFactory(shop=in_shop)
    newcomer = MemberFactory(shop=in_shop, referred_by=referrer)
    assert balance(referrer) == balance(newcomer) == 0

    buy(in_shop, newcomer, "F-1")
    buy(in_shop, newcomer, "F-2")

    assert (balance(referrer), balance(newcomer)) == (50, 50)
    keys = set(
        PointsEntry.objects.filter(source=EntrySource.REFERRAL).values_list(
            "idempotency_key", flat=True
        )
    )
    assert keys == {
        f"referral:{newcomer.pk}:referrer",
        f"referral:{newcomer.pk}:referee",
    }


def test_a_referral_bonus_again_changes_nothing(in_shop):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.REFERRAL, points=50)
    referrer = MemberFactory(shop=in_shop)
    newcomer = MemberFactory(shop=in_shop, referred_by=referrer)
    purchase = buy(in_shop, newcomer, "F-1")

    bonuses.award_referral_bonus(purchase=purchase)

    assert (balance(referrer), balance(newcomer)) == (50, 50)


def test_no_referrer_no_bonus(in_shop, member):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.REFERRAL, points=50)

    buy(in_shop, member, "F-1")

    assert not PointsEntry.objects.filter(source=EntrySource.REFERRAL).exists()


# --- birthday -------------------------------------------------------------------


def test_birthday_bonus_once_a_year_with_the_tier_gift(in_shop):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.BIRTHDAY, points=100)
    Tier.objects.unscoped().create(shop=in_shop, name="Normal", rank=0)
    vip = Tier.objects.unscoped().create(
        shop=in_shop, name="VIP", rank=1, birthday_points=200
    )
    plain = MemberFactory(shop=in_shop, birthday_month=6, birthday_day=1)
    star = MemberFactory(shop=in_shop, birthday_month=6, birthday_day=1)
    MemberTier.objects.unscoped().create(
        shop=in_shop, member=star, tier=vip, since=timezone.now()
    )
    other_day = MemberFactory(shop=in_shop, birthday_month=6, birthday_day=2)

    assert bonuses.award_birthday_bonuses(shop=in_shop, today=date(2026, 6, 1)) == 2
    assert bonuses.award_birthday_bonuses(shop=in_shop, today=date(2026, 6, 1)) == 0

    assert (balance(plain), balance(star), balance(other_day)) == (100, 300, 0)
    assert bonuses.award_birthday_bonuses(shop=in_shop, today=date(2027, 6, 1)) == 2
    assert balance(plain) == 200


def test_leap_day_birthdays_on_feb_28_in_other_years(in_shop):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.BIRTHDAY, points=10)
    leap = MemberFactory(shop=in_shop, birthday_month=2, birthday_day=29)

    assert bonuses.award_birthday_bonuses(shop=in_shop, today=date(2027, 2, 28)) == 1
    assert bonuses.award_birthday_bonuses(shop=in_shop, today=date(2028, 2, 28)) == 0
    assert bonuses.award_birthday_bonuses(shop=in_shop, today=date(2028, 2, 29)) == 1
    assert balance(leap) == 20


def test_birthdays_are_per_shop(in_shop, other_shop):
    EarningRuleFactory(shop=in_shop, kind=RuleKind.BIRTHDAY, points=10)
    EarningRuleFactory(shop=other_shop, kind=RuleKind.BIRTHDAY, points=10)
    stranger = MemberFactory(shop=other_shop, birthday_month=5, birthday_day=5)

    assert bonuses.award_birthday_bonuses(shop=in_shop, today=date(2026, 5, 5)) == 0
    with shop_scope(other_shop):
        assert balance(stranger) == 0


def test_the_birthday_task_uses_the_shops_today(in_shop, eager_tasks):
    from points.tasks import award_birthday_bonuses_everywhere

    EarningRuleFactory(shop=in_shop, kind=RuleKind.BIRTHDAY, points=88)
    today = timezone.localtime(timezone.now(), in_shop.zone).date()
    member = MemberFactory(
        shop=in_shop, birthday_month=today.month, birthday_day=today.day
    )

    award_birthday_bonuses_everywhere()
    award_birthday_bonuses_everywhere()

    assert balance(member) == 88
    assert OutboxEvent.objects.filter(topic="points.earned").count() == 1
