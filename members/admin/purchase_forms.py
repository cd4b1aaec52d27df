"""Forms of the purchases admin: the counter's "record a purchase" and refunds.
They translate input; the rules live in `members.services.purchases`."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from members.models import PurchaseChannel
from members.selectors.purchases import allowed_store_ids, member_at_counter
from shops.errors import DomainError
from shops.models import Store


class RecordPurchaseForm(forms.Form):
    member = forms.CharField(
        label=_("Member"),
        max_length=40,
        help_text=_("Phone number, its last four digits, or the member code."),
    )
    amount = forms.DecimalField(
        label=_("Amount"), max_digits=12, decimal_places=2, min_value=0
    )
    discount = forms.DecimalField(
        label=_("Discount"),
        max_digits=12,
        decimal_places=2,
        min_value=0,
        required=False,
        help_text=_("Taken off the amount; the member paid the rest."),
    )
    # Empty until __init__ sets the request's shop's stores (no scope at import).
    store = forms.ModelChoiceField(
        label=_("Store"), queryset=Store.objects.unscoped().none(), required=False
    )
    external_order_id = forms.CharField(
        label=_("Order number"),
        max_length=64,
        required=False,
        help_text=_("From the till receipt; left empty, one is made up."),
    )
    channel = forms.ChoiceField(label=_("Channel"), choices=PurchaseChannel.choices)
    complete = forms.BooleanField(
        label=_("Completed now"),
        required=False,
        help_text=_("The customer has the goods: it counts at once."),
    )
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        stores = Store.objects.filter(is_active=True)
        allowed = allowed_store_ids(getattr(request, "membership", None))
        if allowed is not None:
            # A clerk limited to some stores records for those only.
            stores = stores.filter(pk__in=allowed)
            self.fields["store"].required = True
        self.fields["store"].queryset = stores

    def clean_member(self):
        member = member_at_counter(
            shop=self.request.shop, text=self.cleaned_data["member"]
        )
        if member is None:
            raise forms.ValidationError(
                _(
                    "No single member matches. Type the whole phone number or "
                    "the member code."
                )
            )
        return member


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount"),
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text=_(
            "Leave empty to refund the items below, or everything that is left."
        ),
    )
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)

    def __init__(self, *args, lines, **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = lines
        for line in lines:
            left = line.quantity - line.refunded_quantity
            self.fields[f"line_{line.pk}"] = forms.DecimalField(
                label=f"{line.name} ({line.sku})" if line.sku else line.name,
                max_digits=10,
                decimal_places=3,
                min_value=0,
                max_value=left,
                required=False,
                help_text=_("Up to %(left)s back") % {"left": left.normalize()},
            )

    def line_quantities(self) -> dict[int, Decimal]:
        return {
            line.pk: self.cleaned_data[f"line_{line.pk}"]
            for line in self.lines
            if self.cleaned_data.get(f"line_{line.pk}")
        }


def form_errors_from(form: forms.Form, exc: Exception) -> None:
    """Show a service's refusal on the form, by field where the form has it."""
    if isinstance(exc, DomainError):
        fields = {k: v for k, v in exc.fields.items() if k in form.fields}
        for name, messages in fields.items():
            form.add_error(name, messages)
        if not fields:
            form.add_error(None, str(exc.message))
        return
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for name, messages in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, messages)
        return
    form.add_error(None, exc.messages if isinstance(exc, ValidationError) else str(exc))
