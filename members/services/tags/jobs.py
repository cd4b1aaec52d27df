"""Tagging a long list of members in the background.

The bulk statements (`bulk.py`) take about 40 s for a million members on a
small server: too long for a web request. From `BACKGROUND_FROM` members the
admin records a `TagJob` instead, with the list's query as the staff member
chose it (Django's pickled `QuerySet.query`, as Django documents for
re-creating a queryset later), and a worker runs it. The bulk services keep
only this shop's members of that query, whatever it holds.

Safe to run twice: the status claim makes a redelivered task a no-op.
"""

from __future__ import annotations

import logging
import pickle

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from members.models import Member, Tag, TagJob, TagJobAction, TagJobStatus
from shops.models import Shop

from .bulk import add_tag, move_tag, remove_tag
from .core import _same_shop

logger = logging.getLogger(__name__)

# From this many chosen members, tagging runs in the background.
BACKGROUND_FROM = 10_000


def queue_tag_job(
    *,
    shop: Shop,
    action: str,
    members: QuerySet,
    tag: Tag,
    from_tag: Tag | None = None,
    count: int,
    acting_user=None,
) -> TagJob:
    """Record the tagging of `members` (`count` of them) and queue it once
    this transaction commits."""
    _same_shop(shop, *(t for t in (tag, from_tag) if t is not None))
    with transaction.atomic():
        job = TagJob.objects.create(
            shop=shop,
            action=action,
            tag=tag,
            from_tag=from_tag,
            selection=pickle.dumps(members.filter(shop=shop).order_by().query),
            members_count=count,
            created_by=acting_user if getattr(acting_user, "pk", None) else None,
        )
        transaction.on_commit(lambda: _enqueue(job), robust=True)
    return job


def _enqueue(job: TagJob) -> None:
    from members.tasks.tags import run_tag_job as task

    try:
        task.delay(shop_id=job.shop_id, job_id=job.pk)
    except Exception:
        # The job stays "waiting"; the next try of the action queues another.
        logger.warning("Tagging job %s could not be queued", job.pk, exc_info=True)


def run_tag_job(*, shop: Shop, job_id: int) -> str:
    """The task's work: tag the job's members. Returns what happened."""
    claimed = TagJob.objects.filter(
        shop=shop, pk=job_id, status=TagJobStatus.QUEUED
    ).update(status=TagJobStatus.RUNNING)
    if not claimed:
        return "not queued"
    job = TagJob.objects.select_related("tag", "from_tag", "created_by").get(pk=job_id)
    try:
        members = Member.objects.filter(shop=shop)
        members.query = pickle.loads(job.selection)  # noqa: S301 (written above)
        job.changed_count = _perform(shop, job, members)
        job.status = TagJobStatus.DONE
    except Exception:
        # Each bulk service is one transaction: nothing of it stayed.
        logger.exception("Tagging job %s stopped", job_id)
        job.status = TagJobStatus.FAILED
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "changed_count", "finished_at"])
    return job.status


def _perform(shop: Shop, job: TagJob, members: QuerySet) -> int:
    by = {"shop": shop, "members": members, "acting_user": job.created_by}
    if job.action == TagJobAction.ADD:
        return add_tag(tag=job.tag, **by)
    if job.action == TagJobAction.REMOVE:
        return remove_tag(tag=job.tag, **by)
    return move_tag(from_tag=job.from_tag, to_tag=job.tag, **by)
