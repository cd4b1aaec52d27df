"""Each member's current tier, its history, and whole-shop recalculations."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models import Member
from shops.models import BulkTenantModel, TenantJob, TenantModel

from .ladder import Tier


class ManualMode(models.TextChoices):
    FLOOR = "floor", _("At least this tier (may still move up)")
    FIXED = "fixed", _("Exactly this tier")


# The two tables a recalculation writes in bulk (a row in each for every
# member who moves, a third of a million in the benchmark's first run) keep
# their keys cheap:
# * no single-column index (db_index=False): each index costs every row of
#   the bulk INSERT; reads go through the shop-led indexes below, and only
#   deleting a tier or a user scans them, which is rare and done by hand;
# * no constraint in the database (db_constraint=False): PostgreSQL checks
#   each key of each inserted row on its own, 7 to 11 µs apiece (a member's
#   key also locks the member's row), which was half of the writing
#   statement (bench/README.md). The writer takes every id from the rows it
#   joins (members from their purchases, tiers from the ladder); deleting a
#   shop, tier, member or user goes through Django, which still applies
#   on_delete (PROTECT, CASCADE, SET_NULL), and so still refuses to delete a
#   tier that a member holds or that history names.


class MemberTier(BulkTenantModel):
    """A member's current tier and period. A member without a row holds the
    entry tier (lowest rank) and has no period: rows exist only for members
    who moved at least once, so the entry tier costs nothing to store."""

    # A foreign key with a unique (shop, member), not a one-to-one field: every
    # unique constraint of a tenant table includes the shop.
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="tier_states",
        verbose_name=_("member"),
        db_index=False,
        db_constraint=False,
    )
    tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("tier"),
        db_index=False,
        db_constraint=False,
    )
    since = models.DateTimeField(_("held since"))
    # The tier the member carried into the current period (earned in earlier
    # periods). A refund never drops the member below it.
    period_start_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tier at the start of the period"),
        db_index=False,
        db_constraint=False,
    )
    # The last day (shop's time zone) of the member's current period; empty
    # for a lifetime window. The nightly task evaluates the day after.
    period_ends_on = models.DateField(_("period ends on"), null=True, blank=True)
    # Set when a period ended without the tier being met and the shop gives
    # grace: the member keeps `tier` until this day, then moves to
    # `grace_target` unless a purchase meets the tier again first.
    grace_until = models.DateField(_("grace until"), null=True, blank=True)
    grace_target = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tier after the grace period"),
        db_index=False,
        db_constraint=False,
    )
    manual_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("manual tier"),
        db_index=False,
        db_constraint=False,
    )
    manual_mode = models.CharField(
        _("manual tier is"), max_length=8, choices=ManualMode.choices, blank=True
    )
    # Empty with a manual tier: for good.
    manual_until = models.DateField(_("manual tier until"), null=True, blank=True)
    manual_reason = models.CharField(_("reason"), max_length=200, blank=True)
    manual_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("set by"),
        db_index=False,
        db_constraint=False,
    )
    manual_at = models.DateTimeField(_("set at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(TenantModel.Meta):
        verbose_name = _("member's tier")
        verbose_name_plural = _("members' tiers")
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["shop", "member"], name="tiers_membertier_member_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["shop", "tier"], name="tiers_membertier_tier_idx"),
            models.Index(
                fields=["shop", "period_ends_on"], name="tiers_membertier_period_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.tier_id}"


class TierChangeReason(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    REFUND = "refund", _("Refund")
    PERIOD_END = "period_end", _("End of period")
    GRACE_END = "grace_end", _("End of grace period")
    RECALCULATION = "recalculation", _("Recalculation")
    RULE_CHANGE = "rule_change", _("Rule change")
    MANUAL = "manual", _("Set by staff")
    MANUAL_END = "manual_end", _("Manual tier ended")


class TierChange(BulkTenantModel):
    """One move of one member between tiers, and why (append-only; nothing
    deletes a change). All its keys are loose: see the note above MemberTier."""

    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="tier_changes",
        verbose_name=_("member"),
        db_index=False,
        db_constraint=False,
    )
    from_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from"),
        db_index=False,
        db_constraint=False,
    )
    to_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("to"),
        db_index=False,
        db_constraint=False,
    )
    reason = models.CharField(_("why"), max_length=16, choices=TierChangeReason.choices)
    # The figures the decision was made on: {"spend": "1230.00", "orders": 6,
    # "window": "2025-01-01..2025-12-31"}, and a staff reason for manual moves.
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
        db_index=False,
        db_constraint=False,
    )
    actor_label = models.CharField(_("by (key or task)"), max_length=100, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        indexes = [
            models.Index(
                fields=["shop", "member", "-created_at"],
                name="tiers_change_member_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_tier_id} -> {self.to_tier_id}"


class RecalculationStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class TierRecalculation(TenantJob):
    """One whole-shop recalculation (nightly, on demand, or after a rule change)."""

    reason = models.CharField(_("why"), max_length=16, choices=TierChangeReason.choices)
    status = models.CharField(
        _("status"),
        max_length=8,
        choices=RecalculationStatus.choices,
        default=RecalculationStatus.QUEUED,
    )
    # The day (shop's time zone) it evaluated: a nightly run for a day already
    # done is a no-op.
    as_of = models.DateField(_("as of"))
    steps_total = models.PositiveSmallIntegerField(_("steps"), default=0)
    steps_done = models.PositiveSmallIntegerField(_("steps done"), default=0)
    members_up = models.PositiveIntegerField(_("moved up"), default=0)
    members_down = models.PositiveIntegerField(_("moved down"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta(TenantJob.Meta):
        verbose_name = _("tier recalculation")
        verbose_name_plural = _("tier recalculations")

    def __str__(self) -> str:
        return f"{self.get_reason_display()} {self.as_of}"
