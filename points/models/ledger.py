"""The ledger: one account per member, append-only entries, and lots.

Invariants (kept by `points.services.ledger`, checked by the tests):
- account.balance == sum(entry.points) over the account (spendable + pending);
- sum(lot.remaining) over the account's lots == max(account.balance, 0);
- account.pending == sum(lot.remaining) over lots not yet available (return
  window), as of the last write to the account or `release_pending` run;
  spendable = balance - pending;
- a debit's lot consumptions add up to its points (less what a "go negative"
  refund could not find);
- entries are never updated or deleted;
- the balance goes below zero only by a refund's reversal under the shop's
  "go negative" policy (then `account.balance` < 0 and no lot is negative: the
  debt is paid back by the next credits before they form lots).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member, Purchase
from shops.models import BulkTenantModel, TenantModel


class PointsAccount(TenantModel):
    """A member's points (积分) account; figures kept with every entry."""

    # A foreign key with a unique (shop, member), not a one-to-one field: every
    # unique constraint of a tenant table includes the shop.
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="points_accounts",
        verbose_name=_("member"),
        db_index=False,
    )
    # Sum of the entries (spendable + pending). May be below zero only after a
    # refund under the shop's "go negative" policy.
    balance = models.BigIntegerField(_("balance"), default=0)
    # Part of the balance inside the return window: not spendable yet.
    pending = models.BigIntegerField(_("pending"), default=0)
    lifetime_earned = models.BigIntegerField(_("earned in all"), default=0)
    redeemed = models.BigIntegerField(_("redeemed"), default=0)
    expired = models.BigIntegerField(_("expired"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(TenantModel.Meta):
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "member"], name="points_account_member_uniq"
            ),
            models.CheckConstraint(
                condition=Q(pending__gte=0), name="points_account_pending_positive"
            ),
        ]
        indexes = [
            # release_pending: the few accounts with points in a return window.
            models.Index(
                fields=["shop", "id"],
                condition=Q(pending__gt=0),
                name="points_account_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.balance}"


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    REDEEM = "redeem", _("Redeemed")
    EXPIRE = "expire", _("Expired")
    REVERSE = "reverse", _("Reversed")
    ADJUST = "adjust", _("Adjusted")


class EntrySource(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    REFUND = "refund", _("Refund")
    REGISTRATION = "registration", _("Registration")
    REFERRAL = "referral", _("Referral")
    BIRTHDAY = "birthday", _("Birthday")
    PROFILE = "profile", _("Completed profile")
    CAMPAIGN = "campaign", _("Campaign")
    REWARD = "reward", _("Reward")
    ORDER_PAYMENT = "order_payment", _("Paid with points")
    MANUAL = "manual", _("Staff adjustment")
    IMPORT = "import", _("Opening balance")
    EXPIRY = "expiry", _("Expiry")


class PointsEntry(BulkTenantModel):
    """One change of a balance (append-only): signed points, reason, source, actor.

    Expiry writes one per account with due points, up to a million in a run:
    the shop key is loose (see BulkTenantModel) and the acting user's key
    has no index of its own (almost every entry has none; only deleting a
    user looks entries up by it). The account and purchase keys stay checked
    by the database: they are what the ledger adds up.
    """

    account = models.ForeignKey(
        PointsAccount,
        on_delete=models.CASCADE,
        related_name="entries",
        verbose_name=_("account"),
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=8, choices=EntryKind.choices)
    points = models.BigIntegerField(_("points"))
    # The account's balance after this entry.
    total_after = models.BigIntegerField(_("total after"))
    source = models.CharField(_("source"), max_length=16, choices=EntrySource.choices)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("purchase"),
        db_index=False,
    )
    # The redemption, reward or rule it came from, as "redemption:12", "rule:3".
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    # Unique in the shop when given: a retried write returns the first entry.
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, blank=True)
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
        db_index=False,
    )
    actor_label = models.CharField(_("by (key or task)"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="points_entry_idempotency_uniq",
            ),
            models.CheckConstraint(
                condition=~Q(points=0), name="points_entry_not_zero"
            ),
        ]
        indexes = [
            models.Index(
                fields=["shop", "account", "-id"], name="points_entry_acct_idx"
            ),
            models.Index(
                fields=["shop", "purchase"],
                condition=Q(purchase__isnull=False),
                name="points_entry_purchase_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d}"


class PointsLot(TenantModel):
    """Points credited together, spent oldest expiry first."""

    account = models.ForeignKey(
        PointsAccount,
        on_delete=models.CASCADE,
        related_name="lots",
        verbose_name=_("account"),
        db_index=False,
    )
    entry = models.ForeignKey(
        PointsEntry,
        on_delete=models.PROTECT,
        related_name="lots",
        verbose_name=_("credited by"),
        db_index=False,
    )
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    # Empty: never expires.
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    # Inside the return window until then: pending, not spendable.
    available_at = models.DateTimeField(_("spendable from"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["expires_at", "id"]
        verbose_name = _("points lot")
        verbose_name_plural = _("points lots")
        constraints = [
            *TenantModel.Meta.constraints,
            models.CheckConstraint(
                condition=Q(remaining__gte=0, points__gt=0)
                & Q(remaining__lte=models.F("points")),
                name="points_lot_remaining_range",
            ),
        ]
        indexes = [
            # The account's open lots in spending order.
            models.Index(
                fields=["shop", "account", "expires_at", "id"],
                condition=Q(remaining__gt=0),
                name="points_lot_open_idx",
            ),
            # The expiry task and "expiring in the next 30 days".
            models.Index(
                fields=["shop", "expires_at"],
                condition=Q(remaining__gt=0),
                name="points_lot_expiry_idx",
            ),
            models.Index(fields=["shop", "entry"], name="points_lot_entry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.points}"


class LotConsumption(BulkTenantModel):
    """How many points of which lot a debit took (so a cancelled redemption
    returns them with their original expiry, and a refund knows what is left).

    Expiry writes one per due lot, a million in a run, each from the entry it
    has just inserted and the lot it empties in the same statement: its keys
    are loose (see BulkTenantModel), which took a fifth off each chunk.
    Django still refuses to delete an entry or lot a consumption names."""

    entry = models.ForeignKey(
        PointsEntry,
        on_delete=models.PROTECT,
        related_name="consumptions",
        verbose_name=_("debit"),
        db_index=False,
        db_constraint=False,
    )
    lot = models.ForeignKey(
        PointsLot,
        on_delete=models.PROTECT,
        related_name="consumptions",
        verbose_name=_("lot"),
        db_index=False,
        db_constraint=False,
    )
    points = models.BigIntegerField(_("points"))

    class Meta(TenantModel.Meta):
        verbose_name = _("lot consumption")
        verbose_name_plural = _("lot consumptions")
        constraints = [
            *TenantModel.Meta.constraints,
            models.CheckConstraint(
                condition=Q(points__gt=0), name="points_consumption_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["shop", "entry"], name="points_consumption_entry_idx"),
            models.Index(fields=["shop", "lot"], name="points_consumption_lot_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.lot_id}: {self.points}"
