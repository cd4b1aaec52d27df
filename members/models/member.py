from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from shops.models import Shop, Store, TenantModel
from shops.tenancy import ShopScopedManager, ShopScopedQuerySet


class MemberCodeSequence(models.Model):
    """The last member number handed out in a shop.

    Member codes are this number scrambled (see members.codes), so they are
    unique by construction, short, and do not reveal how many members a shop
    has. Bulk imports reserve a block with one UPDATE.
    """

    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, primary_key=True)
    last_value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.shop_id}: {self.last_value}"


class Gender(models.TextChoices):
    UNKNOWN = "", _("Not given")
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")


class MemberSource(models.TextChoices):
    COUNTER = "counter", _("At the counter")
    PORTAL = "portal", _("Members' portal")
    QR = "qr", _("QR code")
    REFERRAL = "referral", _("Referral")
    IMPORT = "import", _("Import")
    API = "api", _("API")


class MemberStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    INACTIVE = "inactive", _("Inactive")
    BLOCKED = "blocked", _("Blocked")
    ERASED = "erased", _("Erased")


class MemberQuerySet(ShopScopedQuerySet):
    # Sorted by the last purchase, a member who never bought counts as the
    # longest ago: last when the newest come first, first the other way round
    # (PostgreSQL would put them first when newest first). The list index
    # holds them so, and so both directions read it in order.
    _NEVER_BOUGHT_OLDEST = {
        "last_purchase_at": F("last_purchase_at").asc(nulls_first=True),
        "-last_purchase_at": F("last_purchase_at").desc(nulls_last=True),
    }

    def order_by(self, *field_names):
        never_bought = self._NEVER_BOUGHT_OLDEST
        return super().order_by(
            *(never_bought.get(f, f) if isinstance(f, str) else f for f in field_names)
        )


class Member(TenantModel):
    """A shop's member (会员). Personal data can be erased; the row stays for
    the accounts (purchases, points) with its personal fields blanked."""

    objects = ShopScopedManager.from_queryset(MemberQuerySet)()

    member_code = models.CharField(_("member code"), max_length=16, editable=False)
    name = models.CharField(_("name"), max_length=100, blank=True)
    phone = models.CharField(
        _("phone"), max_length=20, blank=True, help_text=_("Stored as +8613800138000.")
    )
    # The last four digits, for the counter's "phone ends with 1234" search.
    phone_last4 = models.CharField(max_length=4, blank=True, editable=False)
    email = models.EmailField(_("email"), blank=True)
    birthday_month = models.PositiveSmallIntegerField(_("birthday month"), null=True)
    birthday_day = models.PositiveSmallIntegerField(_("birthday day"), null=True)
    birth_year = models.PositiveSmallIntegerField(
        _("birth year"), null=True, blank=True
    )
    gender = models.CharField(
        _("gender"), max_length=8, choices=Gender.choices, blank=True, default=""
    )
    language = models.CharField(
        _("preferred language"), max_length=10, choices=settings.LANGUAGES, blank=True
    )
    home_store = models.ForeignKey(
        Store,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("home store"),
        # Served by a shop-led composite index.
        db_index=False,
    )
    source = models.CharField(
        _("source"), max_length=10, choices=MemberSource.choices, default="counter"
    )
    referred_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referrals",
        verbose_name=_("referred by"),
        # Served by a shop-led composite index.
        db_index=False,
    )
    status = models.CharField(
        _("status"), max_length=10, choices=MemberStatus.choices, default="active"
    )
    joined_at = models.DateTimeField(_("joined"), default=timezone.now)
    sms_consent = models.BooleanField(_("SMS marketing"), default=False)
    sms_consent_at = models.DateTimeField(_("SMS consent changed"), null=True)
    email_consent = models.BooleanField(_("email marketing"), default=False)
    email_consent_at = models.DateTimeField(_("email consent changed"), null=True)
    notes = models.TextField(_("notes"), blank=True)
    custom_fields = models.JSONField(
        _("custom fields"), default=dict, blank=True, encoder=DjangoJSONEncoder
    )
    external_id = models.CharField(_("external ID"), max_length=64, blank=True)

    # Kept in the transaction that completes, refunds or cancels a purchase, for
    # O(1) reads: over completed purchases, net of refunds.
    total_spent = models.DecimalField(
        _("total spent"), max_digits=14, decimal_places=2, default=Decimal("0.00")
    )
    order_count = models.PositiveIntegerField(_("orders"), default=0)
    first_purchase_at = models.DateTimeField(_("first purchase"), null=True)
    last_purchase_at = models.DateTimeField(_("last purchase"), null=True)

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    erased_at = models.DateTimeField(_("erased"), null=True)

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "member_code"], name="members_member_code_uniq"
            ),
            models.UniqueConstraint(
                fields=["shop", "phone"],
                condition=~Q(phone=""),
                name="members_member_phone_uniq",
            ),
            models.UniqueConstraint(
                fields=["shop", "email"],
                condition=~Q(email=""),
                name="members_member_email_uniq",
            ),
            models.UniqueConstraint(
                fields=["shop", "external_id"],
                condition=~Q(external_id=""),
                name="members_member_external_id_uniq",
            ),
        ]
        # Every index serving a request is led by the shop. The sort orders
        # of the lists end with the id (ties broken the same way each time),
        # and so do their indexes: a first page then reads 50 index entries
        # in order, even where a million members tie (no purchase yet: spent
        # 0, last purchase NULL) and would otherwise be sorted whole.
        indexes = [
            models.Index(
                fields=["shop", "phone_last4"], name="members_phone_last4_idx"
            ),
            models.Index(fields=["shop", "name", "id"], name="members_name_idx"),
            models.Index(
                fields=["shop", "-joined_at", "-id"], name="members_joined_idx"
            ),
            models.Index(
                F("shop"),
                F("last_purchase_at").desc(nulls_last=True),
                F("id").desc(),
                name="members_last_purchase_idx",
            ),
            models.Index(
                fields=["shop", "-total_spent", "-id"], name="members_spent_idx"
            ),
            models.Index(
                fields=["shop", "-order_count", "-id"], name="members_orders_idx"
            ),
            models.Index(
                fields=["shop", "birthday_month", "birthday_day"],
                name="members_birthday_idx",
            ),
            models.Index(fields=["shop", "status"], name="members_status_idx"),
            models.Index(fields=["shop", "home_store"], name="members_store_idx"),
            models.Index(fields=["shop", "source"], name="members_source_idx"),
            models.Index(fields=["shop", "referred_by"], name="members_referrer_idx"),
        ]

    def __str__(self) -> str:
        return self.name or self.phone or self.member_code


class CustomFieldType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    BOOLEAN = "boolean", _("Yes or no")
    CHOICE = "choice", _("One of a list")


class CustomField(TenantModel):
    """A field the shop adds to its members, e.g. "skin type" or "favourite tea"."""

    key = models.SlugField(
        _("key"), max_length=40, help_text=_("Used in imports and the API, e.g. tea")
    )
    label = models.CharField(_("label"), max_length=80)
    field_type = models.CharField(
        _("type"), max_length=10, choices=CustomFieldType.choices, default="text"
    )
    choices = models.JSONField(
        _("choices"), default=list, blank=True, help_text=_("For 'one of a list'.")
    )
    required = models.BooleanField(_("required"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "key"], name="members_customfield_key_uniq"
            ),
        ]

    def __str__(self) -> str:
        return self.label


# What staff read on the timeline for each `MemberChange.action`; an action
# not listed here is shown as it is stored.
ACTION_LABELS = {
    "created": _("Joined"),
    "imported": _("Imported"),
    "updated": _("Profile changed"),
    "erased": _("Personal data erased"),
    "tag_added": _("Tag added"),
    "tag_removed": _("Tag removed"),
}


class MemberChange(TenantModel):
    """The audit timeline of a member: who changed what, when."""

    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="changes",
        verbose_name=_("member"),
        # Served by a shop-led composite index.
        db_index=False,
    )
    at = models.DateTimeField(_("time"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff member"),
    )
    # Who acted when it was not a staff member: "API key POS", "portal", "task".
    actor_label = models.CharField(_("by"), max_length=100, blank=True)
    action = models.CharField(_("action"), max_length=40)
    changes = models.JSONField(
        _("changes"), default=dict, blank=True, encoder=DjangoJSONEncoder
    )

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        verbose_name = _("member change")
        verbose_name_plural = _("member changes")
        indexes = [
            models.Index(fields=["shop", "member", "-id"], name="members_change_idx")
        ]

    @property
    def action_label(self) -> str:
        return str(ACTION_LABELS.get(self.action, self.action))

    def labelled_changes(self) -> list[tuple[str, object, object]]:
        """(what staff call the field, old value, new value) for each change."""
        labels = {
            field.name: field.verbose_name for field in Member._meta.concrete_fields
        }
        labels["tags"] = _("tags")
        return [
            (str(labels.get(name, name)), *pair)
            for name, pair in (self.changes or {}).items()
        ]


class ConsentChange(TenantModel):
    """Every change of a member's consent to marketing, for the record."""

    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("member"),
        # Served by a shop-led composite index.
        db_index=False,
    )
    channel = models.CharField(_("channel"), max_length=10)  # "sms" or "email"
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=40)  # counter, portal, import...
    at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        verbose_name = _("consent change")
        verbose_name_plural = _("consent changes")
        indexes = [
            models.Index(fields=["shop", "member", "-id"], name="members_consent_idx")
        ]
