"""The rewards catalogue and redemptions (of rewards and of points as cash)."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member, Purchase
from shops.models import Store, TenantModel
from tiers.models import Tier

from .ledger import PointsEntry


class Reward(TenantModel):
    """Something members can take for points (兑换礼品)."""

    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    image = models.ImageField(_("image"), upload_to="rewards/", blank=True)
    points_price = models.PositiveIntegerField(
        _("points"), validators=[MinValueValidator(1)]
    )
    # Empty: unlimited.
    stock = models.PositiveIntegerField(_("in stock"), null=True, blank=True)
    per_member_limit = models.PositiveIntegerField(
        _("most per member"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    tiers = models.ManyToManyField(
        Tier,
        blank=True,
        related_name="+",
        verbose_name=_("for these tiers"),
        help_text=_("Empty: every tier."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    # Redeemable between these times (empty: no limit).
    available_from = models.DateTimeField(_("redeemable from"), null=True, blank=True)
    available_until = models.DateTimeField(_("redeemable until"), null=True, blank=True)
    # Shown to members between these times (empty: while redeemable).
    visible_from = models.DateTimeField(_("shown from"), null=True, blank=True)
    visible_until = models.DateTimeField(_("shown until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["points_price", "id"]
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        constraints = [
            *TenantModel.Meta.constraints,
            models.CheckConstraint(
                condition=Q(points_price__gt=0), name="points_reward_price_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RedemptionKind(models.TextChoices):
    REWARD = "reward", _("Reward")
    ORDER_PAYMENT = "order_payment", _("Paid with points")


class RedemptionStatus(models.TextChoices):
    COMPLETED = "completed", _("Redeemed")
    CANCELLED = "cancelled", _("Cancelled")


class Redemption(TenantModel):
    """Points spent on a reward or on an order; cancelling returns the points
    to their original lots (same expiry)."""

    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="redemptions",
        verbose_name=_("member"),
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=16, choices=RedemptionKind.choices)
    reward = models.ForeignKey(
        Reward,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="redemptions",
        verbose_name=_("reward"),
    )
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    points = models.PositiveIntegerField(_("points"))
    # Points as cash: what the points paid, and the order they paid for.
    cash_value = models.DecimalField(
        _("worth"), max_digits=12, decimal_places=2, default=Decimal("0.00")
    )
    external_order_id = models.CharField(_("order number"), max_length=64, blank=True)
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("purchase"),
    )
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store"),
    )
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=RedemptionStatus.choices,
        default=RedemptionStatus.COMPLETED,
    )
    debit = models.ForeignKey(
        PointsEntry,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("ledger entry"),
    )
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    actor_label = models.CharField(_("by (key or task)"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        indexes = [
            models.Index(
                fields=["shop", "member", "-created_at"],
                name="points_redemption_member_idx",
            ),
            models.Index(
                fields=["shop", "reward", "member"],
                condition=Q(reward__isnull=False),
                name="points_redemption_reward_idx",
            ),
            models.Index(
                fields=["shop", "external_order_id"],
                condition=~Q(external_order_id=""),
                name="points_redemption_order_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.points}"
