"""The rules editor: the shop's points policy (one per shop) and its earning
rules (one per kind). Managers and owners change them; everyone may read."""

from __future__ import annotations

from django.contrib import admin
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _

from points.models import EarningRule, PointsPolicy
from shops.admin.base import EVERYONE, MANAGERS, ShopScopedAdmin

from .forms import EarningRuleForm, PointsPolicyForm
from .liability import LiabilityReportLink


@admin.register(PointsPolicy)
class PointsPolicyAdmin(LiabilityReportLink, ShopScopedAdmin):
    form = PointsPolicyForm
    view_roles = EVERYONE
    add_roles = change_roles = MANAGERS
    delete_roles = frozenset()
    actions_list = ("liability_report",)
    list_display = (
        "__str__",
        "expiry",
        "pending_days",
        "refund_policy",
        "daily_cap",
        "cash_points",
        "cash_value",
        "cash_max_share",
        "updated_at",
    )
    fieldsets = (
        (
            _("Expiry and return window"),
            {"fields": ("expiry", "expiry_months", "pending_days")},
        ),
        (_("Refunds and caps"), {"fields": ("refund_policy", "daily_cap")}),
        (
            _("Points as cash"),
            {
                "fields": (
                    "cash_points",
                    "cash_value",
                    "cash_min_points",
                    "cash_max_share",
                )
            },
        ),
    )

    def has_add_permission(self, request, *args):
        # One policy per shop: once it exists, it is changed, not added.
        if not super().has_add_permission(request, *args):
            return False
        return not PointsPolicy.objects.filter(shop=request.shop).exists()

    def changelist_view(self, request, extra_context=None):
        # A list of one: open the shop's policy (or the form for a first one).
        if request.shop is not None:
            policy = PointsPolicy.objects.filter(shop=request.shop).first()
            if policy is not None:
                return redirect("admin:points_pointspolicy_change", policy.pk)
            if self.has_add_permission(request):
                return redirect("admin:points_pointspolicy_add")
        return super().changelist_view(request, extra_context)


@admin.register(EarningRule)
class EarningRuleAdmin(ShopScopedAdmin):
    form = EarningRuleForm
    view_roles = EVERYONE
    add_roles = change_roles = delete_roles = MANAGERS
    list_display = (
        "kind",
        "is_active",
        "points_per_unit",
        "rounding",
        "points",
        "daily_cap",
        "updated_at",
    )
    list_filter = ("is_active",)
    filter_horizontal = ()
