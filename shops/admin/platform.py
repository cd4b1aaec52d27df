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

from .base import SuperuserOnly

for model in (APIKey, Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class UserAdmin(SuperuserOnly, BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(SuperuserOnly, BaseGroupAdmin, ModelAdmin):
    pass
