"""Staff forms for members: the profile (saved by register_member or
update_member) and the counter's phone-first registration."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminDateWidget,
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminEmailInputWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from members.models import CustomField, CustomFieldType, Member, MemberSource
from members.services.members import (
    EDITABLE_FIELDS,
    MemberExists,
    register_member,
    update_member,
)
from shops.admin.tenant_forms import ServiceModelForm
from shops.models import Store

CUSTOM_PREFIX = "cf_"


def custom_form_field(definition: CustomField) -> forms.Field:
    label, required = definition.label, False  # the service says what is missing
    kind = definition.field_type
    if kind == CustomFieldType.NUMBER:
        return forms.DecimalField(
            label=label, required=required, widget=UnfoldAdminDecimalFieldWidget
        )
    if kind == CustomFieldType.DATE:
        return forms.DateField(
            label=label, required=required, widget=UnfoldAdminDateWidget
        )
    if kind == CustomFieldType.BOOLEAN:
        return forms.BooleanField(
            label=label, required=False, widget=UnfoldBooleanSwitchWidget
        )
    if kind == CustomFieldType.CHOICE:
        return forms.ChoiceField(
            label=label,
            required=required,
            choices=[("", "---------")] + [(c, c) for c in definition.choices or []],
            widget=UnfoldAdminSelectWidget,
        )
    return forms.CharField(
        label=label,
        required=required,
        max_length=500,
        widget=UnfoldAdminTextInputWidget,
    )


def custom_fields_of(shop) -> list[CustomField]:
    return list(CustomField.objects.filter(shop=shop))


class MemberForm(ServiceModelForm):
    """The member page's form. Custom fields are added per shop by the admin."""

    # Empty at import (no shop yet); __init__ sets the request's shop's rows.
    home_store = forms.ModelChoiceField(
        label=_("home store"),
        queryset=Store.objects.unscoped().none(),
        required=False,
        widget=UnfoldAdminSelectWidget,
    )
    referred_by = forms.ModelChoiceField(
        label=_("referred by"),
        queryset=Member.objects.unscoped().none(),
        required=False,
        widget=UnfoldAdminSelectWidget,
    )

    class Meta:
        model = Member
        fields = [f for f in EDITABLE_FIELDS if f != "custom_fields"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        shop = getattr(self.request, "shop", None)
        if "home_store" in self.fields:
            self.fields["home_store"].queryset = Store.objects.filter(shop=shop)
        if "referred_by" in self.fields:
            referrers = Member.objects.filter(shop=shop)
            if self.instance.pk:
                referrers = referrers.exclude(pk=self.instance.pk)
            self.fields["referred_by"].queryset = referrers
        for key in ("birthday_month", "birthday_day", "birth_year"):
            if key in self.fields:
                self.fields[key].required = False
        if "status" in self.fields:
            self.fields["status"].choices = [
                c for c in self.fields["status"].choices if c[0] != "erased"
            ]
        for key, field in self.fields.items():
            if key.startswith(CUSTOM_PREFIX) and self.instance.pk:
                field.initial = self.instance.custom_fields.get(
                    key[len(CUSTOM_PREFIX) :]
                )

    @property
    def error_fields(self):
        names = {"custom_fields." + k[len(CUSTOM_PREFIX) :]: k for k in self.fields}
        return {k: v for k, v in names.items() if v.startswith(CUSTOM_PREFIX)}

    def _values(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if k in EDITABLE_FIELDS}
        custom = {}
        for key, value in self.cleaned_data.items():
            if key.startswith(CUSTOM_PREFIX):
                if hasattr(value, "isoformat"):
                    value = value.isoformat()
                elif value is not None and not isinstance(value, bool | str):
                    value = str(value)
                # "" clears the value: the service drops empty ones.
                custom[key[len(CUSTOM_PREFIX) :]] = "" if value is None else value
        if custom:
            data["custom_fields"] = custom
        return data

    def perform(self):
        values = self._values()
        try:
            if self.instance.pk is None:
                values.pop("status", None)
                return register_member(
                    shop=self.request.shop,
                    source=MemberSource.COUNTER,
                    consent_source="staff",
                    acting_user=self.request.user,
                    **values,
                )
            changes = {
                k: v
                for k, v in values.items()
                if k == "custom_fields" or getattr(self.instance, k, None) != v
            }
            return update_member(
                member=self.instance,
                changes=changes,
                acting_user=self.request.user,
                consent_source="staff",
            )
        except MemberExists as exc:
            raise ValidationError({exc.field: [exc.message]}) from exc


class CounterForm(forms.Form):
    """Phone first: the member with this phone, or a new one, in one step."""

    phone = forms.CharField(
        label=_("Phone"),
        max_length=40,
        widget=UnfoldAdminTextInputWidget(attrs={"autofocus": True}),
        help_text=_("The member is found, or registered if new."),
    )
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        required=False,
        widget=UnfoldAdminTextInputWidget,
    )
    email = forms.CharField(
        label=_("Email"),
        max_length=254,
        required=False,
        widget=UnfoldAdminEmailInputWidget,
    )
    home_store = forms.ModelChoiceField(
        label=_("Home store"),
        queryset=Store.objects.unscoped().none(),
        required=False,
        widget=UnfoldAdminSelectWidget,
    )
    sms_consent = forms.BooleanField(
        label=_("Agrees to marketing by SMS"),
        required=False,
        widget=UnfoldBooleanSwitchWidget,
    )

    def __init__(self, *args, shop=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["home_store"].queryset = Store.objects.filter(
            shop=shop, is_active=True
        )
