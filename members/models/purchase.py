from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from shops.models import Store, TenantModel

from .member import Member

ZERO = Decimal("0.00")


class PurchaseStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    COMPLETED = "completed", _("Completed")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")
    CANCELLED = "cancelled", _("Cancelled")


# A purchase counts (tiers, points, RFM, the member's figures) in these states.
COUNTED_STATUSES = (PurchaseStatus.COMPLETED, PurchaseStatus.PARTIALLY_REFUNDED)


class PurchaseChannel(models.TextChoices):
    STORE = "store", _("In store")
    ONLINE = "online", _("Online shop")
    APP = "app", _("App or mini-program")
    PHONE = "phone", _("Phone order")
    OTHER = "other", _("Other")


class Purchase(TenantModel):
    """A member's purchase (消费). It counts once completed: when the customer
    has confirmed receipt."""

    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="purchases",
        verbose_name=_("member"),
        # Served by a shop-led composite index.
        db_index=False,
    )
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store"),
        # Served by a shop-led composite index.
        db_index=False,
    )
    external_order_id = models.CharField(_("order number"), max_length=64)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    discount = models.DecimalField(
        _("discount"), max_digits=12, decimal_places=2, default=ZERO
    )
    paid_amount = models.DecimalField(_("paid"), max_digits=12, decimal_places=2)
    refunded_amount = models.DecimalField(
        _("refunded"), max_digits=12, decimal_places=2, default=ZERO
    )
    currency = models.CharField(_("currency"), max_length=3)
    channel = models.CharField(
        _("channel"), max_length=10, choices=PurchaseChannel.choices, default="store"
    )
    status = models.CharField(
        _("status"), max_length=20, choices=PurchaseStatus.choices, default="pending"
    )
    occurred_at = models.DateTimeField(_("time of purchase"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "external_order_id"], name="members_purchase_order_uniq"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0)
                & Q(discount__gte=0)
                & Q(paid_amount__gte=0)
                & Q(refunded_amount__gte=0)
                & Q(refunded_amount__lte=models.F("paid_amount")),
                name="members_purchase_amounts_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["shop", "member", "-occurred_at"],
                name="members_purchase_member_idx",
            ),
            models.Index(
                fields=["shop", "store", "-occurred_at"],
                name="members_purchase_store_idx",
            ),
            models.Index(
                fields=["shop", "-occurred_at"], name="members_purchase_time_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.external_order_id

    @property
    def net_amount(self) -> Decimal:
        return self.paid_amount - self.refunded_amount

    @property
    def counts(self) -> bool:
        return self.status in COUNTED_STATUSES


class PurchaseLine(TenantModel):
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.CASCADE,
        related_name="lines",
        verbose_name=_("purchase"),
        # Served by a shop-led composite index.
        db_index=False,
    )
    sku = models.CharField(_("SKU"), max_length=64, blank=True)
    name = models.CharField(_("item"), max_length=200)
    quantity = models.DecimalField(_("quantity"), max_digits=10, decimal_places=3)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    refunded_quantity = models.DecimalField(
        _("refunded quantity"), max_digits=10, decimal_places=3, default=Decimal("0")
    )

    class Meta(TenantModel.Meta):
        ordering = ["id"]
        verbose_name = _("purchase line")
        verbose_name_plural = _("purchase lines")
        indexes = [
            models.Index(fields=["shop", "purchase"], name="members_line_purchase_idx"),
            models.Index(fields=["shop", "sku"], name="members_line_sku_idx"),
        ]

    @property
    def line_total(self) -> Decimal:
        return self.quantity * self.unit_price


class Refund(TenantModel):
    """A full or partial refund of a completed purchase."""

    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.CASCADE,
        related_name="refunds",
        verbose_name=_("purchase"),
        # Served by a shop-led composite index.
        db_index=False,
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # {"<line id>": "<quantity>"} when refunded by lines.
    lines = models.JSONField(_("lines"), default=dict, blank=True)
    external_refund_id = models.CharField(_("refund number"), max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "purchase", "external_refund_id"],
                condition=~Q(external_refund_id=""),
                name="members_refund_external_uniq",
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="members_refund_positive"
            ),
        ]
        indexes = [
            models.Index(
                fields=["shop", "purchase"], name="members_refund_purchase_idx"
            )
        ]
