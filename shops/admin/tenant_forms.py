"""Admin forms whose save is a service call.

The service is the one place that holds the rules (a taken username, the last
owner, stores of this shop only), so the form asks it instead of repeating
them: once the fields are clean, `_post_clean` calls the service and turns its
`ValidationError` into errors on the matching fields. The service runs in its
own transaction (and the admin view in another), so a refused write leaves
nothing behind. The admin then only logs and redirects; its `save_model` does
nothing.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminEmailInputWidget,
    UnfoldAdminPasswordWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSplitDateTimeWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from shops.models import ApiKey, ApiKeyScope, Role, Shop, StaffMembership, Store
from shops.services import tenants as services


class ServiceModelForm(forms.ModelForm):
    """A ModelForm saved by `perform()`, a service call, during validation."""

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    # Service argument -> form field, where the names differ.
    error_fields: dict[str, str] = {}

    def perform(self):
        raise NotImplementedError

    def _post_clean(self):
        # The service validates; model validation here would run the rules twice.
        if self.errors or self.request is None:
            return
        try:
            self.instance = self.perform()
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for name, messages in error.message_dict.items():
                    field = self.error_fields.get(name, name)
                    self.add_error(field if field in self.fields else None, messages)
            else:
                self.add_error(None, error)

    def save(self, commit=True):
        return self.instance

    def save_m2m(self):
        pass


def with_request(form_class, request):
    """Bind `request` to a form class the admin instantiates itself."""

    class BoundForm(form_class):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("request", request)
            super().__init__(*args, **kwargs)

    BoundForm.__name__ = form_class.__name__
    return BoundForm


# Shop -----------------------------------------------------------------------


class ShopSettingsForm(ServiceModelForm):
    class Meta:
        model = Shop
        fields = services.SHOP_SETTINGS_FIELDS

    def perform(self):
        changes = {
            f: self.cleaned_data[f] for f in self.Meta.fields if f in self.fields
        }
        return services.update_shop(
            shop=self.instance, acting_user=self.request.user, **changes
        )


class ShopCreateForm(ServiceModelForm):
    class Meta:
        model = Shop
        fields = ("name", "slug", "language")

    def perform(self):
        return services.create_shop(
            name=self.cleaned_data["name"],
            slug=self.cleaned_data["slug"],
            language=self.cleaned_data["language"],
            acting_user=self.request.user,
        )


# Stores ---------------------------------------------------------------------


class StoreForm(ServiceModelForm):
    class Meta:
        model = Store
        fields = ("name", "code", "address", "phone", "is_active")

    def perform(self):
        data = self.cleaned_data
        common = {
            "name": data["name"],
            "code": data["code"],
            "address": data.get("address", ""),
            "phone": data.get("phone", ""),
            "acting_user": self.request.user,
        }
        if self.instance.pk is None:
            return services.create_store(shop=self.request.shop, **common)
        return services.update_store(
            store=self.instance, is_active=data.get("is_active", True), **common
        )


# Staff ----------------------------------------------------------------------


def _store_field():
    return forms.ModelMultipleChoiceField(
        # Empty until __init__ sets the active shop's stores (scoped, per request).
        queryset=Store.objects.unscoped().none(),
        required=False,
        label=_("Limited to stores"),
        help_text=_("Leave empty for every store."),
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )


class StaffAddForm(ServiceModelForm):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        help_text=_("What they type to log in. Letters, digits and @ . + - _ only."),
        widget=UnfoldAdminTextInputWidget,
    )
    name = forms.CharField(
        label=_("Name"),
        max_length=150,
        required=False,
        widget=UnfoldAdminTextInputWidget,
    )
    email = forms.EmailField(
        label=_("Email"), required=False, widget=UnfoldAdminEmailInputWidget
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=UnfoldAdminPasswordWidget(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not too common, not only digits."),
    )
    store_access = _store_field()
    error_fields = {"stores": "store_access"}

    class Meta:
        model = StaffMembership
        fields = ("role",)
        widgets = {"role": UnfoldAdminSelectWidget}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store_access"].queryset = Store.objects.all()

    def perform(self):
        data = self.cleaned_data
        return services.add_staff_member(
            shop=self.request.shop,
            username=data["username"],
            password=data["password"],
            role=data["role"],
            name=data.get("name", ""),
            email=data.get("email", ""),
            stores=data.get("store_access") or (),
            acting_user=self.request.user,
        )


class StaffChangeForm(ServiceModelForm):
    store_access = _store_field()
    error_fields = {"stores": "store_access"}

    class Meta:
        model = StaffMembership
        fields = ("role", "is_active")
        widgets = {
            "role": UnfoldAdminSelectWidget,
            "is_active": UnfoldBooleanSwitchWidget,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store_access"].queryset = Store.objects.all()
        if self.instance.pk:
            self.initial["store_access"] = list(self.instance.stores.all())

    def perform(self):
        data = self.cleaned_data
        return services.update_staff_member(
            membership=self.instance,
            role=data.get("role", self.instance.role),
            stores=data.get("store_access") or (),
            is_active=data.get("is_active", self.instance.is_active),
            acting_user=self.request.user,
        )


# API keys -------------------------------------------------------------------


class ApiKeyAddForm(ServiceModelForm):
    expires_at = forms.SplitDateTimeField(
        label=_("Expires"),
        required=False,
        help_text=_("Optional. After this time the key stops working."),
        widget=UnfoldAdminSplitDateTimeWidget,
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scope")
        labels = {"name": _("Name")}
        help_texts = {
            "name": _("Where the key is used, e.g. the till or the web shop."),
            "scope": _("Read only, or read and write (members, purchases, points)."),
        }
        widgets = {"scope": UnfoldAdminSelectWidget}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "scope" in self.fields:  # Absent on the read-only change page.
            self.fields["scope"].initial = ApiKeyScope.READ
        self.plain_key = None

    def perform(self):
        data = self.cleaned_data
        api_key, self.plain_key = services.create_api_key(
            shop=self.request.shop,
            name=data["name"],
            scope=data["scope"],
            expires_at=data.get("expires_at"),
            acting_user=self.request.user,
        )
        return api_key


__all__ = [
    "ApiKeyAddForm",
    "Role",
    "ServiceModelForm",
    "ShopCreateForm",
    "ShopSettingsForm",
    "StaffAddForm",
    "StaffChangeForm",
    "StoreForm",
    "with_request",
]
