"""The life of an import: upload, map the columns, check (dry run), import.

    uploaded --check--> queued --task--> running --> previewed
    previewed --import--> queued --task--> running --> done | failed

The work runs in a Celery task a chunk of rows at a time, writing its progress
to the job row after each chunk so the page can show it. The task claims the
job with one conditional UPDATE (queued -> running), so a second copy of the
task, or a task for a job that is done, does nothing.

"Valid rows only" commits each chunk on its own. "All or nothing" first checks
every row (nothing written; progress shown), then writes every chunk in one
transaction, so one bad row or a failure half-way leaves the shop unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import PurePath

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import ImportJob, ImportKind, ImportStatus

from . import reading
from .base import PREVIEW_ROWS, ChunkResult
from .fields import (
    CUSTOM_PREFIX,
    MEMBER_KEYS,
    PURCHASE_MEMBER_KEYS,
    fields_for,
    suggest_mapping,
)
from .members import MemberImporter
from .purchases import PurchaseImporter

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1000
MAX_FILE_BYTES = 100 * 1024 * 1024
# Kept on the job for the page and the CSV download; a file with more bad rows
# than this is not worth reading further: the user fixes the file first.
MAX_ERRORS = 100_000
DUPLICATES = ("skip", "update")
MODES = ("valid_only", "all_or_nothing")


class ImportAborted(Exception):
    """Raised inside the all-or-nothing transaction to roll it back."""


def create_import_job(*, shop, kind: str, upload, acting_user) -> ImportJob:
    """Store `upload` as a new import of `kind`, with a suggested mapping.

    Refuses (ValidationError) a file that is not CSV or Excel, a text encoding
    we cannot read, a file without a header row or without data rows.
    """
    if kind not in ImportKind.values:
        raise ValidationError({"kind": _("Choose members or purchases.")})
    if upload.size > MAX_FILE_BYTES:
        raise ValidationError(
            {
                "file": _(
                    "The file is larger than 100 MB. Split it and import the parts."
                )
            }
        )
    try:
        info = reading.inspect(upload)
    except ValidationError as exc:
        raise ValidationError({"file": exc.messages}) from exc
    if not info.total_rows:
        raise ValidationError({"file": _("The file has a header row but no rows.")})
    job = ImportJob(
        shop=shop,
        kind=kind,
        original_name=PurePath(upload.name).name[:200],
        created_by=acting_user,
        total_rows=info.total_rows,
        mapping=suggest_mapping(info.headers, kind=kind, shop=shop),
        options={
            "format": info.format,
            "encoding": info.encoding,
            "headers": info.headers,
            "duplicates": "skip",
            "mode": "valid_only",
        },
    )
    upload.seek(0)
    job.file.save(f"{shop.pk}-{info.format}.{info.format}", upload, save=False)
    job.save()
    return job


def configure_import(
    *, job: ImportJob, mapping: dict, duplicates: str, mode: str, acting_user
) -> ImportJob:
    """Set the column mapping and options; a new check is needed afterwards."""
    if job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.DONE):
        raise ValidationError(_("This import has already started."))
    headers = job.options.get("headers", [])
    allowed = {key for key, _label in fields_for(job.kind, shop=job.shop)}
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for header, target in mapping.items():
        if not target:
            continue
        if header not in headers or target not in allowed:
            errors[header] = _("Choose one of the listed fields.")
        elif target in cleaned.values():
            errors[header] = _("Another column already fills this field.")
        else:
            cleaned[header] = target
    targets = set(cleaned.values())
    if job.kind == ImportKind.MEMBERS:
        if not targets & set(MEMBER_KEYS):
            errors["__all__"] = _(
                "Choose a column for the phone, email, external ID or member code."
            )
    else:
        missing = {"external_order_id", "amount", "occurred_at"} - targets
        if missing or not targets & set(PURCHASE_MEMBER_KEYS):
            errors["__all__"] = _(
                "Choose columns for the order number, amount, time of purchase and "
                "the member's phone, member code or external ID."
            )
    if duplicates not in DUPLICATES:
        errors["duplicates"] = _("Choose skip or update.")
    if mode not in MODES:
        errors["mode"] = _("Choose valid rows only or all or nothing.")
    if errors:
        raise ValidationError(errors)
    job.mapping = cleaned
    job.options = {**job.options, "duplicates": duplicates, "mode": mode}
    job.status = ImportStatus.UPLOADED
    job.save(update_fields=["mapping", "options", "status"])
    return job


def start_import(*, job: ImportJob, dry_run: bool, acting_user) -> ImportJob:
    """Queue a check (dry run) or, after a check, the import itself."""
    if job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.DONE):
        raise ValidationError(_("This import has already started."))
    if not dry_run and job.status != ImportStatus.PREVIEWED:
        raise ValidationError(_("Check the file first (dry run), then import it."))
    job.options = {**job.options, "dry_run": dry_run}
    job.status = ImportStatus.QUEUED
    job.processed_rows = job.created_count = job.updated_count = 0
    job.skipped_count = job.error_count = 0
    job.errors = []
    job.save()
    transaction.on_commit(lambda: _enqueue(job), robust=True)
    return job


def _enqueue(job: ImportJob) -> None:
    from members.tasks.imports import run_import

    try:
        run_import.delay(shop_id=job.shop_id, job_id=job.pk)
    except Exception:
        # The job stays queued; the page offers to start it again.
        logger.warning("Import %s could not be queued", job.pk, exc_info=True)


def chunks(job: ImportJob) -> Iterator[list[tuple[int, list]]]:
    """The file's data rows, a chunk at a time (the header row left out)."""
    with job.file.open("rb") as fileobj:
        rows = reading.iter_rows(
            fileobj,
            file_format=job.options["format"],
            encoding=job.options.get("encoding", ""),
        )
        next(rows, None)
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch


def importer_for(job: ImportJob):
    importer = MemberImporter if job.kind == ImportKind.MEMBERS else PurchaseImporter
    return importer(
        shop=job.shop,
        headers=job.options.get("headers", []),
        mapping={h: t for h, t in job.mapping.items() if t},
        options=job.options,
        acting_user=job.created_by,
        job_id=job.pk,
    )


class Totals:
    def __init__(self):
        self.processed = self.created = self.updated = self.skipped = 0
        self.errors: list[dict] = []
        self.error_rows = 0
        self.preview: list[dict] = []

    def add(self, result: ChunkResult, rows: int) -> None:
        self.processed += rows
        self.created += result.created
        self.updated += result.updated
        self.skipped += result.skipped
        self.error_rows += len(result.error_rows)
        room = MAX_ERRORS - len(self.errors)
        # By row, as the user reads the file (checks run in several passes).
        in_order = sorted(result.errors, key=lambda error: error["row"])
        self.errors.extend(in_order[: max(room, 0)])
        self.preview.extend(result.preview[: PREVIEW_ROWS - len(self.preview)])

    def save_progress(self, job: ImportJob) -> None:
        # A plain UPDATE, committed at once (outside the all-or-nothing
        # transaction), so the page polling the job sees it.
        ImportJob.objects.filter(pk=job.pk).update(
            processed_rows=min(self.processed, job.total_rows),
            created_count=self.created,
            updated_count=self.updated,
            skipped_count=self.skipped,
            error_count=self.error_rows,
        )


def _check_pass(job, importer) -> Totals:
    totals = Totals()
    for chunk in chunks(job):
        totals.add(importer.run_chunk(chunk, write=False), len(chunk))
        totals.save_progress(job)
    return totals


def _write_pass(job, importer, *, progress: bool) -> Totals:
    totals = Totals()
    for chunk in chunks(job):
        with transaction.atomic():
            result = importer.run_chunk(chunk, write=True)
        totals.add(result, len(chunk))
        if progress:
            totals.save_progress(job)
    return totals


def run_import_job(*, shop, job_id: int) -> str:
    """The task's work: check or import the job's file. Returns what happened."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING
    )
    if not claimed:
        return "not queued"
    job = ImportJob.objects.select_related("shop", "created_by").get(pk=job_id)
    importer = importer_for(job)
    try:
        if job.options.get("dry_run"):
            totals = _check_pass(job, importer)
            status = ImportStatus.PREVIEWED
        elif job.options.get("mode") == "all_or_nothing":
            totals = _check_pass(job, importer)
            if totals.error_rows:
                status = ImportStatus.FAILED
            else:
                importer.reset()
                with transaction.atomic():
                    totals = _write_pass(job, importer, progress=False)
                    if totals.error_rows:
                        # A row turned bad between the check and the write
                        # (a member registered meanwhile): keep nothing.
                        raise ImportAborted
                status = ImportStatus.DONE
        else:
            totals = _write_pass(job, importer, progress=True)
            status = ImportStatus.DONE
    except ImportAborted:
        status = ImportStatus.FAILED
    except Exception:
        logger.exception("Import %s stopped", job_id)
        totals = Totals()
        totals.errors.append(
            {
                "row": None,
                "column": "",
                "message": _(
                    "The import stopped because of an unexpected error. Rows "
                    "imported before it stay imported; check the list and try again."
                ),
            }
        )
        status = ImportStatus.FAILED
    _finish(job, totals, status)
    return status


def _finish(job: ImportJob, totals: Totals, status: str) -> None:
    job.refresh_from_db()
    job.status = status
    job.processed_rows = job.total_rows
    job.created_count, job.updated_count = totals.created, totals.updated
    job.skipped_count, job.error_count = totals.skipped, totals.error_rows
    job.errors = totals.errors
    if status == ImportStatus.PREVIEWED or (
        status == ImportStatus.FAILED and job.options.get("mode") == "all_or_nothing"
    ):
        # Nothing was written: what the run found is a preview.
        job.options = {
            **job.options,
            "preview": {
                "created": totals.created,
                "updated": totals.updated,
                "skipped": totals.skipped,
                "errors": totals.error_rows,
                "rows": totals.preview,
            },
        }
    if status in (ImportStatus.DONE, ImportStatus.FAILED):
        job.finished_at = timezone.now()
    job.save()


def error_rows(job: ImportJob) -> Iterator[list]:
    """The job's bad rows as CSV rows (row, column, message), header first."""
    yield [_("Row"), _("Column"), _("Problem")]
    for error in job.errors:
        yield [error.get("row") or "", error.get("column") or "", error["message"]]


__all__ = [
    "CUSTOM_PREFIX",
    "configure_import",
    "create_import_job",
    "error_rows",
    "run_import_job",
    "start_import",
]
