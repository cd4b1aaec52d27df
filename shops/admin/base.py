"""The base of every tenant-owned model admin.

Rows, foreign-key choices and new rows all belong to the active shop (the
request's current shop, set by `StaffShopMiddleware`); the staff member's role
decides what they may view, add, change and delete. A platform superuser with
no active shop sees every shop's rows, read-only, and switches into a shop to
change anything. Another shop's object answers 404, exactly like a missing one.
"""

from django.contrib.admin import helpers
from django.core.paginator import Paginator
from django.http import Http404
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import get_language
from unfold.admin import ModelAdmin, TabularInline
from unfold.admin import checkbox as unfold_checkbox

from shops.models import Role

EVERYONE = frozenset(Role.values)
MANAGERS = frozenset({Role.OWNER, Role.MANAGER})
OWNERS = frozenset({Role.OWNER})


class CappedCountPaginator(Paginator):
    """For the lists of big tables (a million members, ten million purchases
    or ledger entries): counts at most CAP + 1 rows, where COUNT(*) over all
    the rows that match would cost a tenth of a second to seconds on every
    page (counting even 10,000 scattered members read 26,000 pages of the
    table: 90 ms). Past the cap the list says "more than 1000" and offers
    the pages up to it; staff filter or search to narrow it down, and a tag
    action or an export says how many it takes."""

    CAP = 1_000
    # Unfold's change list includes the paginator's own template.
    template_name = "admin/capped_pagination.html"

    @cached_property
    def count(self) -> int:
        # A sliced count is COUNT(*) over a LIMITed subquery.
        return self.object_list.order_by()[: self.CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.CAP


def role_allows(request, roles) -> bool:
    """True for a superuser, or for a staff member whose role is in `roles`."""
    if request.user.is_superuser:
        return True
    return getattr(request, "role", None) in roles


def _with_shop_validation(form_class, request):
    """A form that validates unique constraints including the (hidden) shop."""

    class ShopScopedForm(form_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if request.shop is not None and self.instance.shop_id is None:
                self.instance.shop = request.shop

        def _get_validation_exclusions(self):
            # `shop` is not a form field, but (shop, code)-style constraints must
            # still be checked here rather than fail in the database.
            exclusions = super()._get_validation_exclusions()
            exclusions.discard("shop")
            return exclusions

    ShopScopedForm.__name__ = form_class.__name__
    return ShopScopedForm


class SuperuserOnly:
    """Platform models (users, schedules): superusers only, whatever the shop."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)


class RolePermissions:
    """Permissions from the role in the active shop, not Django's model perms."""

    view_roles = EVERYONE
    add_roles = MANAGERS
    change_roles = MANAGERS
    delete_roles = OWNERS

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        if request.shop is None and not request.user.is_superuser:
            return False
        return role_allows(request, self.view_roles)

    def _may_write(self, request, roles) -> bool:
        return request.shop is not None and role_allows(request, roles)

    def has_add_permission(self, request, *args):
        return self._may_write(request, self.add_roles)

    def has_change_permission(self, request, obj=None):
        return self._may_write(request, self.change_roles)

    def has_delete_permission(self, request, obj=None):
        return self._may_write(request, self.delete_roles)


_ROW_ID = "__row_id__"
_ROW_CHECKBOXES: dict[str | None, str] = {}


def _row_checkbox() -> str:
    """Unfold's checkbox of a list row as a format string ({} for the row's
    id), rendered once per language (its label is translated)."""
    language = get_language()
    html = _ROW_CHECKBOXES.get(language)
    if html is None:
        rendered = str(unfold_checkbox.render(helpers.ACTION_CHECKBOX_NAME, _ROW_ID))
        html = rendered.replace("{", "{{").replace("}", "}}").replace(_ROW_ID, "{}")
        _ROW_CHECKBOXES[language] = html
    return html


class ShopScopedAdmin(RolePermissions, ModelAdmin):
    """Admin for a `TenantModel`: the active shop's rows only, by role."""

    # Unfold's list template asks each row for these; a missing attribute
    # makes Django's template engine call dir() on the admin (30 µs a row).
    list_sections = ()

    def action_checkbox(self, obj):
        # The same HTML as Unfold's, without rendering the widget's template
        # for each row: that was 9 ms of a 50-row member list page.
        return format_html(_row_checkbox(), obj.pk)

    action_checkbox.__dict__.update(ModelAdmin.action_checkbox.__dict__)

    def get_queryset(self, request):
        if request.shop is not None:
            # The default manager is scoped to the current shop (the request's).
            return super().get_queryset(request)
        if request.user.is_superuser:
            return self.model.objects.unscoped()
        return self.model.objects.none()

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if request.shop is None and request.user.is_superuser and "shop" not in display:
            display.append("shop")
        return display

    def get_exclude(self, request, obj=None):
        return [*(super().get_exclude(request, obj) or []), "shop"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        return _with_shop_validation(
            super().get_form(request, obj, change, **kwargs), request
        )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.shop = request.shop
        elif obj.shop_id != request.shop.pk:
            raise Http404
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for instance in instances:
            if getattr(instance, "shop_id", None) is None:
                instance.shop = request.shop
            instance.save()
        for deleted in formset.deleted_objects:
            deleted.delete()
        formset.save_m2m()

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Missing and another shop's object look the same: 404.
        raise Http404


class ShopScopedInline(RolePermissions, TabularInline):
    """Inline rows of a tenant model; the parent admin's save_formset sets shop."""

    extra = 0

    def get_exclude(self, request, obj=None):
        return [*(super().get_exclude(request, obj) or []), "shop"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = _with_shop_validation(formset.form, request)
        return formset
