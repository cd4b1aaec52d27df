"""Random sequences of ledger operations (hypothesis state machine): after every
step each invariant holds, the balance is what the successful operations add
up to, earlier entries are unchanged, and a refused debit really did not fit."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from points.models import EntryKind, EntrySource, PointsAccount, PointsEntry
from points.services import ledger, rules, settlement
from points.services.expiry import expire_due_lots
from shops.tenancy import shop_scope
from tests.members.factories import MemberFactory
from tests.points.conftest import ledger_problems
from tests.points.factories import EarningRuleFactory, PointsPolicyFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

points = st.integers(min_value=1, max_value=300)
expiry_days = st.one_of(st.none(), st.integers(min_value=-3, max_value=60))
pending_days = st.one_of(st.just(0), st.integers(min_value=1, max_value=10))


class LedgerMachine(RuleBasedStateMachine):
    shop = None  # set by the test

    def __init__(self):
        super().__init__()
        self.clock = timezone.now()
        self.clock_patch = mock.patch(
            "django.utils.timezone.now", side_effect=lambda: self.clock
        )
        self.clock_patch.start()
        self.expected = 0
        self.seen: dict[int, tuple] = {}
        self.credits: list[PointsEntry] = []
        self.redemptions: list[PointsEntry] = []
        self.purchases: list = []

    def teardown(self):
        self.clock_patch.stop()

    @initialize(refund_policy=st.sampled_from(["go_negative", "take_remaining"]))
    def setup(self, refund_policy):
        self.member = MemberFactory(shop=self.shop)
        PointsPolicyFactory(shop=self.shop)
        type(rules.policy_for(self.shop, cached=False)).objects.unscoped().filter(
            shop=self.shop
        ).update(refund_policy=refund_policy, expiry="months", expiry_months=1)
        rules.forget_cached(self.shop)
        self.account = ledger.account_for(self.member)

    # --- operations -------------------------------------------------------------

    @rule(amount=points, days=expiry_days, pending=pending_days)
    def credit(self, amount, days, pending):
        expires_at = None if days is None else self.clock + timedelta(days=days)
        entry = ledger.credit(
            member=self.member,
            points=amount,
            kind=EntryKind.EARN,
            source=EntrySource.CAMPAIGN,
            expires_at=expires_at,
            available_at=self.clock + timedelta(days=pending),
        )
        self.expected += amount
        self.credits.append(entry)

    @rule(amount=points)
    def debit(self, amount):
        fits = self.spendable() >= amount
        try:
            entry = ledger.debit(
                member=self.member,
                points=amount,
                kind=EntryKind.REDEEM,
                source=EntrySource.REWARD,
            )
        except ledger.InsufficientPoints:
            assert not fits
            return
        assert fits
        self.expected -= amount
        self.redemptions.append(entry)

    @rule()
    def spend_everything(self):
        amount = self.spendable()
        if amount > 0:
            self.redemptions.append(
                ledger.debit(
                    member=self.member,
                    points=amount,
                    kind=EntryKind.REDEEM,
                    source=EntrySource.REWARD,
                )
            )
            self.expected -= amount

    @rule(amount=st.integers(min_value=-300, max_value=300).filter(bool))
    def adjust(self, amount):
        fits = amount > 0 or self.spendable() >= -amount
        try:
            ledger.adjust(member=self.member, points=amount, reason="check")
        except ledger.InsufficientPoints:
            assert not fits
            return
        assert fits
        self.expected += amount

    @rule(amount=st.integers(min_value=1, max_value=400))
    def purchase(self, amount):
        purchase = settlement.record_purchase(
            shop=self.shop,
            member=self.member,
            external_order_id=f"H-{self.member.pk}-{len(self.purchases)}",
            amount=Decimal(amount),
        )
        if purchase.points_entry is not None:
            self.expected += purchase.points_entry.points
        self.purchases.append(purchase)

    @precondition(lambda self: self.purchases)
    @rule(data=st.data())
    def refund(self, data):
        purchase = data.draw(st.sampled_from(self.purchases))
        purchase.refresh_from_db()
        left = purchase.paid_amount - purchase.refunded_amount
        if left <= 0:
            return
        amount = data.draw(st.integers(min_value=1, max_value=int(left * 100)))
        refund = settlement.refund_purchase(
            purchase=purchase, amount=Decimal(amount) / 100
        )
        if refund.points_entry is not None:
            self.expected += refund.points_entry.points

    @precondition(lambda self: self.redemptions)
    @rule(data=st.data(), fraction=st.sampled_from([None, "0.5", "0.25"]))
    def restore(self, data, fraction):
        spent = data.draw(st.sampled_from(self.redemptions))
        entry = ledger.restore_consumptions(
            debit_entry=spent,
            reason="cancelled",
            source=EntrySource.REWARD,
            fraction=fraction,
        )
        if entry is not None:
            self.expected += entry.points

    @rule(days=st.integers(min_value=1, max_value=20))
    def time_passes_and_jobs_run(self, days):
        before = self.expired_total()
        self.clock += timedelta(days=days)
        expire_due_lots(shop=self.shop, now=self.clock)
        ledger.release_pending(shop=self.shop, now=self.clock)
        self.expected -= self.expired_total() - before

    def expired_total(self) -> int:
        return -sum(
            PointsEntry.objects.filter(
                account=self.account, kind=EntryKind.EXPIRE
            ).values_list("points", flat=True)
        )

    # --- checks -----------------------------------------------------------------

    def spendable(self):
        account = PointsAccount.objects.get(pk=self.account.pk)
        usable = ledger._spending_order(ledger._open_lots(account), now=self.clock)
        return sum(lot.remaining for lot in usable)

    @invariant()
    def ledger_invariants_hold(self):
        if not hasattr(self, "member"):
            return
        problems = ledger_problems(
            self.shop, now=self.clock, account_id=self.account.pk
        )
        assert not problems, problems

    @invariant()
    def balance_is_what_the_operations_add_up_to(self):
        if not hasattr(self, "member"):
            return
        account = PointsAccount.objects.get(pk=self.account.pk)
        assert account.balance == self.expected
        assert account.pending >= 0

    @invariant()
    def entries_are_never_changed(self):
        if not hasattr(self, "member"):
            return
        rows = PointsEntry.objects.filter(account=self.account).values_list(
            "id", "points", "total_after", "kind", "created_at"
        )
        current = {row[0]: row for row in rows}
        for pk, row in self.seen.items():
            assert current.get(pk) == row
        self.seen = current


def test_random_operation_sequences_keep_every_invariant(shop):
    EarningRuleFactory(shop=shop, points_per_unit="1.00")
    LedgerMachine.shop = shop
    with shop_scope(shop):
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.function_scoped_fixture,
                ],
            ),
        )
