"""The member page's tier panel and manual tier form, and the member list's
tier filter (registered on the members app's seams by `tiers.registrations`).
"""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import DropdownFilter
from unfold.widgets import (
    UnfoldAdminDateWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from members.models import Member
from shops.admin.base import MANAGERS, role_allows
from shops.tenancy import current_shop_or_none
from tiers.models import ManualMode, MemberTier, Tier, TierChange
from tiers.registrations import members_in_tier
from tiers.services import ladder as ladders
from tiers.services.manual import clear_manual_tier, set_manual_tier
from tiers.services.progress import tier_progress

HISTORY_LENGTH = 10


class TierListFilter(DropdownFilter):
    title = _("tier")
    parameter_name = "tier"

    def lookups(self, request, model_admin):
        if request.shop is None:
            return []
        return [
            (tier.pk, tier.display_name()) for tier in ladders.ladder_of(request.shop)
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value or not str(value).isdigit() or request.shop is None:
            return queryset
        tier = Tier.objects.filter(shop=request.shop, pk=int(value)).first()
        return members_in_tier(queryset, tier, entry=ladders.entry_tier(request.shop))


def shop_today(shop) -> datetime.date:
    return timezone.localtime(timezone.now(), shop.zone).date()


class ManualTierForm(forms.Form):
    tier = forms.ModelChoiceField(
        label=_("Tier"),
        queryset=Tier.objects.unscoped().none(),
        widget=UnfoldAdminSelectWidget,
    )
    mode = forms.ChoiceField(
        label=_("The member holds"),
        choices=ManualMode.choices,
        initial=ManualMode.FIXED,
        widget=UnfoldAdminSelectWidget,
    )
    until = forms.DateField(
        label=_("Locked until"),
        required=False,
        help_text=_("The last day of the lock; leave empty for good."),
        widget=UnfoldAdminDateWidget,
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        help_text=_("Kept in the member's tier history."),
        widget=UnfoldAdminTextInputWidget,
    )

    def __init__(self, *args, shop, **kwargs):
        super().__init__(*args, **kwargs)
        self.shop = shop
        self.fields["tier"].queryset = Tier.objects.filter(shop=shop).order_by("rank")
        self.fields["tier"].label_from_instance = lambda tier: tier.display_name()

    def clean_until(self):
        until = self.cleaned_data.get("until")
        if until is not None and until < shop_today(self.shop):
            raise ValidationError(_("The lock cannot end in the past."))
        return until


def tier_panel_context(request, member) -> dict:
    shop = current_shop_or_none()
    if shop is None or shop.pk != member.shop_id:
        return {"tier": None}
    row = (
        MemberTier.objects.filter(shop=shop, member=member)
        .select_related("tier", "manual_tier", "grace_target", "manual_by")
        .first()
    )
    tier = row.tier if row is not None else ladders.entry_tier(shop)
    changes = (
        TierChange.objects.filter(shop=shop, member=member)
        .select_related("from_tier", "to_tier", "acting_user")
        .order_by("-created_at", "-id")[:HISTORY_LENGTH]
    )
    can_set = request.shop is not None and role_allows(request, MANAGERS)
    initial = {}
    if row is not None and row.manual_tier_id:
        initial = {
            "tier": row.manual_tier_id,
            "mode": row.manual_mode,
            "until": row.manual_until,
            "reason": row.manual_reason,
        }
    return {
        "tier": tier,
        "row": row,
        "progress": _progress(member) if tier is not None else None,
        "changes": changes,
        "can_set": can_set and tier is not None,
        "manual_form": ManualTierForm(shop=shop, initial=initial) if can_set else None,
    }


def _progress(member):
    return tier_progress(member)


def _member(request, member_id) -> Member:
    if request.shop is None or not role_allows(request, MANAGERS):
        raise PermissionDenied
    member = Member.objects.filter(shop=request.shop, pk=member_id).first()
    if member is None:
        raise Http404
    return member


def manual_tier_view(model_admin, request, member_id):
    """Set (or, with `action=clear`, end) the member's manual tier. Errors are
    shown on this page's form; success goes back to the member page."""
    member = _member(request, member_id)
    back = redirect("admin:members_member_change", member.pk)
    form = ManualTierForm(
        request.POST if request.method == "POST" else None, shop=request.shop
    )
    if request.method == "POST" and request.POST.get("action") == "clear":
        clear_manual_tier(member=member, acting_user=request.user)
        messages.success(request, gettext("The manual tier has ended."))
        return back
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            set_manual_tier(
                member=member,
                tier=data["tier"],
                mode=data["mode"],
                until=data["until"],
                reason=data["reason"],
                acting_user=request.user,
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for name, problems in error.message_dict.items():
                    form.add_error(name if name in form.fields else None, problems)
            else:
                form.add_error(None, error.messages)
        else:
            messages.success(
                request,
                gettext("%(member)s now has the manual tier “%(tier)s”.")
                % {
                    "member": member.name or member.member_code,
                    "tier": data["tier"].display_name(),
                },
            )
            return back
    return TemplateResponse(
        request,
        "admin/tiers/manual_tier.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": Member._meta,
            "member": member,
            "form": form,
            "title": gettext("Manual tier of %(member)s")
            % {"member": member.name or member.member_code},
        },
    )


def member_urls(model_admin) -> list:
    view = model_admin.admin_site.admin_view

    def manual(request, member_id):
        return manual_tier_view(model_admin, request, member_id)

    return [
        path(
            "member/<int:member_id>/manual-tier/",
            view(manual),
            name="tiers_member_manual_tier",
        )
    ]
