from django import forms
from django.utils.translation import gettext_lazy as _


class SignUpForm(forms.Form):
    """A new shop and its owner. The rules live in `sign_up_shop`; field names
    match its arguments, so its errors land on the right field."""

    shop_name = forms.CharField(
        label=_("Shop name"),
        max_length=120,
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )
    slug = forms.CharField(
        label=_("Web address"),
        max_length=60,
        help_text=_(
            "Your members' page will be at /m/<web address>/. Use English "
            "letters, digits and hyphens, e.g. jade-tea (a Chinese name needs "
            "pinyin or an English word here)."
        ),
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false"}),
    )
    owner_name = forms.CharField(
        label=_("Your name"),
        max_length=150,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    owner_email = forms.EmailField(
        label=_("Email"),
        help_text=_("You log in with this email."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    owner_password = forms.CharField(
        label=_("Password"),
        strip=False,
        help_text=_(
            "At least 8 characters; not too common, not only digits, not like "
            "your email."
        ),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_slug(self) -> str:
        return self.cleaned_data["slug"].strip().lower()


class SwitchShopForm(forms.Form):
    """The shop switcher's POST: a shop id, or "all" (superusers)."""

    shop = forms.CharField(max_length=20)
    next = forms.CharField(required=False, max_length=2000)
