import secrets

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .tenants import BulkTenantModel, TenantModel


class OutboxEvent(BulkTenantModel):
    """A domain event, written in the same transaction as the change it reports.

    The relay hands rows with no `relayed_at` to Celery; the consumer fans the
    event out (webhook deliveries, later other handlers) once, guarded by
    `processed_at`.
    """

    topic = models.CharField(_("event"), max_length=100)
    payload = models.JSONField(_("payload"), encoder=DjangoJSONEncoder, default=dict)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    relayed_at = models.DateTimeField(_("handed to the queue"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(
                fields=["id"],
                condition=Q(relayed_at__isnull=True),
                name="shops_outbox_pending_idx",
            ),
            models.Index(
                fields=["id"],
                condition=Q(processed_at__isnull=True),
                name="shops_outbox_unprocessed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(TenantModel):
    """A URL of the shop's that receives the events it subscribes to."""

    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = models.JSONField(
        _("events"),
        default=list,
        blank=True,
        help_text=_("The event types to send, e.g. member.created; * for all."),
    )
    secret = models.CharField(
        _("signing secret"), max_length=80, default=new_webhook_secret, editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["id"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.url

    def wants(self, topic: str) -> bool:
        return "*" in self.events or topic in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    RETRYING = "retrying", _("Retrying")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(TenantModel):
    """One event for one endpoint; claimed before each attempt, so sent once."""

    event = models.ForeignKey(
        OutboxEvent, on_delete=models.CASCADE, verbose_name=_("event")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("endpoint"),
    )
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
    )
    attempt_count = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "event", "endpoint"],
                name="shops_delivery_event_endpoint_uniq",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "retrying", "sending"]),
                name="shops_delivery_due_idx",
            ),
            models.Index(
                fields=["shop", "endpoint", "-id"], name="shops_delivery_endpoint_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint}"


class WebhookAttempt(TenantModel):
    """One HTTP attempt of a delivery, kept for the admin."""

    delivery = models.ForeignKey(
        WebhookDelivery,
        on_delete=models.CASCADE,
        related_name="attempts",
        verbose_name=_("delivery"),
    )
    attempted_at = models.DateTimeField(_("time"), auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(
        _("HTTP status"), null=True, blank=True
    )
    response_excerpt = models.TextField(_("response"), blank=True)
    error = models.TextField(_("error"), blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        indexes = [
            models.Index(fields=["shop", "delivery"], name="shops_attempt_delivery_idx")
        ]

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
