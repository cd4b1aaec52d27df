"""The shop's points policy and earning rules."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from shops.models import Store, TenantModel


class Rounding(models.TextChoices):
    DOWN = "down", _("Round down")
    HALF_UP = "half_up", _("Round to the nearest")
    UP = "up", _("Round up")


class ExpiryMode(models.TextChoices):
    NEVER = "never", _("Never")
    MONTHS = "months", _("N months after they are earned")
    END_OF_NEXT_YEAR = "end_of_next_year", _("At the end of the following year")


class RefundPolicy(models.TextChoices):
    GO_NEGATIVE = "go_negative", _("Take them all back; the balance may go negative")
    TAKE_REMAINING = "take_remaining", _("Take back only what is left")


class PointsPolicy(TenantModel):
    """One shop's points settings (one per shop)."""

    expiry = models.CharField(
        _("points expire"),
        max_length=16,
        choices=ExpiryMode.choices,
        default=ExpiryMode.END_OF_NEXT_YEAR,
    )
    expiry_months = models.PositiveSmallIntegerField(
        _("months until they expire"),
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
    )
    pending_days = models.PositiveSmallIntegerField(
        _("return window (days)"),
        default=0,
        validators=[MaxValueValidator(365)],
        help_text=_("Points from a purchase can be spent only after this many days."),
    )
    refund_policy = models.CharField(
        _("when refunded points were already spent"),
        max_length=16,
        choices=RefundPolicy.choices,
        default=RefundPolicy.TAKE_REMAINING,
    )
    daily_cap = models.PositiveIntegerField(
        _("most points a member earns a day"),
        null=True,
        blank=True,
        help_text=_("Empty: no cap."),
    )
    # Points as cash: `cash_points` points are worth `cash_value`.
    cash_points = models.PositiveIntegerField(
        _("points"), default=100, validators=[MinValueValidator(1)]
    )
    cash_value = models.DecimalField(
        _("are worth"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    cash_min_points = models.PositiveIntegerField(
        _("fewest points to pay with"), default=0
    )
    cash_max_share = models.DecimalField(
        _("largest share of an order paid with points (%)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("50.00"),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(TenantModel.Meta):
        verbose_name = _("points policy")
        verbose_name_plural = _("points policies")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["shop"], name="points_policy_one_per_shop"),
            models.CheckConstraint(
                condition=Q(cash_points__gt=0, cash_value__gt=0),
                name="points_policy_cash_rate_positive",
            ),
            models.CheckConstraint(
                condition=Q(cash_max_share__gte=0, cash_max_share__lte=100),
                name="points_policy_share_range",
            ),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)


class RuleKind(models.TextChoices):
    PURCHASE = "purchase", _("Per purchase")
    REGISTRATION = "registration", _("Registration bonus")
    REFERRAL = "referral", _("Referral bonus")
    BIRTHDAY = "birthday", _("Birthday bonus")
    PROFILE = "profile", _("Completed profile bonus")


class EarningRule(TenantModel):
    """How members earn points: one rule of each kind per shop."""

    kind = models.CharField(_("kind"), max_length=16, choices=RuleKind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    # Per purchase: points per 1 unit of currency paid (e.g. 1 point per 1 CNY),
    # times the member's tier multiplier, rounded by `rounding`.
    points_per_unit = models.DecimalField(
        _("points per 1.00 paid"),
        max_digits=8,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal(0))],
    )
    rounding = models.CharField(
        _("rounding"), max_length=8, choices=Rounding.choices, default=Rounding.DOWN
    )
    excluded_stores = models.ManyToManyField(
        Store, blank=True, related_name="+", verbose_name=_("not in these stores")
    )
    excluded_skus = models.TextField(
        _("not for these SKUs"), blank=True, help_text=_("One SKU per line.")
    )
    # Bonus rules: a fixed number of points. Referral: each side gets this
    # once the new member's first purchase completes.
    points = models.PositiveIntegerField(_("points"), default=0)
    daily_cap = models.PositiveIntegerField(
        _("most points a member earns a day by this rule"),
        null=True,
        blank=True,
        help_text=_("Empty: no cap."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["kind"]
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "kind"],
                name="points_rule_kind_uniq",
                violation_error_message=_("The shop has a rule of this kind already."),
            ),
        ]

    def __str__(self) -> str:
        return self.get_kind_display()
