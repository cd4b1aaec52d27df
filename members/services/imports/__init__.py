"""Import of members and historical purchases from CSV and Excel files.

`reading` opens the file (format from the content, encoding detected),
`fields` knows the columns (English and Chinese headers) and parses cells,
`members` and `purchases` check rows and write them in bulk, `jobs` runs an
import: upload, mapping, dry run, the real run in a Celery task.
"""

from .fields import fields_for, suggest_mapping
from .jobs import (
    CHUNK_SIZE,
    configure_import,
    create_import_job,
    error_rows,
    run_import_job,
    start_import,
)
from .purchases import recompute_member_figures

__all__ = [
    "CHUNK_SIZE",
    "configure_import",
    "create_import_job",
    "error_rows",
    "fields_for",
    "recompute_member_figures",
    "run_import_job",
    "start_import",
    "suggest_mapping",
]
