"""Admin of the members app: tags, their rules, and the tags panel on a member.

Everyone in the shop sees tags; managers and owners create, change and delete
them and their rules, and apply the rules now. Any staff member may tag or
untag one member from the member page. Every write goes through
`members.services.tags`.
"""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminColorInputWidget

from members.models import (
    CustomField,
    Member,
    MemberSource,
    Tag,
    TagJob,
    TagJobStatus,
    TagRule,
)
from members.selectors import tags as selectors
from members.services import tags as services
from shops.admin.base import (
    EVERYONE,
    MANAGERS,
    ShopScopedAdmin,
    ShopScopedInline,
    role_allows,
)
from shops.tenancy import current_shop_or_none

from .panels import MemberPanel, register_member_panel

MONTHS = [
    (0, _("The current month")),
    *[(n, formats.date_format(date(2000, n, 1), "F")) for n in range(1, 13)],
]
PARAM_HELP = {
    "amount": _("For “total spend at least”: the amount, e.g. 1000."),
    "orders": _("For “at least N orders”: N."),
    "days": _("For “N orders in the last D days” and “no purchase in D days”: D."),
    "month": _("For “birthday in month”."),
    "source": _("For “joined through”."),
    "key": _("For “custom field equals”: which field."),
    "value": _("For “custom field equals”: the value, e.g. oolong, 3 or yes."),
}


class TagRuleForm(forms.ModelForm):
    """One rule; only the settings its kind uses are read, the rest ignored."""

    amount = forms.DecimalField(label=_("Amount"), required=False, min_value=0)
    orders = forms.IntegerField(label=_("Orders"), required=False, min_value=1)
    days = forms.IntegerField(label=_("Days"), required=False, min_value=1)
    month = forms.TypedChoiceField(
        label=_("Month"), required=False, coerce=int, choices=MONTHS
    )
    source = forms.ChoiceField(
        label=_("Joined through"),
        required=False,
        choices=[("", "—"), *MemberSource.choices],
    )
    key = forms.ChoiceField(label=_("Custom field"), required=False)
    value = forms.CharField(label=_("Value"), required=False, max_length=100)

    class Meta:
        model = TagRule
        fields = ("kind", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        keys = []
        if current_shop_or_none() is not None:
            keys = list(CustomField.objects.values_list("key", "label"))
        self.fields["key"].choices = [("", "—"), *keys]
        for name, text in PARAM_HELP.items():
            self.fields[name].help_text = text
        for name, value in (self.instance.params or {}).items():
            if name in self.fields:
                self.initial.setdefault(name, value)

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if not kind or self.errors:
            return data
        given = {name: data.get(name) for name in services.RULE_PARAMS.get(kind, ())}
        shop = current_shop_or_none()
        try:
            self.instance.params = services.clean_rule_params(
                shop=shop, kind=kind, params=given
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return data

    def has_changed(self):
        return super().has_changed() or any(
            name in self.changed_data for name in PARAM_HELP
        )


def describe_rule(rule: TagRule) -> str:
    """The rule in a shop owner's words, e.g. "Total spend at least: 1000.00"."""
    params = ", ".join(str(v) for v in rule.params.values())
    return (
        f"{rule.get_kind_display()}: {params}"
        if params
        else str(rule.get_kind_display())
    )


class TagForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ("name", "color", "description")
        widgets = {"color": UnfoldAdminColorInputWidget}

    def clean(self):
        data = super().clean()
        try:
            data["name"] = services.clean_tag(
                shop=self.instance.shop,
                name=data.get("name", ""),
                color=data.get("color", ""),
                exclude_pk=self.instance.pk,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                if field not in self.errors:
                    self.add_error(field, errors)
        return data

    def validate_unique(self):
        pass  # clean() checked the name, ignoring case


class TagRuleInline(ShopScopedInline):
    model = TagRule
    form = TagRuleForm
    fields = (
        "kind",
        "amount",
        "orders",
        "days",
        "month",
        "source",
        "key",
        "value",
        "is_active",
        "last_run_at",
    )
    readonly_fields = ("last_run_at",)
    add_roles = change_roles = delete_roles = MANAGERS
    verbose_name = _("rule")
    verbose_name_plural = _(
        "Rules: members who meet ALL active rules carry this tag (checked nightly "
        "and after each purchase)"
    )


@admin.register(Tag)
class TagAdmin(ShopScopedAdmin):
    form = TagForm
    view_roles = EVERYONE
    add_roles = change_roles = delete_roles = MANAGERS
    list_display = ("name", "swatch", "member_count", "rule_summary")
    search_fields = ("name",)
    fields = ("name", "color", "description")
    inlines = (TagRuleInline,)
    actions_detail = ("apply_rules_now",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(member_count=Count("member_tags"))
            .prefetch_related("rules")
        )

    @display(description=_("Colour"))
    def swatch(self, obj):
        return format_html(
            '<span class="inline-block w-4 h-4 rounded-full align-middle" '
            'style="background:{}"></span> {}',
            obj.color,
            obj.color,
        )

    @display(description=_("Members"), ordering="member_count")
    def member_count(self, obj):
        return obj.member_count

    @display(description=_("Rules"))
    def rule_summary(self, obj):
        rules = [describe_rule(r) for r in obj.rules.all() if r.is_active]
        return "; ".join(str(r) for r in rules) if rules else gettext("By hand only")

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in ("name", "color", "description")}
        if change:
            if obj.shop_id != request.shop.pk:
                raise Http404
            services.update_tag(tag=obj, acting_user=request.user, **data)
            return
        created = services.create_tag(
            shop=request.shop, acting_user=request.user, **data
        )
        obj.pk, obj.shop, obj.created_at = created.pk, created.shop, created.created_at
        obj._state = created._state

    def delete_model(self, request, obj):
        services.delete_tag(tag=obj, acting_user=request.user)

    def delete_queryset(self, request, queryset):
        for tag in queryset:
            services.delete_tag(tag=tag, acting_user=request.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is not TagRule:
            return super().save_formset(request, form, formset, change)
        tag = form.instance
        formset.save(commit=False)  # fills deleted_objects; saves nothing
        for rule in formset.deleted_objects:
            services.delete_tag_rule(rule=rule, acting_user=request.user)
        for sub in formset.forms:
            if sub in formset.deleted_forms or not sub.has_changed():
                continue
            given = sub.instance
            if given.pk is None:
                services.create_tag_rule(
                    shop=request.shop,
                    tag=tag,
                    kind=given.kind,
                    params=given.params,
                    is_active=given.is_active,
                    acting_user=request.user,
                )
            else:
                services.update_tag_rule(
                    rule=given,
                    kind=given.kind,
                    params=given.params,
                    is_active=given.is_active,
                    acting_user=request.user,
                )
        # The rules changed: bring the tag's members up to date once saved.
        from members.tasks.tags import apply_tag_rules_for_shop

        shop_id, tag_id = request.shop.pk, tag.pk
        transaction.on_commit(
            lambda: apply_tag_rules_for_shop.delay(shop_id=shop_id, tag_id=tag_id),
            robust=True,
        )
        return None

    def has_apply_rules_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, MANAGERS)

    @action(
        description=_("Apply rules now"),
        permissions=["apply_rules"],
        url_path="apply-rules",
        icon="sync",
    )
    def apply_rules_now(self, request, object_id):
        tag = self.get_object(request, object_id)
        if tag is None:
            raise Http404
        if request.method != "POST":
            return TemplateResponse(
                request,
                "admin/members/tags/apply_rules.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "object": tag,
                    "title": gettext("Apply this tag's rules now?"),
                },
            )
        result = services.apply_tag_rules(shop=request.shop, tag=tag)
        messages.success(
            request,
            gettext(
                "Rules applied: %(added)d member(s) got “%(tag)s”, %(removed)d no "
                "longer meet its rules."
            )
            % {**result, "tag": tag.name},
        )
        return redirect("admin:members_tag_change", tag.pk)

    # The member page's tags panel posts here -------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "member/<int:member_id>/tag/",
                view(self.tag_one_member),
                name="members_tag_member_add",
            ),
            path(
                "member/<int:member_id>/untag/<int:tag_id>/",
                view(self.untag_one_member),
                name="members_tag_member_remove",
            ),
            *super().get_urls(),
        ]

    def _member_and_back(self, request, member_id):
        if request.method != "POST" or request.shop is None:
            raise Http404
        if not role_allows(request, EVERYONE):
            raise Http404
        member = Member.objects.filter(pk=member_id).first()  # request's shop only
        if member is None:
            raise Http404
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            back = reverse("admin:index")
        return member, back

    def tag_one_member(self, request, member_id):
        member, back = self._member_and_back(request, member_id)
        tag = Tag.objects.filter(pk=request.POST.get("tag") or 0).first()
        if tag is None:
            messages.error(request, gettext("Choose a tag."))
        else:
            services.tag_member(
                shop=request.shop, member=member, tag=tag, acting_user=request.user
            )
            messages.success(request, gettext("Tagged “%(tag)s”.") % {"tag": tag})
        return HttpResponseRedirect(back)

    def untag_one_member(self, request, member_id, tag_id):
        member, back = self._member_and_back(request, member_id)
        tag = Tag.objects.filter(pk=tag_id).first()
        if tag is None:
            raise Http404
        services.untag_member(
            shop=request.shop, member=member, tag=tag, acting_user=request.user
        )
        messages.success(request, gettext("Took off “%(tag)s”.") % {"tag": tag})
        return HttpResponseRedirect(back)


def _panel_context(request, member):
    shop = current_shop_or_none()
    if shop is None:
        return {"member_tags": [], "tags": [], "can_tag": False}
    rows = list(selectors.member_tags(shop=shop, member=member))
    carried = {row.tag_id for row in rows}
    return {
        "member_tags": rows,
        "tags": [t for t in Tag.objects.all() if t.pk not in carried],
        "can_tag": request.shop is not None and role_allows(request, EVERYONE),
        "next": request.get_full_path(),
    }


register_member_panel(
    MemberPanel(
        key="tags",
        title=_("Tags"),
        order=15,
        template="admin/members/panels/tags.html",
        context=_panel_context,
    )
)


@admin.register(TagJob)
class TagJobAdmin(ShopScopedAdmin):
    """Long lists tagged in the background (from the member list's tag
    actions): what, how many, and how it went. Read only."""

    view_roles = MANAGERS
    add_roles = change_roles = delete_roles = frozenset()
    list_display = (
        "created_at",
        "action",
        "tag",
        "from_tag",
        "members_count",
        "changed_count",
        "outcome",
        "created_by",
        "finished_at",
    )
    list_filter = ("status", "action")
    fields = list_display
    readonly_fields = ("outcome",)
    list_select_related = ("tag", "from_tag", "created_by")

    @admin.display(description=_("status"), ordering="status")
    def outcome(self, job: TagJob) -> str:
        if job.status == TagJobStatus.FAILED:
            # Each bulk service is one transaction: a stopped job left nothing.
            return gettext(
                "Failed: no member was changed. Run the action again from "
                "the member list."
            )
        return job.get_status_display()
