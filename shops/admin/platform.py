"""Platform admin: user accounts and groups, for superusers only.

Shop owners manage their people under Staff, which never lists other shops'
users. The library's own API key admin is replaced by the shop-scoped one.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group

# Imported first so that its registration exists to be undone here.
from rest_framework_api_key import admin as library_admin  # noqa: F401
from rest_framework_api_key.models import APIKey
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from shops.models import User

for model in (APIKey, Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class SuperuserOnly:
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_add_permission = has_change_permission = has_delete_permission = (
        has_view_permission
    )


@admin.register(User)
class UserAdmin(SuperuserOnly, BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(SuperuserOnly, BaseGroupAdmin, ModelAdmin):
    pass
