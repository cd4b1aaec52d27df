"""What the points app adds to the members API through its seams
(`members.extensions`): the `points` section of the member resource (one
extra statement for a whole page) and the filters `points_min`, `points_max`
and `points_expiring_within_days` of `GET /api/v1/members`. Called from
`PointsConfig.ready()`.
"""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.db.models import Exists, OuterRef, Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MAX_POINTS = 10**15
MAX_DAYS = 3650
ACCOUNTS_ATTR = "points_account_rows"


def prefetch_points(queryset):
    """The page's points accounts with their points expiring in 30 days: one
    statement for the whole page."""
    from points.api.figures import with_expiring_soon
    from points.models import PointsAccount

    return queryset.prefetch_related(
        Prefetch(
            "points_accounts",
            queryset=with_expiring_soon(PointsAccount.objects.all()),
            to_attr=ACCOUNTS_ATTR,
        )
    )


def points_section_of(member) -> dict:
    from points.api.figures import balance_data, with_expiring_soon
    from points.models import PointsAccount

    rows = getattr(member, ACCOUNTS_ATTR, None)
    if rows is None:  # not prefetched (a single member just written)
        rows = list(
            with_expiring_soon(
                PointsAccount.objects.filter(shop_id=member.shop_id, member=member)
            )
        )
    account = rows[0] if rows else None
    return {
        **balance_data(account),
        "expiring_soon": account.expiring_soon if account is not None else 0,
    }


def _section_serializer():
    from points.api.serializers import PointsSummarySerializer

    @extend_schema_field(PointsSummarySerializer)
    class MemberPointsField(serializers.Field):
        def to_representation(self, member):
            return points_section_of(member)

    return MemberPointsField(
        source="*",
        read_only=True,
        help_text=_("The member's points now, and those expiring in 30 days."),
    )


def _accounts(**conditions):
    from points.models import PointsAccount

    return PointsAccount.objects.filter(
        shop_id=OuterRef("shop_id"), member_id=OuterRef("pk"), **conditions
    )


def filter_points_min(queryset, name, value):
    """Balance at least `value` (members without an account hold 0)."""
    if value <= 0:
        return queryset.exclude(Exists(_accounts(balance__lt=value)))
    return queryset.filter(Exists(_accounts(balance__gte=value)))


def filter_points_max(queryset, name, value):
    """Balance at most `value` (members without an account hold 0)."""
    if value >= 0:
        return queryset.exclude(Exists(_accounts(balance__gt=value)))
    return queryset.filter(Exists(_accounts(balance__lte=value)))


def filter_points_expiring(queryset, name, value):
    """Members with points that expire within `value` days: the open lots'
    (shop, expires_at) index finds them, set-based."""
    from points.api.figures import expiring_window
    from points.models import PointsLot

    start, _end = expiring_window()
    members = (
        PointsLot.objects.filter(
            remaining__gt=0,
            expires_at__gt=start,
            expires_at__lte=start + timedelta(days=int(value)),
        )
        .order_by()
        .values("account__member_id")
    )
    return queryset.filter(pk__in=members)


def register() -> None:
    from members.extensions import (
        MemberSection,
        register_member_filter,
        register_member_section,
    )

    register_member_section(
        MemberSection(
            name="points", field=_section_serializer, prefetch=prefetch_points
        )
    )
    register_member_filter(
        "points_min",
        django_filters.NumberFilter(
            method=filter_points_min,
            min_value=-MAX_POINTS,
            max_value=MAX_POINTS,
            decimal_places=0,
            label=_("Points balance at least"),
        ),
    )
    register_member_filter(
        "points_max",
        django_filters.NumberFilter(
            method=filter_points_max,
            min_value=-MAX_POINTS,
            max_value=MAX_POINTS,
            decimal_places=0,
            label=_("Points balance at most"),
        ),
    )
    register_member_filter(
        "points_expiring_within_days",
        django_filters.NumberFilter(
            method=filter_points_expiring,
            min_value=1,
            max_value=MAX_DAYS,
            decimal_places=0,
            label=_("Has points expiring within this many days"),
        ),
    )
