"""The member list's filters, shared by `GET /api/v1/members` and the admin.

Every filter and sort is served by an index led by the shop (see
`Member.Meta.indexes`); "has tag" is an EXISTS on MemberTag's (shop, member,
tag) unique index.
"""

from __future__ import annotations

from datetime import timedelta

import django_filters
import django_filters.fields
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from members.models import Member, MemberSource, MemberStatus, MemberTag
from members.selectors.members import member_code_of

# PostgreSQL refuses UTC offsets from 16 hours on (Python allows up to 24).
MAX_UTC_OFFSET = timedelta(hours=16)


class _IsoDateTimeField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value):
        parsed = super().to_python(value)
        offset = parsed.utcoffset() if parsed is not None else None
        if offset is not None and abs(offset) >= MAX_UTC_OFFSET:
            # A 400 ("Enter a valid date/time."), not the database's 500.
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = _IsoDateTimeField


# API `ordering` value -> model field; "-" in front sorts descending.
ORDERING_FIELDS = {
    "joined_at": "joined_at",
    "last_purchase_at": "last_purchase_at",
    "total_spent": "total_spent",
    "order_count": "order_count",
    "name": "name",
    "birthday": "birthday_month",
    "id": "id",
}


class MemberFilter(django_filters.FilterSet):
    tag = django_filters.NumberFilter(method="filter_tag", label=_("Has tag (tag id)"))
    home_store = django_filters.NumberFilter(
        field_name="home_store_id", label=_("Home store (store id)")
    )
    source = django_filters.ChoiceFilter(choices=MemberSource.choices)
    status = django_filters.ChoiceFilter(choices=MemberStatus.choices)
    member_code = django_filters.CharFilter(
        method="filter_member_code", label=_("Member code")
    )
    external_id = django_filters.CharFilter(label=_("External ID"))
    joined_after = IsoDateTimeFilter(
        field_name="joined_at", lookup_expr="gte", label=_("Joined at or after")
    )
    joined_before = IsoDateTimeFilter(
        field_name="joined_at", lookup_expr="lt", label=_("Joined before")
    )
    birthday_month = django_filters.NumberFilter(
        field_name="birthday_month", label=_("Birthday month (1-12)")
    )
    last_purchase_after = IsoDateTimeFilter(
        field_name="last_purchase_at",
        lookup_expr="gte",
        label=_("Last purchase at or after"),
    )
    last_purchase_before = IsoDateTimeFilter(
        field_name="last_purchase_at", lookup_expr="lt", label=_("Last purchase before")
    )
    total_spent_min = django_filters.NumberFilter(
        field_name="total_spent", lookup_expr="gte", label=_("Total spent at least")
    )
    total_spent_max = django_filters.NumberFilter(
        field_name="total_spent", lookup_expr="lte", label=_("Total spent at most")
    )
    order_count_min = django_filters.NumberFilter(
        field_name="order_count", lookup_expr="gte", label=_("Orders at least")
    )
    order_count_max = django_filters.NumberFilter(
        field_name="order_count", lookup_expr="lte", label=_("Orders at most")
    )

    class Meta:
        model = Member
        fields: list = []

    def filter_tag(self, queryset, name, value):
        return queryset.filter(
            Exists(
                MemberTag.objects.filter(
                    shop_id=OuterRef("shop_id"), member_id=OuterRef("pk"), tag_id=value
                )
            )
        )

    def filter_member_code(self, queryset, name, value):
        code = member_code_of(value)
        return queryset.filter(member_code=code) if code else queryset.none()


def parse_ordering(value: str | None) -> tuple[str, ...]:
    """An API `ordering` value ("-total_spent") as ORDER BY fields, id last."""
    value = (value or "").strip() or "-id"
    descending = value.startswith("-")
    field = ORDERING_FIELDS.get(value.lstrip("-"))
    if field is None:
        raise ValidationError(
            {
                "ordering": _("Sort by one of: %(fields)s (with - for descending).")
                % {"fields": ", ".join(ORDERING_FIELDS)}
            }
        )
    sign = "-" if descending else ""
    if field == "id":
        return (f"{sign}id",)
    if field == "birthday_month":
        return (f"{sign}birthday_month", f"{sign}birthday_day", f"{sign}id")
    return (f"{sign}{field}", f"{sign}id")
