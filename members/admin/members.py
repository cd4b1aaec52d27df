"""Admin of the members app: the member list, the member page, the counter's
phone-first registration, privacy actions, and the shop's custom fields.

Clerks find, view and register members; managers and owners also edit them,
export their data and erase it. Members are never deleted (purchases keep
them): erasure anonymises them instead.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    RangeNumericFilter,
)
from unfold.decorators import action
from unfold.views import ChangeList

from members.extensions import MEMBER_LIST_FILTERS
from members.models import (
    ConsentChange,
    CustomField,
    Member,
    MemberChange,
)
from members.selectors.members import search_condition
from members.services.members import MemberExists, find_or_register_by_phone
from members.services.privacy import erase_member, export_member_data
from shops.admin.base import (
    EVERYONE,
    MANAGERS,
    CappedCountPaginator,
    ShopScopedAdmin,
    role_allows,
)
from shops.admin.tenant_forms import with_request
from shops.tenancy import shop_scope

from .imports import ExportActionsMixin
from .member_filters import BirthdayMonthFilter, DayRangeFilter, StoreFilter, TagFilter
from .member_forms import (
    CUSTOM_PREFIX,
    CounterForm,
    MemberForm,
    custom_fields_of,
    custom_form_field,
)
from .panels import panels_for
from .tag_actions import TAG_ACTIONS

TIMELINE_LENGTH = 50


class MemberChangeList(ChangeList):
    def get_ordering(self, request, queryset):
        """Ties broken by the id in the direction of the sort itself, as the
        list indexes hold them (Django ends every sort with the default "-id"
        or "-pk"): sorted by spend ascending, the members who spent nothing
        come out of the index in order instead of being sorted whole."""
        ordering = list(super().get_ordering(request, queryset))
        first = ordering[0] if ordering else None
        ascending = isinstance(first, str) and not first.startswith("-")
        if len(ordering) > 1 and ordering[-1] in ("-pk", "-id") and ascending:
            ordering[-1] = ordering[-1][1:]
        return ordering


@admin.register(Member)
class MemberAdmin(ExportActionsMixin, ShopScopedAdmin):
    form = MemberForm
    add_roles = EVERYONE
    change_roles = MANAGERS
    delete_roles = frozenset()
    list_display = (
        "member_code",
        "name",
        "phone",
        "email",
        "status",
        "home_store",
        "total_spent",
        "order_count",
        "last_purchase_at",
        "joined_at",
    )
    list_display_links = ("member_code", "name")
    list_select_related = ("home_store",)
    sortable_by = (
        "member_code",
        "name",
        "total_spent",
        "order_count",
        "last_purchase_at",
        "joined_at",
    )
    ordering = ("-id",)
    list_filter_submit = True
    list_filter = (
        ("status", ChoicesDropdownFilter),
        ("source", ChoicesDropdownFilter),
        TagFilter,
        StoreFilter,
        BirthdayMonthFilter,
        ("joined_at", DayRangeFilter),
        ("last_purchase_at", DayRangeFilter),
        ("total_spent", RangeNumericFilter),
        ("order_count", RangeNumericFilter),
    )

    def get_list_filter(self, request):
        # Filters of higher apps (tier, points, ...): see members.extensions.
        return (*super().get_list_filter(request), *MEMBER_LIST_FILTERS)

    # The search itself is the selector's (get_search_results); this only
    # turns the search box on.
    search_fields = ("name",)
    search_help_text = _(
        "Phone (or its last four digits), member code, email or part of the name."
    )
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    actions = [*TAG_ACTIONS]
    actions_list = ("counter", "export_list")
    actions_detail = ("export_data", "erase_data")
    change_form_outer_after_template = "admin/members/member/after_form.html"
    readonly_fields = (
        "member_code",
        "source",
        "joined_at",
        "total_spent",
        "order_count",
        "first_purchase_at",
        "last_purchase_at",
        "sms_consent_at",
        "email_consent_at",
        "erased_at",
    )

    # Lists --------------------------------------------------------------

    def get_changelist(self, request, **kwargs):
        return MemberChangeList

    def get_search_results(self, request, queryset, search_term):
        if request.shop is None:
            return queryset.none() if search_term.strip() else queryset, False
        condition = search_condition(shop=request.shop, query=search_term)
        if condition is None:
            return queryset, False
        return queryset.filter(condition), False

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Members are erased, never deleted.
        actions.pop("delete_selected", None)
        return actions

    # The member page ----------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        # Custom fields are not model fields: the factory must not see them.
        if kwargs.get("fields"):
            kwargs["fields"] = [
                f for f in kwargs["fields"] if not f.startswith(CUSTOM_PREFIX)
            ]
        base = super().get_form(request, obj, change, **kwargs)
        may_edit = request.shop is not None and (
            self.has_add_permission(request)
            if obj is None
            else self.has_change_permission(request, obj)
        )
        if may_edit:
            extra = {
                f"{CUSTOM_PREFIX}{d.key}": custom_form_field(d)
                for d in custom_fields_of(request.shop)
            }
            base = type(base.__name__, (base,), extra)
        return with_request(base, request)

    def get_fieldsets(self, request, obj=None):
        fields = list(self.get_fields(request, obj))
        custom = [f for f in fields if f.startswith(CUSTOM_PREFIX)]
        consent = ["sms_consent", "sms_consent_at", "email_consent", "email_consent_at"]
        figures = [
            "member_code",
            "source",
            "joined_at",
            "total_spent",
            "order_count",
            "first_purchase_at",
            "last_purchase_at",
            "erased_at",
        ]
        if obj is None:
            figures, consent = [], ["sms_consent", "email_consent"]
        used = set(custom) | set(consent) | set(figures)
        profile = [f for f in fields if f not in used]
        fieldsets = [(None, {"fields": profile})]
        fieldsets.append((_("Marketing consent"), {"fields": consent}))
        if custom:
            fieldsets.append((_("Custom fields"), {"fields": custom}))
        if figures:
            fieldsets.append((_("Membership and purchases"), {"fields": figures}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        readonly = list(self.readonly_fields)
        if obj.status == "erased":
            readonly = [f.name for f in Member._meta.fields if f.editable]
            readonly += [f for f in self.readonly_fields if f not in readonly]
        return readonly

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status == "erased":
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        # The form's perform() saved it through the service.
        pass

    def save_related(self, request, form, formsets, change):
        pass

    def change_view(self, request, object_id, form_url="", extra_context=None):
        member = self.get_object(request, object_id)
        if member is None:
            raise Http404
        # The member's own shop: the staff's active shop, or for a platform
        # superuser in the all-shops view, the shop of the member opened. The
        # page is rendered inside it, since the panels read as they render.
        with shop_scope(member.shop):
            response = self._member_page(
                request, member, object_id, form_url, extra_context
            )
            if hasattr(response, "render"):
                response.render()
        return response

    def _member_page(self, request, member, object_id, form_url, extra_context):
        extra = {
            "member": member,
            "timeline": MemberChange.objects.filter(member=member)
            .select_related("actor")
            .order_by("-id")[:TIMELINE_LENGTH],
            "consent_history": ConsentChange.objects.filter(member=member).order_by(
                "-id"
            )[:20],
            "custom_values": _custom_values(member),
            "panels": [
                {
                    "title": shown["panel"].title,
                    "key": shown["panel"].key,
                    "html": render_to_string(
                        shown["panel"].template, shown["context"], request=request
                    ),
                }
                for shown in panels_for(request, member)
            ],
        }
        return super().change_view(
            request,
            object_id,
            form_url,
            extra_context={**extra, **(extra_context or {})},
        )

    # The counter ------------------------------------------------------------

    def has_counter_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, EVERYONE)

    @action(
        description=_("Find or register at the counter"),
        permissions=["counter"],
        url_path="counter",
        icon="person_add",
    )
    def counter(self, request):
        form = CounterForm(request.POST or None, shop=request.shop)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                member, created = find_or_register_by_phone(
                    shop=request.shop,
                    phone=data["phone"],
                    name=data["name"],
                    email=data["email"],
                    home_store=data["home_store"],
                    sms_consent=data["sms_consent"],
                    consent_source="counter",
                    acting_user=request.user,
                )
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            except MemberExists as error:
                # The phone is new but the email (say) is another member's.
                form.add_error(
                    error.field if error.field in form.fields else None,
                    str(error.message),
                )
            else:
                if created:
                    message = gettext("Welcome! %(member)s is now member %(code)s.")
                else:
                    message = gettext("Found %(member)s, member %(code)s.")
                messages.success(
                    request,
                    message
                    % {
                        "member": member.name or member.phone,
                        "code": member.member_code,
                    },
                )
                return redirect("admin:members_member_change", member.pk)
        return TemplateResponse(
            request,
            "admin/members/member/counter.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "form": form,
                "title": gettext("Find or register a member"),
            },
        )

    # Privacy ------------------------------------------------------------------

    def has_privacy_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, MANAGERS)

    @action(
        description=_("Export data"),
        permissions=["privacy"],
        url_path="export-data",
        icon="download",
    )
    def export_data(self, request, object_id):
        member = self.get_object(request, object_id)
        if member is None:
            raise Http404
        data = export_member_data(member=member)
        response = HttpResponse(
            json.dumps(data, ensure_ascii=False, indent=2),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="member-{member.member_code}.json"'
        )
        return response

    @action(
        description=_("Erase personal data"),
        permissions=["privacy"],
        url_path="erase-data",
        icon="person_remove",
    )
    def erase_data(self, request, object_id):
        member = self.get_object(request, object_id)
        if member is None:
            raise Http404
        if request.method != "POST":
            return TemplateResponse(
                request,
                "admin/members/member/erase_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "object": member,
                    "title": gettext("Erase this member's personal data?"),
                },
            )
        erase_member(member=member, acting_user=request.user)
        messages.success(
            request,
            gettext(
                "The personal data of member %(code)s is erased. Their purchases "
                "stay in the accounts."
            )
            % {"code": member.member_code},
        )
        return redirect(reverse("admin:members_member_change", args=[member.pk]))


def _custom_values(member: Member) -> list[tuple[str, object]]:
    labels = {d.key: d.label for d in custom_fields_of(member.shop)}
    return [
        (labels.get(key, key), value) for key, value in member.custom_fields.items()
    ]


class CustomFieldForm(forms.ModelForm):
    class Meta:
        model = CustomField
        fields = ["key", "label", "field_type", "choices", "required", "position"]

    def clean(self):
        cleaned = super().clean()
        choices = cleaned.get("choices")
        if cleaned.get("field_type") == "choice":
            if not isinstance(choices, list) or not choices:
                self.add_error(
                    "choices",
                    _('List the choices, e.g. ["green", "black", "oolong"].'),
                )
            elif not all(isinstance(c, str | int) for c in choices):
                self.add_error("choices", _("Each choice must be a word or a number."))
        return cleaned


@admin.register(CustomField)
class CustomFieldAdmin(ShopScopedAdmin):
    form = CustomFieldForm
    view_roles = MANAGERS
    add_roles = MANAGERS
    change_roles = MANAGERS
    delete_roles = MANAGERS
    list_display = ("label", "key", "field_type", "required", "position")
    ordering = ("position", "id")
