from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from shops.models import TenantModel

from .member import Member


class Tag(TenantModel):
    """A shop-defined label (标签) on members, set by hand or kept by rules."""

    name = models.CharField(_("name"), max_length=50)
    color = models.CharField(_("colour"), max_length=7, default="#64748b")
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "name"], name="members_tag_name_uniq"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TagSource(models.TextChoices):
    MANUAL = "manual", _("By hand")
    RULE = "rule", _("By rule")


class MemberTag(TenantModel):
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="member_tags",
        verbose_name=_("member"),
        # Served by the unique (shop, member, tag).
        db_index=False,
    )
    tag = models.ForeignKey(
        Tag,
        on_delete=models.CASCADE,
        related_name="member_tags",
        verbose_name=_("tag"),
        # Served by the shop-led (shop, tag, member) index.
        db_index=False,
    )
    source = models.CharField(
        _("source"), max_length=8, choices=TagSource.choices, default="manual"
    )
    added_at = models.DateTimeField(_("added"), default=timezone.now)

    class Meta(TenantModel.Meta):
        verbose_name = _("member tag")
        verbose_name_plural = _("member tags")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "member", "tag"], name="members_membertag_uniq"
            ),
        ]
        indexes = [
            models.Index(
                fields=["shop", "tag", "member"], name="members_tag_member_idx"
            )
        ]


class TagRuleKind(models.TextChoices):
    MIN_TOTAL_SPENT = "min_total_spent", _("Total spend at least")
    MIN_ORDERS_IN_DAYS = "min_orders_in_days", _("At least N orders in the last D days")
    NO_PURCHASE_IN_DAYS = "no_purchase_in_days", _("No purchase in D days")
    BIRTHDAY_MONTH = "birthday_month", _("Birthday in month")
    SOURCE_IS = "source_is", _("Joined through")
    CUSTOM_FIELD_EQUALS = "custom_field_equals", _("Custom field equals")


class TagRule(TenantModel):
    """Keeps a tag true: members who meet all of a tag's active rules carry it.

    `params` by kind: {"amount": "1000.00"}, {"orders": 3, "days": 90},
    {"days": 180}, {"month": 5} (0 = the current month), {"source": "qr"},
    {"key": "tea", "value": "oolong"}.
    """

    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, related_name="rules", verbose_name=_("tag")
    )
    kind = models.CharField(_("rule"), max_length=24, choices=TagRuleKind.choices)
    params = models.JSONField(_("parameters"), default=dict)
    is_active = models.BooleanField(_("active"), default=True)
    last_run_at = models.DateTimeField(_("last applied"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["tag", "id"]
        verbose_name = _("tag rule")
        verbose_name_plural = _("tag rules")
