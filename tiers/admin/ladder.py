"""The ladder editor (tiers, by rank, with colour swatch, badge and the
distribution of members over the tiers) and the qualification policy editor.

Everyone may look; managers and owners change. Every save goes through
`tiers.services.recalculation.apply_rule_change`, after the confirmation page
when it changes a rule (see `tiers.admin.rules`).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminColorInputWidget

from members.models import Member
from shops.admin.base import MANAGERS, OWNERS, ShopScopedAdmin, role_allows
from tiers.models import MemberTier, Tier, TierChangeReason, TierPolicy
from tiers.services import ladder as ladders
from tiers.services.recalculation import start_recalculation

from .rules import RuleChangeAdminMixin, RuleChangeForm

# What decides who holds which tier; changing any of these may move members.
TIER_RULE_FIELDS = frozenset({"rank", "min_spend", "min_orders"})
POLICY_RULE_FIELDS = frozenset(
    {"basis", "window", "window_months", "downgrade", "grace_days"}
)


def tier_distribution(shop) -> list[dict]:
    """Members per tier, lowest rank first. One GROUP BY over the MemberTier
    rows (only members who ever moved have one; the (shop, tier) index serves
    it) and the shop's member count: everyone else holds the entry tier."""
    ladder = ladders.ladder_of(shop)
    if not ladder:
        return []
    rows = (
        MemberTier.objects.filter(shop=shop)
        .values_list("tier_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[int, int] = dict(rows)
    total = Member.objects.filter(shop=shop).count()
    entry = ladder[0]
    counts[entry.pk] = counts.get(entry.pk, 0) + total - sum(counts.values())
    return [
        {
            "tier": tier,
            "members": counts.get(tier.pk, 0),
            "percent": round(100 * counts.get(tier.pk, 0) / total, 1) if total else 0,
        }
        for tier in ladder
    ]


class TierForm(RuleChangeForm, forms.ModelForm):
    rule_fields = TIER_RULE_FIELDS

    class Meta:
        model = Tier
        fields = [
            "name",
            "name_translations",
            "rank",
            "colour",
            "badge",
            "description",
            "min_spend",
            "min_orders",
            "discount_percent",
            "points_multiplier",
            "free_shipping",
            "birthday_points",
            "perks",
        ]
        widgets = {"colour": UnfoldAdminColorInputWidget}

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_name_translations(self):
        names = self.cleaned_data.get("name_translations") or {}
        if not isinstance(names, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in names.items()
        ):
            raise forms.ValidationError(
                _('Give the names per language, e.g. {"zh-hans": "VIP会员"}.')
            )
        return {k.lower(): v.strip() for k, v in names.items() if v.strip()}

    def clean(self):
        cleaned = super().clean()
        # A file cannot be carried through the confirmation page.
        if self.files.get("badge") and self.changes_rules():
            self.add_error(
                "badge",
                _(
                    "Save the badge on its own, after the rank and thresholds "
                    "are saved."
                ),
            )
        return cleaned

    def proposal(self):
        shop = self.request.shop
        others = [t for t in ladders.ladder_of(shop) if t.pk != self.instance.pk]
        return [*others, self.instance], ladders.policy_of(shop)


def with_request(form_class, request):
    class BoundForm(form_class):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("request", request)
            super().__init__(*args, **kwargs)

    BoundForm.__name__ = form_class.__name__
    return BoundForm


@admin.register(Tier)
class TierAdmin(RuleChangeAdminMixin, ShopScopedAdmin):
    form = TierForm
    delete_roles = OWNERS
    list_display = (
        "swatch",
        "name",
        "rank",
        "badge_image",
        "min_spend",
        "min_orders",
        "discount_percent",
        "points_multiplier",
        "free_shipping",
    )
    list_display_links = ("swatch", "name")
    ordering = ("rank",)
    sortable_by = ()
    list_before_template = "admin/tiers/tier/list_before.html"
    actions_list = ("recalculate",)
    fieldsets = (
        (None, {"fields": ("name", "name_translations", "rank", "colour", "badge")}),
        (_("Qualification"), {"fields": ("min_spend", "min_orders")}),
        (
            _("Benefits"),
            {
                "fields": (
                    "discount_percent",
                    "points_multiplier",
                    "free_shipping",
                    "birthday_points",
                    "perks",
                    "description",
                )
            },
        ),
    )

    @display(description=_("colour"))
    def swatch(self, tier):
        return format_html(
            '<span class="inline-block w-4 h-4 rounded-full align-middle" '
            'style="background:{}" title="{}"></span>',
            tier.colour,
            tier.colour,
        )

    @display(description=_("badge"))
    def badge_image(self, tier):
        if not tier.badge:
            return "—"
        return format_html(
            '<img src="{}" alt="" class="inline-block h-6 w-6 object-contain">',
            tier.badge.url,
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        return with_request(super().get_form(request, obj, change, **kwargs), request)

    def save_model(self, request, obj, form, change):
        self.save_through_service(request, form)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # One tier at a time, each checked by has_delete_permission.
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        """Owners may remove a tier nobody holds, other than the entry tier:
        removing it moves nobody. A tier in members' history stays (its
        on_delete is PROTECT)."""
        if not super().has_delete_permission(request, obj):
            return False
        if obj is None:
            return True
        entry = ladders.entry_tier(request.shop)
        if entry is not None and entry.pk == obj.pk:
            return False
        held = (
            Q(tier=obj)
            | Q(manual_tier=obj)
            | Q(grace_target=obj)
            | Q(period_start_tier=obj)
        )
        return not MemberTier.objects.filter(held, shop=request.shop).exists()

    def changelist_view(self, request, extra_context=None):
        extra = {}
        if request.shop is not None:
            policy = ladders.policy_of(request.shop)
            extra = {
                "distribution": tier_distribution(request.shop),
                "policy": policy,
                "policy_url": reverse(
                    "admin:tiers_tierpolicy_change", args=[policy.pk]
                ),
                "can_recalculate": self.has_recalculate_permission(request),
            }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    # Recalculate now -------------------------------------------------------

    def has_recalculate_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, MANAGERS)

    @action(
        description=_("Recalculate now"),
        permissions=["recalculate"],
        url_path="recalculate",
        icon="refresh",
    )
    def recalculate(self, request):
        if request.method != "POST":
            return TemplateResponse(
                request,
                "admin/tiers/tier/recalculate.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "title": gettext("Recalculate every member's tier now?"),
                },
            )
        recalculation = start_recalculation(
            shop=request.shop,
            reason=TierChangeReason.RECALCULATION,
            acting_user=request.user,
        )
        messages.success(request, gettext("The recalculation has started."))
        return redirect("admin:tiers_tierrecalculation_change", recalculation.pk)

    def get_urls(self):
        from .member import member_urls

        return [*member_urls(self), *super().get_urls()]


class PolicyForm(RuleChangeForm, forms.ModelForm):
    rule_fields = POLICY_RULE_FIELDS

    class Meta:
        model = TierPolicy
        fields = ["basis", "window", "window_months", "downgrade", "grace_days"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def proposal(self):
        return list(ladders.ladder_of(self.request.shop)), self.instance


@admin.register(TierPolicy)
class TierPolicyAdmin(RuleChangeAdminMixin, ShopScopedAdmin):
    """One policy per shop: the list opens the shop's policy."""

    form = PolicyForm
    fieldsets = (
        (None, {"fields": ("basis", "window", "window_months")}),
        (_("Moving down"), {"fields": ("downgrade", "grace_days")}),
    )

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        return with_request(super().get_form(request, obj, change, **kwargs), request)

    def changelist_view(self, request, extra_context=None):
        if request.shop is None:
            return super().changelist_view(request, extra_context)
        if not self.has_view_permission(request):
            raise PermissionDenied
        policy = ladders.policy_of(request.shop)
        return redirect("admin:tiers_tierpolicy_change", policy.pk)

    def save_model(self, request, obj, form, change):
        self.save_through_service(request, form)

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        if getattr(request, "_tier_recalculation", None) is None:
            return redirect("admin:tiers_tier_changelist")
        return response
