"""Reads about tags: which members a tag's rules select, counts, a member's tags.

A tag's rule members are the shop's members (not erased) who meet ALL of the
tag's active rules. `rule_condition` turns one rule into a `Q` over Member, so
the whole selection is one queryset, evaluated by the database in one
statement, never a Python loop over members.

Day windows are calendar days in the shop's time zone: "the last D days" is
today and the D-1 days before it, from local midnight.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from members.models import (
    Member,
    MemberStatus,
    MemberTag,
    Purchase,
    Tag,
    TagRule,
    TagRuleKind,
)
from members.models.purchase import COUNTED_STATUSES
from shops.models import Shop


def window_start(*, shop: Shop, days: int, now: datetime | None = None) -> datetime:
    """Local midnight starting the last `days` calendar days (today included)."""
    today = timezone.localtime(now or timezone.now(), shop.zone).date()
    first_day = today - timedelta(days=days - 1)
    return datetime.combine(first_day, datetime.min.time(), tzinfo=shop.zone)


def current_month(*, shop: Shop, now: datetime | None = None) -> int:
    return timezone.localtime(now or timezone.now(), shop.zone).month


def rule_condition(
    rule: TagRule,
    *,
    shop: Shop,
    now: datetime | None = None,
    member_ids: Iterable[int] | None = None,
) -> Q:
    """The members `rule` selects, as a condition on Member."""
    params = rule.params
    kind = rule.kind
    if kind == TagRuleKind.MIN_TOTAL_SPENT:
        return Q(total_spent__gte=Decimal(str(params["amount"])))
    if kind == TagRuleKind.MIN_ORDERS_IN_DAYS:
        since = window_start(shop=shop, days=int(params["days"]), now=now)
        # One grouped subquery over the window's counted purchases (a semi-join
        # for the database), not a count per member.
        window = Purchase.objects.filter(
            shop=shop, status__in=COUNTED_STATUSES, occurred_at__gte=since
        )
        if member_ids is not None:
            window = window.filter(member_id__in=member_ids)
        busy = (
            window.order_by()
            .values("member_id")
            .annotate(n=Count("id"))
            .filter(n__gte=int(params["orders"]))
            .values("member_id")
        )
        return Q(pk__in=busy)
    if kind == TagRuleKind.NO_PURCHASE_IN_DAYS:
        since = window_start(shop=shop, days=int(params["days"]), now=now)
        # A member who never bought counts once they have been a member for
        # the whole window: yesterday's newcomer is not "lapsed".
        return Q(last_purchase_at__lt=since) | Q(
            last_purchase_at__isnull=True, joined_at__lt=since
        )
    if kind == TagRuleKind.BIRTHDAY_MONTH:
        month = int(params["month"]) or current_month(shop=shop, now=now)
        return Q(birthday_month=month)
    if kind == TagRuleKind.SOURCE_IS:
        return Q(source=params["source"])
    if kind == TagRuleKind.CUSTOM_FIELD_EQUALS:
        key, value = params["key"], params["value"]
        matches = Q(**{f"custom_fields__{key}": value})
        if not isinstance(value, str | bool):
            # Numbers may have been stored as text (DjangoJSONEncoder writes
            # Decimals as strings).
            matches |= Q(**{f"custom_fields__{key}": str(value)})
        return matches
    raise ValueError(f"Unknown tag rule kind {kind!r}")


def members_matching_rules(
    *,
    shop: Shop,
    rules: Iterable[TagRule],
    now: datetime | None = None,
    member_ids: Iterable[int] | None = None,
) -> QuerySet[Member]:
    """Members meeting ALL `rules`; none when there are no rules."""
    rules = list(rules)
    members = Member.objects.filter(shop=shop).exclude(status=MemberStatus.ERASED)
    if not rules:
        return members.none()
    if member_ids is not None:
        member_ids = list(member_ids)
        members = members.filter(pk__in=member_ids)
    for rule in rules:
        members = members.filter(
            rule_condition(rule, shop=shop, now=now, member_ids=member_ids)
        )
    return members


def tags_to_evaluate(*, shop: Shop, tag: Tag | None = None) -> QuerySet[Tag]:
    """Tags with active rules, or with rule-given rows left to clear."""
    tags = Tag.objects.filter(shop=shop)
    if tag is not None:
        tags = tags.filter(pk=tag.pk)
    has_rules = TagRule.objects.filter(shop=shop, tag=OuterRef("pk"), is_active=True)
    has_rule_rows = MemberTag.objects.filter(
        shop=shop, tag=OuterRef("pk"), source="rule"
    )
    return (
        tags.filter(Exists(has_rules) | Exists(has_rule_rows))
        .prefetch_related("rules")
        .order_by("pk")
    )


def active_rules(tag: Tag) -> list[TagRule]:
    """The tag's active rules (uses a prefetch when there is one)."""
    return [rule for rule in tag.rules.all() if rule.is_active]


def tags_with_member_counts(*, shop: Shop) -> QuerySet[Tag]:
    return Tag.objects.filter(shop=shop).annotate(member_count=Count("member_tags"))


def member_tags(*, shop: Shop, member: Member) -> QuerySet[MemberTag]:
    return (
        MemberTag.objects.filter(shop=shop, member=member)
        .select_related("tag")
        .order_by("tag__name")
    )
