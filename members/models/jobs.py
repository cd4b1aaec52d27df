from django.db import models
from django.utils.translation import gettext_lazy as _

from shops.models import TenantJob


class ImportKind(models.TextChoices):
    MEMBERS = "members", _("Members")
    PURCHASES = "purchases", _("Purchases")


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    PREVIEWED = "previewed", _("Checked (dry run)")
    QUEUED = "queued", _("Waiting")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(TenantJob):
    """An uploaded CSV or Excel file and what importing it did."""

    kind = models.CharField(_("what"), max_length=12, choices=ImportKind.choices)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=200)
    # {"column in the file": "field"}; the options the user chose.
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    options = models.JSONField(_("options"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ImportStatus.choices, default="uploaded"
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows done"), default=0)
    created_count = models.PositiveIntegerField(_("rows created"), default=0)
    updated_count = models.PositiveIntegerField(_("rows updated"), default=0)
    skipped_count = models.PositiveIntegerField(_("rows skipped"), default=0)
    error_count = models.PositiveIntegerField(_("rows with errors"), default=0)
    # [{"row": 3, "column": "phone", "message": "..."}], capped; the full list is
    # downloadable as CSV.
    errors = models.JSONField(_("errors"), default=list, blank=True)

    class Meta(TenantJob.Meta):
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return self.original_name


class TagJobAction(models.TextChoices):
    ADD = "add", _("Add a tag")
    REMOVE = "remove", _("Remove a tag")
    MOVE = "move", _("Move to another tag")


class TagJobStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting")
    RUNNING = "running", _("Tagging")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class TagJob(TenantJob):
    """Tagging a long list of members, done by a worker rather than in the
    request (see `members.services.tags.jobs`)."""

    action = models.CharField(_("what"), max_length=8, choices=TagJobAction.choices)
    # The tag given or taken off; for a move, the tag given.
    tag = models.ForeignKey(
        "members.Tag",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("tag"),
        db_index=False,
    )
    # For a move: the tag taken off.
    from_tag = models.ForeignKey(
        "members.Tag",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from tag"),
        db_index=False,
    )
    # The member list's query as chosen (Django's pickled `QuerySet.query`).
    selection = models.BinaryField(_("selection"), editable=False)
    members_count = models.PositiveIntegerField(_("members chosen"), default=0)
    changed_count = models.PositiveIntegerField(_("members changed"), default=0)
    status = models.CharField(
        _("status"),
        max_length=8,
        choices=TagJobStatus.choices,
        default=TagJobStatus.QUEUED,
    )

    class Meta(TenantJob.Meta):
        verbose_name = _("tagging job")
        verbose_name_plural = _("tagging jobs")

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.tag}"
