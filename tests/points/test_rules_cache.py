"""The points policy and rules are read once per process and shop, for a few
seconds: every purchase of a till names the shop afresh, yet a change made
here applies at once and a change made elsewhere within CACHE_SECONDS."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from points.services import rules
from shops.models import Shop
from tests.factories import StoreFactory
from tests.points.factories import EarningRuleFactory, PointsPolicyFactory

pytestmark = pytest.mark.django_db


def reads(function, *args):
    with CaptureQueriesContext(connection) as queries:
        value = function(*args)
    return value, len(queries)


def fresh(shop):
    """The shop as the next request finds it: another instance."""
    return Shop.objects.get(pk=shop.pk)


def test_the_next_request_of_the_shop_reads_nothing(in_shop):
    EarningRuleFactory(shop=in_shop, points_per_unit="2.00")
    _rules, first = reads(rules.rules_for, fresh(in_shop))

    found, again = reads(rules.rules_for, fresh(in_shop))

    assert first >= 1
    assert again == 0
    assert found["purchase"].points_per_unit == 2


def test_a_saved_rule_or_policy_applies_at_once(in_shop):
    rule = EarningRuleFactory(shop=in_shop, points_per_unit="2.00")
    policy = PointsPolicyFactory(shop=in_shop, pending_days=0)
    rules.rules_for(fresh(in_shop))

    rule.points_per_unit = 3
    rule.save()
    policy.pending_days = 7
    policy.save()

    assert rules.rules_for(fresh(in_shop))["purchase"].points_per_unit == 3
    assert rules.policy_for(fresh(in_shop)).pending_days == 7


def test_excluded_stores_and_deleted_rules_apply_at_once(in_shop):
    rule = EarningRuleFactory(shop=in_shop)
    store = StoreFactory(shop=in_shop)
    rules.rules_for(fresh(in_shop))

    rule.excluded_stores.add(store)
    assert rules.rules_for(fresh(in_shop))["purchase"].excluded_store_ids == {store.pk}

    rule.delete()
    assert rules.rules_for(fresh(in_shop)) == {}


def test_a_change_made_by_another_process_applies_within_the_cache_time(
    in_shop, monkeypatch
):
    EarningRuleFactory(shop=in_shop, points_per_unit="2.00")
    rules.rules_for(fresh(in_shop))
    # Another process's change: no signal reaches this one.
    type(rules.rules_for(in_shop)["purchase"]).objects.filter(shop=in_shop).update(
        points_per_unit=5
    )
    assert rules.rules_for(fresh(in_shop))["purchase"].points_per_unit == 2

    later = rules.time.monotonic() + rules.CACHE_SECONDS + 0.1
    monkeypatch.setattr(rules.time, "monotonic", lambda: later)

    assert rules.rules_for(fresh(in_shop))["purchase"].points_per_unit == 5


def test_shops_never_share_an_entry(in_shop, other_shop):
    EarningRuleFactory(shop=in_shop, points_per_unit="2.00")
    rules.rules_for(fresh(in_shop))

    assert rules.rules_for(fresh(other_shop)) == {}
    assert rules.policy_for(fresh(other_shop)).shop_id == other_shop.pk


def test_a_cached_default_policy_holds_no_requests_shop(in_shop):
    shop = fresh(in_shop)

    policy = rules.policy_for(shop)

    assert policy.pk is None
    assert policy.shop_id == shop.pk
    assert not policy._state.fields_cache
