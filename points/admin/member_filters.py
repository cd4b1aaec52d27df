"""Points filters for the staff's member list (added through
members.extensions, so the members app does not import this one).

Each is a semi-join on an index led by the shop: open lots by expiry for
"expiring soon", accounts by member for the balance ranges.
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import DropdownFilter

from members.extensions import register_member_list_filter
from points.models import PointsAccount, PointsLot

EXPIRING_DAYS = 30
# value -> (label, lowest balance, highest balance or None)
BALANCE_RANGES = {
    "none": (_("No points"), None, 0),
    "1-99": (_("1 to 99"), 1, 99),
    "100-999": (_("100 to 999"), 100, 999),
    "1000-4999": (_("1,000 to 4,999"), 1000, 4999),
    "5000+": (_("5,000 or more"), 5000, None),
}


class PointsExpiringFilter(DropdownFilter):
    title = _("points expiring")
    parameter_name = "points_expiring"

    def lookups(self, request, model_admin):
        return [("30", _("In the next 30 days"))]

    def queryset(self, request, queryset):
        if self.value() != "30":
            return queryset
        now = timezone.now()
        lots = PointsLot.objects.filter(
            remaining__gt=0,
            expires_at__gt=now,
            expires_at__lte=now + datetime.timedelta(days=EXPIRING_DAYS),
        )
        return queryset.filter(pk__in=lots.values("account__member_id"))


class PointsBalanceFilter(DropdownFilter):
    title = _("points balance")
    parameter_name = "points_balance"

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _low, _high) in BALANCE_RANGES.items()]

    def queryset(self, request, queryset):
        wanted = BALANCE_RANGES.get(self.value() or "")
        if wanted is None:
            return queryset
        _label, low, high = wanted
        if low is None:
            # No account at all, or an account at zero or below.
            holders = PointsAccount.objects.filter(balance__gt=0)
            return queryset.exclude(pk__in=holders.values("member_id"))
        accounts = PointsAccount.objects.filter(balance__gte=low)
        if high is not None:
            accounts = accounts.filter(balance__lte=high)
        return queryset.filter(pk__in=accounts.values("member_id"))


register_member_list_filter(PointsExpiringFilter)
register_member_list_filter(PointsBalanceFilter)
