"""Admin of the points ledger: the entries list (read-only: the ledger is
append-only), the member page's points panel with its adjustment (managers
and owners) and counter redemption (everyone) forms.

The panel's forms post to pages of their own here: a refused form comes back
on that page with its errors (nothing written), a written one returns to the
member page with a message.
"""

from __future__ import annotations

import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q, Sum
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import display

from members.admin.member_filters import DayRangeFilter
from members.admin.panels import MemberPanel, register_member_panel
from members.models import Member
from members.selectors.members import search_condition
from members.selectors.purchases import allowed_store_ids
from points.models import PointsAccount, PointsEntry, PointsLot
from shops.admin.base import (
    EVERYONE,
    MANAGERS,
    CappedCountPaginator,
    ShopScopedAdmin,
    role_allows,
)
from shops.tenancy import shop_scope

from .forms import AdjustmentForm, RedeemForm
from .liability import LiabilityReportLink, liability_view

PANEL_ENTRIES = 15
PANEL_LOTS = 20
EXPIRING_DAYS = 30
MEMBER_LOOKUP = "account__member__id__exact"


@admin.register(PointsEntry)
class PointsEntryAdmin(LiabilityReportLink, ShopScopedAdmin):
    """Every change of every balance; nobody adds, edits or deletes one."""

    view_roles = EVERYONE
    add_roles = change_roles = delete_roles = frozenset()
    list_display = (
        "created_at",
        "member_link",
        "kind",
        "signed_points",
        "total_after",
        "source",
        "reason",
        "actor",
    )
    list_filter = (
        ("kind", ChoicesDropdownFilter),
        ("source", ChoicesDropdownFilter),
        ("created_at", DayRangeFilter),
    )
    list_filter_submit = True
    list_select_related = ("account__member", "acting_user")
    search_fields = ("reason",)
    search_help_text = _("The member's phone (or its last four digits) or code.")
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    ordering = ("-id",)
    actions_list = ("liability_report",)

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def lookup_allowed(self, lookup, value, request=None):
        # The member page's "all entries" link.
        if lookup == MEMBER_LOOKUP:
            return True
        return super().lookup_allowed(lookup, value, request)

    def get_search_results(self, request, queryset, search_term):
        return search_by_member(request, queryset, search_term, "account__member")

    @display(description=_("member"), ordering="account__member__member_code")
    def member_link(self, obj):
        member = obj.account.member
        return format_html(
            '<a href="{}" class="text-primary-600">{}</a>',
            reverse("admin:members_member_change", args=[member.pk]),
            member,
        )

    @display(description=_("points"), ordering="points")
    def signed_points(self, obj):
        return f"{obj.points:+d}"

    @display(description=_("by"))
    def actor(self, obj):
        return obj.acting_user or obj.actor_label or "—"

    # The member page's forms -------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "member/<int:member_id>/adjust/",
                wrap(self.adjust_view),
                name="points_member_adjust",
            ),
            path(
                "member/<int:member_id>/redeem/",
                wrap(self.redeem_view),
                name="points_member_redeem",
            ),
            path(
                "liability/",
                wrap(lambda request: liability_view(self, request)),
                name="points_liability",
            ),
            *super().get_urls(),
        ]

    def _member(self, request, member_id, roles) -> Member:
        if request.shop is None or not role_allows(request, roles):
            raise PermissionDenied
        member = Member.objects.filter(pk=member_id).first()  # this shop's only
        if member is None:
            raise Http404
        return member

    def _form_page(self, request, member, form, title, template):
        return TemplateResponse(
            request,
            f"admin/points/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": Member._meta,
                "title": title,
                "member": member,
                "form": form,
                "figures": points_figures(member),
            },
        )

    def adjust_view(self, request, member_id):
        member = self._member(request, member_id, MANAGERS)
        form = AdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            entry = form.perform(member=member, acting_user=request.user)
            if entry is not None:
                messages.success(
                    request,
                    gettext("Points adjusted by %(points)+d. Balance: %(total)s.")
                    % {"points": entry.points, "total": entry.total_after},
                )
                return redirect("admin:members_member_change", member.pk)
        return self._form_page(
            request, member, form, gettext("Adjust points"), "adjust.html"
        )

    def redeem_view(self, request, member_id):
        member = self._member(request, member_id, EVERYONE)
        form = RedeemForm(
            request.POST or None,
            shop=request.shop,
            store_ids=allowed_store_ids(getattr(request, "membership", None)),
        )
        if request.method == "POST" and form.is_valid():
            redemption = form.perform(member=member, acting_user=request.user)
            if redemption is not None:
                messages.success(
                    request,
                    gettext("Redeemed %(quantity)s of %(reward)s (%(points)s points).")
                    % {
                        "quantity": redemption.quantity,
                        "reward": redemption.reward,
                        "points": redemption.points,
                    },
                )
                return redirect("admin:members_member_change", member.pk)
        return self._form_page(
            request, member, form, gettext("Redeem a reward"), "redeem.html"
        )


def search_by_member(request, queryset, search_term, member_path):
    """Rows of the members the search box finds (phone, last four digits,
    member code, email, name), as the member list finds them."""
    if request.shop is None:
        return (queryset.none() if search_term.strip() else queryset), False
    condition = search_condition(shop=request.shop, query=search_term)
    if condition is None:
        return queryset, False
    members = Member.objects.filter(condition).values("pk")
    return queryset.filter(**{f"{member_path}__in": members}), False


# The member page's panel ------------------------------------------------------


def points_figures(member: Member) -> dict:
    """The member's balance, spendable and pending points, and what expires
    within EXPIRING_DAYS. A handful of indexed reads of one account.

    Spendable is the rewards service's figure (what a debit could take now:
    available lots not past their expiry), so the panel never promises points
    the counter's redemption then refuses."""
    from points.services.rewards import spendable

    account = PointsAccount.objects.filter(member=member).first()
    if account is None:
        return {"account": None, "balance": 0, "spendable": 0, "pending": 0,
                "expiring": 0, "expiring_days": EXPIRING_DAYS}  # fmt: skip
    now = timezone.now()
    sums = PointsLot.objects.filter(account=account, remaining__gt=0).aggregate(
        pending=Sum("remaining", filter=Q(available_at__gt=now), default=0),
        expiring=Sum(
            "remaining",
            filter=Q(
                expires_at__gt=now,
                expires_at__lte=now + datetime.timedelta(days=EXPIRING_DAYS),
            ),
            default=0,
        ),
    )
    return {
        "account": account,
        "balance": account.balance,
        "spendable": spendable(account, now=now),
        "pending": sums["pending"],
        "expiring": sums["expiring"],
        "expiring_days": EXPIRING_DAYS,
    }


def _panel_context(request, member) -> dict:
    if request.shop is None:
        # A superuser's all-shops view: read in the member's own shop.
        with shop_scope(member.shop):
            return _panel_context_in_shop(request, member)
    return _panel_context_in_shop(request, member)


def _panel_context_in_shop(request, member) -> dict:
    figures = points_figures(member)
    account = figures["account"]
    lots, entries = [], []
    if account is not None:
        lots = list(
            PointsLot.objects.filter(account=account, remaining__gt=0).order_by(
                F("expires_at").asc(nulls_last=True), "id"
            )[:PANEL_LOTS]
        )
        entries = list(
            PointsEntry.objects.filter(account=account)
            .select_related("acting_user")
            .order_by("-id")[:PANEL_ENTRIES]
        )
    writable = request.shop is not None
    return {
        "figures": figures,
        "lots": lots,
        "entries": entries,
        "now": timezone.now(),
        "entries_url": (
            f"{reverse('admin:points_pointsentry_changelist')}"
            f"?{MEMBER_LOOKUP}={member.pk}"
        ),
        "adjust_url": reverse("admin:points_member_adjust", args=[member.pk]),
        "redeem_url": reverse("admin:points_member_redeem", args=[member.pk]),
        "adjust_form": AdjustmentForm() if writable else None,
        "redeem_form": (
            RedeemForm(
                shop=request.shop,
                store_ids=allowed_store_ids(getattr(request, "membership", None)),
            )
            if writable
            else None
        ),
        "can_adjust": writable and role_allows(request, MANAGERS),
        "can_redeem": writable and role_allows(request, EVERYONE),
    }


register_member_panel(
    MemberPanel(
        key="points",
        title=_("Points"),
        order=12,
        template="admin/points/panel.html",
        context=_panel_context,
    )
)
