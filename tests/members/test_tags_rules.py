"""Tag rules: each kind's meaning and boundaries, AND of rules, safety."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members.models import MemberChange, MemberTag
from members.services import tags as services
from tests.members.factories import (
    CustomFieldFactory,
    MemberFactory,
    PurchaseFactory,
    TagFactory,
    TagRuleFactory,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 10:00 on 15 May 2025 in Shanghai.
NOW = datetime(2025, 5, 15, 10, 0, tzinfo=SHANGHAI)


def tagged(tag, source=None):
    rows = MemberTag.objects.unscoped().filter(tag=tag)
    if source:
        rows = rows.filter(source=source)
    return set(rows.values_list("member__name", flat=True))


def rule(tag, kind, **params):
    return TagRuleFactory(tag=tag, kind=kind, params=params)


@pytest.fixture
def tag(in_shop):
    return TagFactory(shop=in_shop, name="VIP")


def member(shop, name, **kwargs):
    return MemberFactory(shop=shop, name=name, **kwargs)


def test_total_spent_counts_exactly_the_amount(in_shop, tag):
    member(in_shop, "exactly", total_spent=Decimal("1000.00"))
    member(in_shop, "short", total_spent=Decimal("999.99"))
    rule(tag, "min_total_spent", amount="1000.00")

    result = services.apply_tag_rules(shop=in_shop, now=NOW)

    assert tagged(tag, "rule") == {"exactly"}
    assert result == {"added": 1, "removed": 0}


def test_orders_in_days_counts_local_calendar_days(in_shop, tag):
    # "last 7 days" = 9 May 00:00 to now, Shanghai time.
    start = datetime(2025, 5, 9, 0, 0, tzinfo=SHANGHAI)
    inside, edge_out, refunded = (
        member(in_shop, n) for n in ("inside", "edge_out", "cancelled")
    )
    PurchaseFactory(member=inside, occurred_at=start)
    PurchaseFactory(member=inside, occurred_at=NOW)
    PurchaseFactory(member=edge_out, occurred_at=start - timedelta(seconds=1))
    PurchaseFactory(member=edge_out, occurred_at=NOW)
    PurchaseFactory(member=refunded, occurred_at=NOW)
    PurchaseFactory(member=refunded, occurred_at=NOW, status="cancelled")
    rule(tag, "min_orders_in_days", orders=2, days=7)

    services.apply_tag_rules(shop=in_shop, now=NOW)

    assert tagged(tag) == {"inside"}


def test_no_purchase_in_days_takes_lapsed_members_not_newcomers(in_shop, tag):
    start = datetime(2025, 4, 16, 0, 0, tzinfo=SHANGHAI)  # last 30 days
    member(in_shop, "lapsed", last_purchase_at=start - timedelta(seconds=1))
    member(in_shop, "recent", last_purchase_at=start)
    member(in_shop, "never bought, old", joined_at=start - timedelta(days=1))
    member(in_shop, "never bought, new", joined_at=NOW)
    rule(tag, "no_purchase_in_days", days=30)

    services.apply_tag_rules(shop=in_shop, now=NOW)

    assert tagged(tag) == {"lapsed", "never bought, old"}


def test_birthday_month_zero_is_this_month_in_the_shop_time_zone(in_shop, tag):
    member(in_shop, "may", birthday_month=5)
    member(in_shop, "june", birthday_month=6)
    rule(tag, "birthday_month", month=0)
    # 31 May 20:00 UTC is already 1 June in Shanghai.
    late_may_utc = datetime(2025, 5, 31, 20, 0, tzinfo=ZoneInfo("UTC"))

    services.apply_tag_rules(shop=in_shop, now=NOW)
    in_may = tagged(tag)
    services.apply_tag_rules(shop=in_shop, now=late_may_utc)

    assert in_may == {"may"}
    assert tagged(tag) == {"june"}


def test_source_and_custom_field_rules(in_shop, tag):
    CustomFieldFactory(shop=in_shop, key="tea", label="Tea", field_type="text")
    member(in_shop, "qr oolong", source="qr", custom_fields={"tea": "oolong"})
    member(in_shop, "qr green", source="qr", custom_fields={"tea": "green"})
    member(in_shop, "counter oolong", custom_fields={"tea": "oolong"})
    rule(tag, "source_is", source="qr")
    rule(tag, "custom_field_equals", key="tea", value="oolong")

    services.apply_tag_rules(shop=in_shop, now=NOW)

    assert tagged(tag) == {"qr oolong"}


def test_members_who_stop_matching_lose_the_rule_tag_but_keep_hand_tags(in_shop, tag):
    rich = member(in_shop, "rich", total_spent=Decimal("500"))
    poor = member(in_shop, "poor", total_spent=Decimal("5"))
    services.tag_member(shop=in_shop, member=poor, tag=tag)
    rule(tag, "min_total_spent", amount="100")
    services.apply_tag_rules(shop=in_shop, now=NOW)
    rich.total_spent = Decimal("50")
    rich.save()

    result = services.apply_tag_rules(shop=in_shop, now=NOW)

    assert tagged(tag) == {"poor"}
    assert tagged(tag, "manual") == {"poor"}
    assert result == {"added": 0, "removed": 1}


def test_running_twice_changes_nothing(in_shop, tag):
    member(in_shop, "a", total_spent=Decimal("500"))
    rule(tag, "min_total_spent", amount="100")

    first = services.apply_tag_rules(shop=in_shop, now=NOW)
    second = services.apply_tag_rules(shop=in_shop, now=NOW)

    assert first == {"added": 1, "removed": 0}
    assert second == {"added": 0, "removed": 0}


def test_an_inactive_or_deleted_rule_no_longer_keeps_members(in_shop, tag):
    member(in_shop, "a", total_spent=Decimal("500"))
    only = rule(tag, "min_total_spent", amount="100")
    services.apply_tag_rules(shop=in_shop, now=NOW)

    services.update_tag_rule(rule=only, is_active=False)
    services.apply_tag_rules(shop=in_shop, now=NOW)

    assert tagged(tag) == set()


def test_statements_do_not_grow_with_the_number_of_members(in_shop, tag):
    rule(tag, "min_orders_in_days", orders=1, days=30)
    rule(tag, "min_total_spent", amount="10")

    def statements(n):
        for i in range(n):
            m = member(in_shop, f"m{n}-{i}", total_spent=Decimal("20"))
            PurchaseFactory(member=m, occurred_at=NOW)
        MemberTag.objects.unscoped().all().delete()
        with CaptureQueriesContext(connection) as queries:
            result = services.apply_tag_rules(shop=in_shop, now=NOW)
        return len(queries), result

    few, few_result = statements(2)
    many, many_result = statements(40)

    assert few == many
    assert few_result["added"] == 2
    assert many_result["added"] == 42


def test_rules_of_one_shop_never_touch_another_shops_members(in_shop, tag, other_shop):
    theirs = TagFactory(shop=other_shop, name="VIP")
    member(other_shop, "theirs", total_spent=Decimal("900"))
    member(in_shop, "ours", total_spent=Decimal("900"))
    rule(tag, "min_total_spent", amount="100")

    services.apply_tag_rules(shop=in_shop, now=NOW)

    assert tagged(tag) == {"ours"}
    assert tagged(theirs) == set()


def test_evaluating_one_member_leaves_the_others_alone(in_shop, tag):
    one = member(in_shop, "one", total_spent=Decimal("900"))
    member(in_shop, "other", total_spent=Decimal("900"))
    rule(tag, "min_total_spent", amount="100")

    services.apply_tag_rules(shop=in_shop, member_ids=[one.pk], now=NOW)

    assert tagged(tag) == {"one"}


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("min_total_spent", {"amount": "-1"}, "amount"),
        ("min_total_spent", {"amount": "lots"}, "amount"),
        ("min_orders_in_days", {"orders": 2, "days": 0}, "days"),
        ("min_orders_in_days", {"orders": 0, "days": 30}, "orders"),
        ("no_purchase_in_days", {"days": "-5"}, "days"),
        ("birthday_month", {"month": 13}, "month"),
        ("source_is", {"source": "telepathy"}, "source"),
        ("custom_field_equals", {"key": "nope", "value": "x"}, "key"),
        ("unknown_kind", {}, "kind"),
    ],
)
def test_bad_rule_settings_are_refused(in_shop, tag, kind, params, field):
    with pytest.raises(ValidationError) as refused:
        services.create_tag_rule(shop=in_shop, tag=tag, kind=kind, params=params)

    assert field in refused.value.message_dict
    assert tag.rules.count() == 0


def test_custom_field_values_are_checked_against_the_field_type(in_shop, tag):
    CustomFieldFactory(shop=in_shop, key="visits", label="Visits", field_type="number")

    with pytest.raises(ValidationError) as refused:
        services.create_tag_rule(
            shop=in_shop,
            tag=tag,
            kind="custom_field_equals",
            params={"key": "visits", "value": "many"},
        )
    saved = services.create_tag_rule(
        shop=in_shop,
        tag=tag,
        kind="custom_field_equals",
        params={"key": "visits", "value": "3"},
    )

    assert "value" in refused.value.message_dict
    assert saved.params == {"key": "visits", "value": 3}


def test_rule_tags_are_not_written_on_the_timeline(in_shop, tag):
    member(in_shop, "a", total_spent=Decimal("500"))
    rule(tag, "min_total_spent", amount="100")

    services.apply_tag_rules(shop=in_shop, now=NOW)

    assert MemberChange.objects.count() == 0
