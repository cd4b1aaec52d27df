"""Staff forms of the points admin: the member page's adjustment and counter
redemption, and the rules editors (policy, earning rules, rewards).

The adjustment and redemption forms call the ledger and rewards services in
`perform()`; a refusal of the service (not enough points, out of stock, ...)
becomes a form error and nothing is written, since the service runs in its
own transaction.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from points.models import EarningRule, ExpiryMode, PointsPolicy, Reward, RuleKind
from shops.models import Store
from shops.tenancy import current_shop_or_none
from tiers.models import Tier


def _add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """A service's ValidationError as errors on the matching fields."""
    if hasattr(error, "error_dict"):
        for name, messages in error.message_dict.items():
            form.add_error(name if name in form.fields else None, messages)
        return
    # The rewards service names the field a refusal is about, when one is.
    field = getattr(error, "field", None)
    form.add_error(field if field in form.fields else None, error.messages)


class _OnceForm(forms.Form):
    """A hidden key made when the form is shown, so a double click (or a
    resubmitted page) writes once: the services return the first result."""

    once = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["once"].initial = uuid.uuid4().hex

    def idempotency_key(self, prefix: str) -> str:
        once = (self.cleaned_data.get("once") or "").strip()
        return f"{prefix}:{once}" if once else ""


class AdjustmentForm(_OnceForm):
    points = forms.IntegerField(
        label=_("Points"),
        help_text=_("Positive to add, negative to take away (e.g. -50)."),
        widget=UnfoldAdminIntegerFieldWidget,
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        help_text=_("Required: the member and your colleagues will read it."),
        widget=UnfoldAdminTextInputWidget,
    )

    def clean_points(self):
        points = self.cleaned_data["points"]
        if points == 0:
            raise ValidationError(_("Enter a number of points other than zero."))
        return points

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError(_("Say why the points change."))
        return reason

    def perform(self, *, member, acting_user):
        from points.services import ledger

        try:
            return ledger.adjust(
                member=member,
                points=self.cleaned_data["points"],
                reason=self.cleaned_data["reason"],
                acting_user=acting_user,
                idempotency_key=self.idempotency_key(f"admin-adjust:{member.pk}"),
            )
        except ValidationError as error:
            _add_service_errors(self, error)
            return None


class RedeemForm(_OnceForm):
    reward = forms.ModelChoiceField(
        label=_("Reward"),
        # The request's shop's active rewards, set in __init__.
        queryset=Reward.objects.unscoped().none(),
        widget=UnfoldAdminSelectWidget,
    )
    quantity = forms.IntegerField(
        label=_("Quantity"),
        min_value=1,
        max_value=100,
        initial=1,
        widget=UnfoldAdminIntegerFieldWidget,
    )
    store = forms.ModelChoiceField(
        label=_("Store"),
        queryset=Store.objects.unscoped().none(),
        required=False,
        widget=UnfoldAdminSelectWidget,
    )

    def __init__(self, *args, shop=None, store_ids=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reward"].queryset = Reward.objects.filter(
            shop=shop, is_active=True
        ).order_by("points_price", "id")
        self.fields["reward"].label_from_instance = lambda reward: (
            _("%(name)s (%(points)s points)")
            % {"name": reward.name, "points": reward.points_price}
        )
        stores = Store.objects.filter(shop=shop, is_active=True)
        if store_ids:
            stores = stores.filter(pk__in=store_ids)
            self.fields["store"].required = True
            self.fields["store"].initial = store_ids[0]
        self.fields["store"].queryset = stores

    def perform(self, *, member, acting_user):
        from points.services import rewards

        data = self.cleaned_data
        try:
            return rewards.redeem_reward(
                member=member,
                reward=data["reward"],
                quantity=data["quantity"],
                store=data.get("store"),
                idempotency_key=self.idempotency_key(f"admin-redeem:{member.pk}"),
                acting_user=acting_user,
            )
        except ValidationError as error:
            _add_service_errors(self, error)
            return None


# Rules ------------------------------------------------------------------------


class PointsPolicyForm(forms.ModelForm):
    class Meta:
        model = PointsPolicy
        fields = [
            "expiry",
            "expiry_months",
            "pending_days",
            "refund_policy",
            "daily_cap",
            "cash_points",
            "cash_value",
            "cash_min_points",
            "cash_max_share",
        ]
        help_texts = {
            "expiry": _(
                "When earned points expire. The oldest expiring points are spent first."
            ),
            "expiry_months": _(
                "Used when points expire N months after they are earned (1 to 120)."
            ),
            "pending_days": _(
                "The return window: points from a purchase are pending, not "
                "spendable, for this many days. 0: spendable at once."
            ),
            "refund_policy": _(
                "When a refunded purchase's points were already spent: take them "
                "all back (the balance may go below zero) or only what is left."
            ),
            "daily_cap": _(
                "The most points one member earns a day, all rules together. "
                "Empty: no cap."
            ),
            "cash_points": _(
                "Points as cash: this many points ... (e.g. 20 points = 1.00)."
            ),
            "cash_value": _("... are worth this much money when paying an order."),
            "cash_min_points": _(
                "A member pays with points only from this many points on. 0: any."
            ),
            "cash_max_share": _(
                "At most this share of an order (0 to 100 %) may be paid with points."
            ),
        }

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("expiry") == ExpiryMode.MONTHS and not cleaned.get(
            "expiry_months"
        ):
            self.add_error(
                "expiry_months", _("Say after how many months points expire.")
            )
        share = cleaned.get("cash_max_share")
        if share is not None and not Decimal(0) <= share <= Decimal(100):
            self.add_error("cash_max_share", _("Enter a share from 0 to 100."))
        return cleaned


def _this_shops(model):
    """The current shop's rows (none outside a shop, e.g. the all-shops view)."""
    shop = current_shop_or_none()
    if shop is None:
        return model.objects.unscoped().none()
    return model.objects.filter(shop=shop)


class EarningRuleForm(forms.ModelForm):
    # Declared so the choices are read per request, in the request's shop.
    excluded_stores = forms.ModelMultipleChoiceField(
        label=_("not in these stores"),
        queryset=Store.objects.unscoped().none(),
        required=False,
        help_text=_("Per purchase: purchases here earn no points."),
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["excluded_stores"].queryset = _this_shops(Store)

    class Meta:
        model = EarningRule
        fields = [
            "kind",
            "is_active",
            "points_per_unit",
            "rounding",
            "excluded_stores",
            "excluded_skus",
            "points",
            "daily_cap",
        ]
        help_texts = {
            "kind": _(
                "One rule of each kind: per purchase, or a bonus for registering, "
                "a referral (both members, after the new member's first "
                "purchase), a birthday (once a year) or a completed profile."
            ),
            "points_per_unit": _(
                "Per purchase: points for each 1.00 paid, before the tier's "
                "multiplier (e.g. 1.00 = one point per 1.00)."
            ),
            "rounding": _("Per purchase: how fractions of a point are rounded."),
            "excluded_stores": _("Per purchase: purchases here earn no points."),
            "excluded_skus": _(
                "Per purchase: these products earn no points. One SKU per line."
            ),
            "points": _("Bonus rules: the points given each time."),
            "daily_cap": _(
                "The most points one member earns a day by this rule. Empty: no cap."
            ),
        }

    def clean(self):
        cleaned = super().clean()
        kind, active = cleaned.get("kind"), cleaned.get("is_active")
        if kind == RuleKind.PURCHASE:
            if active and not cleaned.get("points_per_unit"):
                self.add_error(
                    "points_per_unit",
                    _("An active purchase rule needs points per 1.00 above zero."),
                )
        elif kind and active and not cleaned.get("points"):
            self.add_error("points", _("An active bonus rule needs points above 0."))
        return cleaned


class RewardForm(forms.ModelForm):
    tiers = forms.ModelMultipleChoiceField(
        label=_("for these tiers"),
        queryset=Tier.objects.unscoped().none(),
        required=False,
        help_text=_("Only members of these tiers may take it. Empty: every tier."),
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tiers"].queryset = _this_shops(Tier)

    class Meta:
        model = Reward
        fields = [
            "name",
            "description",
            "image",
            "points_price",
            "stock",
            "per_member_limit",
            "tiers",
            "is_active",
            "available_from",
            "available_until",
            "visible_from",
            "visible_until",
        ]
        help_texts = {
            "points_price": _("Points for one of these."),
            "stock": _("How many are left. Empty: unlimited."),
            "per_member_limit": _("The most one member may take. Empty: no limit."),
            "tiers": _("Only members of these tiers may take it. Empty: every tier."),
            "available_from": _("Redeemable from then on. Empty: from now."),
            "available_until": _("Redeemable until then. Empty: no end."),
            "visible_from": _("Shown to members from then on. Empty: now."),
            "visible_until": _("Shown to members until then. Empty: no end."),
        }

    def clean(self):
        cleaned = super().clean()
        for start, end in (
            ("available_from", "available_until"),
            ("visible_from", "visible_until"),
        ):
            first, last = cleaned.get(start), cleaned.get(end)
            if first and last and last <= first:
                self.add_error(end, _("The end must come after the start."))
        return cleaned
