"""What every kind of import shares: columns, row parsing, results of a chunk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from . import extra
from .reading import cell_text

PREVIEW_ROWS = 20


@dataclass
class ChunkResult:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[dict] = field(default_factory=list)
    error_rows: set[int] = field(default_factory=set)
    preview: list[dict] = field(default_factory=list)

    def error(self, row: int, column: str, message: str) -> None:
        self.errors.append({"row": row, "column": column, "message": str(message)})
        self.error_rows.add(row)

    def skip(self, row: int, data: dict, reason: str = "") -> None:
        self.skipped += 1
        self.show(row, "skip", {**data, "matched": reason})

    def show(self, row: int, action: str, data: dict) -> None:
        if len(self.preview) < PREVIEW_ROWS:
            values = {
                k: v if isinstance(v, str | int) else str(v) for k, v in data.items()
            }
            self.preview.append({"row": row, "action": action, "values": values})


class RowImporter:
    """Turns rows of cells into checked values and writes them a chunk at a time.

    Subclasses set `key_fields` (the fields a row is matched on), and implement
    `parse_cell` and `run_chunk`.
    """

    key_fields: tuple[str, ...] = ()
    kind = ""

    def __init__(
        self, *, shop, headers, mapping, options, acting_user=None, job_id=None
    ):
        self.shop = shop
        self.options = options
        self.acting_user = acting_user
        self.job_id = job_id
        # Columns other apps add (see extra.py), kept in data[extra.EXTRA].
        self.extra_keys = {key for key, _l, _a in extra.fields_for(self.kind)}
        self.actor_label = _("Import")
        self.columns: dict[str, tuple[int, str]] = {}
        for header, target in mapping.items():
            if target and header in headers:
                self.columns[target] = (headers.index(header), header)
        self.reset()
        self.setup()

    def setup(self) -> None:
        """Read what every row needs (stores, custom fields) once."""

    def reset(self) -> None:
        """Forget the rows seen, before another pass over the same file."""
        self.seen: dict[str, dict[Any, int]] = {key: {} for key in self.key_fields}

    def header_for(self, *fields: str) -> str:
        for name in fields:
            if name in self.columns:
                return self.columns[name][1]
        return ""

    def parse_cell(self, field: str, raw: Any, data: dict) -> None:
        raise NotImplementedError

    def parse_rows(self, rows, result: ChunkResult) -> list[tuple[int, dict]]:
        """(row number, checked values) of the rows without errors."""
        parsed = []
        for number, values in rows:
            data: dict = {}
            failed = False
            for target, (index, header) in self.columns.items():
                raw = values[index] if index < len(values) else None
                if raw is None or cell_text(raw) == "":
                    continue
                try:
                    if target in self.extra_keys:
                        extra.parse_cell(self.kind, target, raw, data, shop=self.shop)
                    else:
                        self.parse_cell(target, raw, data)
                except ValidationError as exc:
                    result.error(number, header, exc.messages[0])
                    failed = True
            if not failed and extra.EXTRA in data:
                for key, message in extra.clean_row(self.kind, data, shop=self.shop):
                    result.error(number, self.header_for(key), message)
                    failed = True
            if not failed:
                parsed.append((number, data))
        return parsed

    def repeats_earlier_row(self, number: int, data: dict, result) -> bool:
        """True (and an error) when a key of this row was on an earlier row."""
        for key in self.key_fields:
            value = data.get(key)
            if value and value in self.seen[key]:
                result.error(
                    number,
                    self.header_for(key),
                    _("Row %(row)s already has “%(value)s”.")
                    % {"row": self.seen[key][value], "value": value},
                )
                return True
        for key in self.key_fields:
            if data.get(key):
                self.seen[key][data[key]] = number
        return False

    def run_chunk(self, rows, *, write: bool) -> ChunkResult:
        raise NotImplementedError

    def finish(self) -> None:
        """Work after the last chunk of a writing pass, in its transaction."""
