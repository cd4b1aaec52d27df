"""Tasks of the members app: imports."""

from members.services.imports import run_import_job
from shops.tenancy import shop_task

__all__ = ["run_import"]


# Long files take minutes; the job row, not the task, is the record of the
# work, and the status claim makes a redelivered task a no-op.
@shop_task(name="members.run_import", soft_time_limit=25 * 60)
def run_import(*, shop, job_id: int) -> str:
    return run_import_job(shop=shop, job_id=job_id)
