"""Admin for the tenant itself: the shop's settings, stores, staff and API keys.

Role matrix (DESIGN.md): owners do everything here; managers and clerks see the
stores (a clerk limited to some stores sees only those); staff and API keys are
for owners only. Every write goes through `shops.services.tenants` (see
`tenant_forms.ServiceModelForm`).
"""

from django.contrib import admin, messages
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from shops.models import ApiKey, Shop, StaffMembership, Store
from shops.services import tenants as services

from .base import EVERYONE, OWNERS, ShopScopedAdmin, role_allows
from .tenant_forms import (
    ApiKeyAddForm,
    ShopCreateForm,
    ShopSettingsForm,
    StaffAddForm,
    StaffChangeForm,
    StoreForm,
    with_request,
)


class ServiceSavedAdmin:
    """The form's service call already saved the row; the admin only records it."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        return with_request(super().get_form(request, obj, change, **kwargs), request)

    def save_model(self, request, obj, form, change):
        pass

    def save_related(self, request, form, formsets, change):
        pass


@admin.register(Shop)
class ShopAdmin(ServiceSavedAdmin, ModelAdmin):
    """The active shop's settings; a superuser in the all-shops view sees all."""

    list_display = ("name", "slug", "currency", "time_zone", "language", "is_active")
    search_fields = ("name", "slug")
    readonly_fields = ("slug", "created_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "language")}),
        (
            _("Money, time and phone numbers"),
            {"fields": ("currency", "time_zone", "country")},
        ),
        (_("Members' portal"), {"fields": ("logo", "brand_color")}),
    )
    add_fieldsets = ((None, {"fields": ("name", "slug", "language")}),)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.shop is not None:
            return queryset.filter(pk=request.shop.pk)
        if request.user.is_superuser:
            return queryset
        return queryset.none()

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or request.shop is not None

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser or (
            request.shop is not None and role_allows(request, OWNERS)
        )

    def has_add_permission(self, request):
        # New shops come from sign-up; the platform may add one by hand.
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ShopCreateForm if obj is None else ShopSettingsForm
        return super().get_form(request, obj, change, **kwargs)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404


class LimitedStoresMixin:
    """A staff member limited to some stores sees only those."""

    def _limit_stores(self, request, queryset, field="pk"):
        membership = getattr(request, "membership", None)
        if membership is None:
            return queryset
        allowed = list(membership.stores.values_list("pk", flat=True))
        return queryset.filter(**{f"{field}__in": allowed}) if allowed else queryset


@admin.register(Store)
class StoreAdmin(LimitedStoresMixin, ServiceSavedAdmin, ShopScopedAdmin):
    form = StoreForm
    view_roles = EVERYONE
    add_roles = change_roles = delete_roles = OWNERS
    list_display = ("code", "name", "phone", "is_active")
    list_display_links = ("code", "name")
    search_fields = ("code", "name", "address")
    list_filter = ("is_active",)
    fields = ("name", "code", "address", "phone", "is_active")

    def get_queryset(self, request):
        return self._limit_stores(request, super().get_queryset(request))

    def delete_model(self, request, obj):
        services.delete_store(store=obj, acting_user=request.user)

    def delete_queryset(self, request, queryset):
        for store in queryset:
            services.delete_store(store=store, acting_user=request.user)


@admin.register(StaffMembership)
class StaffMembershipAdmin(ServiceSavedAdmin, ShopScopedAdmin):
    view_roles = add_roles = change_roles = OWNERS
    delete_roles = frozenset()  # Deactivate instead: the history stays readable.
    list_display = ("username", "full_name", "email", "role", "store_list", "is_active")
    list_filter = ("role", "is_active")
    search_fields = ("user__username", "user__first_name", "user__email")
    readonly_fields = ("username", "full_name", "email", "created_at")
    add_fieldsets = (
        (None, {"fields": ("username", "name", "email", "password")}),
        (_("Role"), {"fields": ("role", "store_access")}),
    )
    fieldsets = (
        (None, {"fields": ("username", "full_name", "email", "created_at")}),
        (_("Role"), {"fields": ("role", "store_access", "is_active")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("user")
            .prefetch_related("stores")
        )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = StaffAddForm if obj is None else StaffChangeForm
        return super().get_form(request, obj, change, **kwargs)

    @display(description=_("username"), ordering="user__username")
    def username(self, obj):
        return obj.user.username

    @display(description=_("name"))
    def full_name(self, obj):
        return obj.user.get_full_name()

    @display(description=_("email"))
    def email(self, obj):
        return obj.user.email

    @display(description=_("stores"))
    def store_list(self, obj):
        names = [store.code for store in obj.stores.all()]
        return ", ".join(names) if names else gettext("All stores")


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceSavedAdmin, ShopScopedAdmin):
    form = ApiKeyAddForm
    view_roles = add_roles = OWNERS
    change_roles = delete_roles = frozenset()  # Key material is never edited.
    list_display = (
        "name",
        "prefix",
        "scope",
        "created",
        "last_used_at",
        "revoked",
        "expiry_date",
        "created_by",
    )
    list_filter = ("scope", "revoked")
    search_fields = ("name", "prefix")
    readonly_fields = list_display
    actions = ("revoke_keys",)
    actions_detail = ("revoke_key",)

    def get_fields(self, request, obj=None):
        return ("name", "scope", "expires_at") if obj is None else self.list_display

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if form.plain_key:
            # Shown once, like the library's own admin; only the hash is kept.
            messages.warning(
                request,
                gettext(
                    "The API key for “%(name)s” is: %(key)s . Copy it now and "
                    "keep it somewhere safe: it will not be shown again."
                )
                % {"name": obj.name, "key": form.plain_key},
            )

    def has_revoke_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, OWNERS)

    @action(description=_("Revoke selected keys"), permissions=["revoke"])
    def revoke_keys(self, request, queryset):
        count = 0
        for api_key in queryset.filter(revoked=False):
            services.revoke_api_key(api_key=api_key, acting_user=request.user)
            count += 1
        messages.success(
            request,
            gettext("%(count)d key(s) revoked: they stop working now.")
            % {"count": count},
        )

    @action(description=_("Revoke"), permissions=["revoke"], url_path="revoke")
    def revoke_key(self, request, object_id):
        if request.method != "POST":
            api_key = self.get_object(request, object_id)
            if api_key is None:
                raise Http404
            return TemplateResponse(
                request,
                "admin/shops/apikey/revoke_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "object": api_key,
                    "title": gettext("Revoke this key?"),
                },
            )
        api_key = self.get_object(request, object_id)
        if api_key is None:
            raise Http404
        services.revoke_api_key(api_key=api_key, acting_user=request.user)
        messages.success(request, gettext("The key is revoked: it stops working now."))
        return redirect("admin:shops_apikey_change", object_id)
