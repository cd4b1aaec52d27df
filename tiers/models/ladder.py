"""The ladder (ordered tiers with their thresholds and benefits) and the shop's
qualification policy."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from shops.models import TenantModel

ZERO = Decimal("0.00")


class Tier(TenantModel):
    """One rung of the shop's ladder (等级), e.g. normal, senior, VIP, supreme VIP.

    The lowest rank is the entry tier every member holds without qualifying;
    its thresholds are 0. A member reaches a tier by meeting its thresholds
    under the shop's `TierPolicy` (spend, orders, either or both).
    """

    name = models.CharField(_("name"), max_length=60)
    # {"zh-hans": "金卡", "en": "Gold"}: the name in other languages, shown to
    # members and staff who read that language.
    name_translations = models.JSONField(
        _("name in other languages"), default=dict, blank=True
    )
    rank = models.PositiveSmallIntegerField(
        _("rank"), help_text=_("0 is the entry tier; higher ranks are better.")
    )
    colour = models.CharField(
        _("colour"), max_length=7, default="#64748b", help_text=_("e.g. #d4a017")
    )
    badge = models.ImageField(_("badge"), upload_to="tiers/badges/", blank=True)
    description = models.TextField(_("description"), blank=True)
    min_spend = models.DecimalField(
        _("spend needed"),
        max_digits=12,
        decimal_places=2,
        default=ZERO,
        validators=[MinValueValidator(ZERO)],
    )
    min_orders = models.PositiveIntegerField(_("orders needed"), default=0)
    discount_percent = models.DecimalField(
        _("discount (%)"),
        max_digits=5,
        decimal_places=2,
        default=ZERO,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal(100))],
    )
    points_multiplier = models.DecimalField(
        _("points multiplier"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    free_shipping = models.BooleanField(_("free shipping"), default=False)
    birthday_points = models.PositiveIntegerField(
        _("birthday gift (points)"), default=0
    )
    perks = models.TextField(_("other perks"), blank=True, help_text=_("One per line."))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["rank"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "rank"],
                name="tiers_tier_rank_uniq",
                violation_error_message=_("Two tiers cannot have the same rank."),
            ),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0, discount_percent__lte=100),
                name="tiers_tier_discount_range",
            ),
            models.CheckConstraint(
                condition=Q(points_multiplier__gt=0),
                name="tiers_tier_multiplier_positive",
            ),
            models.CheckConstraint(
                condition=Q(min_spend__gte=0), name="tiers_tier_spend_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name()

    def display_name(self, language: str | None = None) -> str:
        """The name in `language` (the active language by default), else `name`."""
        language = (language or translation.get_language() or "").lower()
        names = self.name_translations or {}
        return names.get(language) or names.get(language.split("-")[0]) or self.name


class Basis(models.TextChoices):
    SPEND = "spend", _("Spend")
    ORDERS = "orders", _("Orders")
    EITHER = "either", _("Spend or orders (either is enough)")
    BOTH = "both", _("Spend and orders (both are needed)")


class Window(models.TextChoices):
    LIFETIME = "lifetime", _("Since joining (lifetime)")
    ROLLING = "rolling", _("A rolling window of N months")
    CALENDAR_YEAR = "calendar_year", _("The calendar year")


class DowngradeRule(models.TextChoices):
    HIGHEST_MET = "highest_met", _("To the highest tier still met")
    ONE_STEP = "one_step", _("One step down at most")
    NEVER = "never", _("Never")


class TierPolicy(TenantModel):
    """How members of one shop qualify (one per shop).

    Upgrades happen as soon as a completed purchase crosses a threshold.
    Downgrades happen only at the end of a member's period (rolling: N months
    after the tier was reached or last renewed; calendar year: 31 December in
    the shop's time zone; lifetime: never), after `grace_days`, by
    `downgrade`. Refunds count against the figures of the period they fall in.
    """

    basis = models.CharField(
        _("qualify on"), max_length=8, choices=Basis.choices, default=Basis.SPEND
    )
    window = models.CharField(
        _("counted over"),
        max_length=16,
        choices=Window.choices,
        default=Window.LIFETIME,
    )
    window_months = models.PositiveSmallIntegerField(
        _("months in the window"),
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=_("For a rolling window only."),
    )
    downgrade = models.CharField(
        _("at the end of a period"),
        max_length=12,
        choices=DowngradeRule.choices,
        default=DowngradeRule.HIGHEST_MET,
    )
    grace_days = models.PositiveSmallIntegerField(
        _("grace period (days)"),
        default=0,
        validators=[MaxValueValidator(366)],
        help_text=_("Days a member keeps the tier after the period ends."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(TenantModel.Meta):
        verbose_name = _("qualification policy")
        verbose_name_plural = _("qualification policies")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["shop"], name="tiers_policy_one_per_shop"),
            models.CheckConstraint(
                condition=Q(window_months__gte=1), name="tiers_policy_window_positive"
            ),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)
