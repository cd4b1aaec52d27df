import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from shops.tenancy import ShopScopedManager


class User(AbstractUser):
    """A person who signs in to the admin; staff of one or more shops."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = _("user")
        verbose_name_plural = _("users")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("%(value)s is not a known time zone."), params={"value": value}
        )


class Shop(models.Model):
    """The tenant: a merchant or brand that owns members, rules and staff."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(
        _("web address"),
        max_length=60,
        unique=True,
        help_text=_("Used in the members' portal address: /m/<slug>/"),
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        default="CNY",
        validators=[
            RegexValidator(r"^[A-Z]{3}$", _("Use a three-letter ISO code, e.g. CNY."))
        ],
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="Asia/Shanghai",
        validators=[validate_time_zone],
    )
    country = models.CharField(
        _("country"),
        max_length=2,
        default="CN",
        validators=[
            RegexValidator(r"^[A-Z]{2}$", _("Use a two-letter ISO code, e.g. CN."))
        ],
        help_text=_("The default region for phone numbers."),
    )
    language = models.CharField(
        _("default language"),
        max_length=10,
        choices=settings.LANGUAGES,
        default="zh-hans",
    )
    logo = models.ImageField(_("logo"), upload_to="shop-logos/", blank=True)
    brand_color = models.CharField(
        _("brand colour"),
        max_length=7,
        default="#0f766e",
        validators=[
            RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #0f766e."))
        ],
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("shop")
        verbose_name_plural = _("shops")

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class TenantModel(models.Model):
    """Base of every tenant-owned table.

    A non-null shop, the fail-closed scoped default manager, and a unique
    (shop, id) so that the key can be widened to distribute by shop later.
    Every unique constraint of a subclass must include `shop`.
    """

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, verbose_name=_("shop"), db_index=False
    )

    objects = ShopScopedManager()

    class Meta:
        abstract = True
        default_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "id"], name="%(app_label)s_%(class)s_shop_id_uniq"
            )
        ]


class BulkTenantModel(TenantModel):
    """Base of the tenant tables written hundreds of thousands of rows at a
    time by one statement (a whole-shop recalculation's tier rows, history
    and events; expiry's ledger entries and lot consumptions): the shop key
    is loose, not a constraint in the database. PostgreSQL checks each key
    of each inserted row on its own, 7 to 11 µs apiece, up to half of such a
    statement (bench/README.md); the writer names the shop itself. Deleting
    a shop goes through Django, which deletes these rows with it."""

    shop = models.ForeignKey(
        Shop,
        on_delete=models.CASCADE,
        verbose_name=_("shop"),
        db_index=False,
        db_constraint=False,
    )

    class Meta(TenantModel.Meta):
        abstract = True


class TenantJob(TenantModel):
    """Base of the records of work done in the background for a shop (an
    import, a recalculation, a tagging job): who asked, when, when it ended.
    Newest first."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta(TenantModel.Meta):
        abstract = True
        ordering = ["-id"]


class Store(TenantModel):
    """A branch (门店) of a shop."""

    name = models.CharField(_("name"), max_length=120)
    code = models.SlugField(
        _("code"),
        max_length=32,
        help_text=_("Short and unique in the shop, e.g. SH01."),
    )
    address = models.TextField(_("address"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["code"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "code"], name="shops_store_code_uniq"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    CLERK = "clerk", _("Clerk")


class StaffMembership(TenantModel):
    """A user's role in a shop, optionally limited to some of its stores."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    role = models.CharField(
        _("role"), max_length=16, choices=Role.choices, default=Role.CLERK
    )
    stores = models.ManyToManyField(
        Store,
        through="StaffStoreAccess",
        blank=True,
        verbose_name=_("limited to stores"),
        help_text=_("Leave empty for every store."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["user__username"]
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "user"], name="shops_staff_user_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"


class StaffStoreAccess(TenantModel):
    """One store that a staff member is limited to."""

    membership = models.ForeignKey(
        StaffMembership, on_delete=models.CASCADE, verbose_name=_("staff member")
    )
    store = models.ForeignKey(Store, on_delete=models.CASCADE, verbose_name=_("store"))

    class Meta(TenantModel.Meta):
        verbose_name = _("store access")
        verbose_name_plural = _("store access")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "membership", "store"], name="shops_staff_store_uniq"
            ),
        ]

    def __str__(self) -> str:
        return str(self.store)
