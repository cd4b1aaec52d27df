"""List filters of the member admin, each served by an index led by the shop."""

from __future__ import annotations

import datetime
import zoneinfo

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import DropdownFilter, RangeDateFilter

from members.models import MemberTag, Tag
from shops.models import Store

MONTHS = [
    (1, _("January")),
    (2, _("February")),
    (3, _("March")),
    (4, _("April")),
    (5, _("May")),
    (6, _("June")),
    (7, _("July")),
    (8, _("August")),
    (9, _("September")),
    (10, _("October")),
    (11, _("November")),
    (12, _("December")),
]


class TagFilter(DropdownFilter):
    title = _("tag")
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        if request.shop is None:
            return []
        return list(Tag.objects.filter(shop=request.shop).values_list("id", "name"))

    def queryset(self, request, queryset):
        value = self.value()
        if not value or not str(value).isdigit():
            return queryset
        return queryset.filter(
            pk__in=MemberTag.objects.filter(tag_id=int(value)).values("member_id")
        )


class StoreFilter(DropdownFilter):
    title = _("home store")
    parameter_name = "home_store"

    def lookups(self, request, model_admin):
        if request.shop is None:
            return []
        return list(Store.objects.filter(shop=request.shop).values_list("id", "name"))

    def queryset(self, request, queryset):
        value = self.value()
        if not value or not str(value).isdigit():
            return queryset
        return queryset.filter(home_store_id=int(value))


class BirthdayMonthFilter(DropdownFilter):
    title = _("birthday month")
    parameter_name = "birthday_month"

    def lookups(self, request, model_admin):
        return MONTHS

    def queryset(self, request, queryset):
        value = self.value()
        if not value or not str(value).isdigit():
            return queryset
        return queryset.filter(birthday_month=int(value))


class DayRangeFilter(RangeDateFilter):
    """Whole days in the shop's time zone, "to" included."""

    def queryset(self, request, queryset):
        shop = getattr(request, "shop", None)
        zone = zoneinfo.ZoneInfo(shop.time_zone if shop else "UTC")
        filters = {}
        for suffix, lookup, extra in (("_from", "gte", 0), ("_to", "lt", 1)):
            raw = self.used_parameters.get(f"{self.parameter_name}{suffix}")
            if not raw or not isinstance(raw, str):
                continue
            try:
                day = forms.DateField().clean(raw)
            except ValidationError:
                continue
            start = datetime.datetime.combine(
                day + datetime.timedelta(days=extra), datetime.time(), tzinfo=zone
            )
            filters[f"{self.parameter_name}__{lookup}"] = start
        return queryset.filter(**filters)
