from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from shops import rawsql
from shops.tenancy import ShopScopedManager

from .tenants import Shop, TenantModel


class ApiKeyScope(models.TextChoices):
    READ = "read", _("Read")
    WRITE = "write", _("Read and write")


class ScopedApiKeyManager(ShopScopedManager, BaseAPIKeyManager):
    """The current shop's keys, with the library's key generation."""


class ApiKeyring(BaseAPIKeyManager):
    """Every shop's keys, for authentication only; reads the key's shop with it."""

    _sql: str | None = None  # the lookup statement, built on first use

    def get_usable_keys(self):
        return super().get_usable_keys().select_related("shop")

    def get_from_key(self, key: str):
        """The library's lookup (by prefix, not revoked, then the hash
        checked), with the key's shop, in one hand-written statement: it runs
        on every API request. Raises `DoesNotExist` as the library does."""
        if self._sql is None:
            self._sql = (
                f"SELECT {rawsql.columns_of(self.model, 'k')}, "  # noqa: S608
                f"{rawsql.columns_of(Shop, 's')} "
                f"FROM {self.model._meta.db_table} k "
                f"JOIN {Shop._meta.db_table} s ON s.id = k.shop_id "
                "WHERE k.prefix = %s AND NOT k.revoked"
            )
        with connection.cursor() as cursor:
            rawsql.execute(cursor, self._sql, [key.partition(".")[0]])
            row = cursor.fetchone()
        if row is None:
            raise self.model.DoesNotExist("No usable key has this prefix.")
        width = len(self.model._meta.concrete_fields)
        api_key = rawsql.from_row(self.model, row[:width])
        api_key.shop = rawsql.from_row(Shop, row[width:])
        if not api_key.is_valid(key):
            raise self.model.DoesNotExist("Key is not valid.")
        return api_key


class ApiKey(TenantModel, AbstractAPIKey):
    """An integrator's key: hashed at rest, shown once, per shop, read or write.

    The primary key is the library's `prefix.hash` string, not a bigint.
    """

    scope = models.CharField(
        _("scope"), max_length=8, choices=ApiKeyScope.choices, default=ApiKeyScope.READ
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    objects = ScopedApiKeyManager()
    # Authentication looks a key up before any shop is known: the only unscoped use.
    unscoped_keyring = ApiKeyring()

    class Meta(TenantModel.Meta, AbstractAPIKey.Meta):
        ordering = ["-created"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    @property
    def can_write(self) -> bool:
        return self.scope == ApiKeyScope.WRITE


class IdempotencyRecord(TenantModel):
    """The first response to a write, replayed for a retry with the same key."""

    key = models.CharField(max_length=255)
    endpoint = models.CharField(
        max_length=255, help_text="Method and path, e.g. POST /api/v1/members"
    )
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the request body"
    )
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder, null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta(TenantModel.Meta):
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "key", "endpoint"], name="shops_idempotency_key_uniq"
            ),
        ]
