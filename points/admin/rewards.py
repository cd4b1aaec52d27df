"""The rewards catalogue and the redemptions.

Rewards: managers and owners keep the catalogue; everyone sees it (the
counter redeems from the member page). Redemptions are written only by the
services (redeem at the counter, the API, the portal); here they are listed
and can be cancelled (managers and owners), which returns the points with
their original expiry and the stock.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter, DropdownFilter
from unfold.decorators import action, display

from members.admin.member_filters import DayRangeFilter
from points.models import Redemption, RedemptionStatus, Reward
from shops.admin.base import (
    EVERYONE,
    MANAGERS,
    CappedCountPaginator,
    ShopScopedAdmin,
    role_allows,
)
from shops.models import Store

from .forms import RewardForm
from .ledger import search_by_member


@admin.register(Reward)
class RewardAdmin(ShopScopedAdmin):
    form = RewardForm
    view_roles = EVERYONE
    add_roles = change_roles = MANAGERS
    # Redemptions keep their reward: a reward is switched off, not deleted.
    delete_roles = frozenset()
    list_display = (
        "name",
        "points_price",
        "stock_left",
        "per_member_limit",
        "is_active",
        "redeemed_count",
        "available_from",
        "available_until",
    )
    list_filter = ("is_active",)
    search_fields = ("name",)
    ordering = ("points_price", "id")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                redeemed=Count(
                    "redemptions",
                    filter=Q(redemptions__status=RedemptionStatus.COMPLETED),
                )
            )
        )

    @display(description=_("in stock"), ordering="stock")
    def stock_left(self, obj):
        return gettext("unlimited") if obj.stock is None else obj.stock

    @display(description=_("redemptions"), ordering="redeemed")
    def redeemed_count(self, obj):
        return obj.redeemed


class RedemptionStoreFilter(DropdownFilter):
    title = _("store")
    parameter_name = "store"

    def lookups(self, request, model_admin):
        if request.shop is None:
            return []
        return list(Store.objects.filter(shop=request.shop).values_list("id", "name"))

    def queryset(self, request, queryset):
        value = self.value()
        if not value or not str(value).isdigit():
            return queryset
        return queryset.filter(store_id=int(value))


@admin.register(Redemption)
class RedemptionAdmin(ShopScopedAdmin):
    view_roles = EVERYONE
    add_roles = change_roles = delete_roles = frozenset()
    list_display = (
        "created_at",
        "member",
        "kind",
        "reward",
        "quantity",
        "points",
        "cash_value",
        "store",
        "status",
        "actor",
    )
    list_filter = (
        ("kind", ChoicesDropdownFilter),
        ("status", ChoicesDropdownFilter),
        RedemptionStoreFilter,
        ("created_at", DayRangeFilter),
    )
    list_filter_submit = True
    list_select_related = ("member", "reward", "store", "acting_user")
    # The search itself is get_search_results'; this turns the box on.
    search_fields = ("external_order_id",)
    search_help_text = _("The member's phone (or its last four digits) or code.")
    show_full_result_count = False
    paginator = CappedCountPaginator
    ordering = ("-id",)
    actions = ("cancel_selected",)
    actions_detail = ("cancel_one",)

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, MANAGERS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_search_results(self, request, queryset, search_term):
        return search_by_member(request, queryset, search_term, "member")

    @display(description=_("by"))
    def actor(self, obj):
        return obj.acting_user or obj.actor_label or "—"

    def _cancel(self, request, redemptions) -> int:
        from points.services.rewards import cancel_redemption

        done = 0
        for redemption in redemptions:
            if redemption.status == RedemptionStatus.CANCELLED:
                continue
            try:
                cancel_redemption(
                    redemption=redemption,
                    reason=gettext("Cancelled in the admin"),
                    acting_user=request.user,
                )
            except ValidationError as error:
                messages.error(
                    request,
                    gettext("%(redemption)s: %(problem)s")
                    % {"redemption": redemption, "problem": " ".join(error.messages)},
                )
            else:
                done += 1
        return done

    @action(description=_("Cancel and return the points"), permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        done = self._cancel(request, queryset.order_by("pk"))
        if done:
            messages.success(
                request,
                ngettext(
                    "%(count)d redemption cancelled; its points are back.",
                    "%(count)d redemptions cancelled; their points are back.",
                    done,
                )
                % {"count": done},
            )

    @action(
        description=_("Cancel and return the points"),
        permissions=["cancel"],
        url_path="cancel",
        icon="undo",
    )
    def cancel_one(self, request, object_id):
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        redemption = self.get_queryset(request).filter(pk=object_id).first()
        if redemption is None:
            raise Http404
        if request.method != "POST":
            return TemplateResponse(
                request,
                "admin/points/cancel_redemption.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "object": redemption,
                    "title": gettext("Cancel this redemption?"),
                },
            )
        if self._cancel(request, [redemption]):
            messages.success(
                request, gettext("Redemption cancelled; the points are back.")
            )
        return redirect("admin:points_redemption_change", redemption.pk)
