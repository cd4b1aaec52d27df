"""Columns another app adds to an import, without the members app importing it.

Dependencies go one way (shops <- members <- tiers <- points), so the points
app registers its opening-balance columns here (from its AppConfig.ready())
and the members import calls back:

    register_import_columns(
        ImportKind.MEMBERS,
        fields=[("points", _("Points"), ("points", "积分"))],
        parse=parse_cell,      # (key, raw, *, shop) -> value, or ValidationError
        clean=check_row,       # (values, *, shop) -> None, or ValidationError
                               #   ({key: message}) about the row's columns together
        write=write_rows,      # (*, shop, rows, job_id, acting_user, actor_label)
    )

An importer keeps these values apart from its own (`EXTRA`), shows them in the
dry run's preview, reports their errors by row and column like its own, and
after writing a chunk passes `rows` = [(member id, {key: value})] to `write`,
in the chunk's transaction (so "all or nothing" keeps nothing on failure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

#: Where a parsed row keeps the registered columns' values.
EXTRA = "_extra"


@dataclass(frozen=True)
class ExtraColumns:
    kind: str
    fields: tuple[tuple[str, Any, tuple[str, ...]], ...]
    parse: Callable
    write: Callable
    clean: Callable | None = None

    @property
    def keys(self) -> set[str]:
        return {key for key, _label, _aliases in self.fields}


_registry: dict[tuple[str, str], ExtraColumns] = {}


def register_import_columns(
    kind: str,
    *,
    fields,
    parse: Callable,
    write: Callable,
    clean: Callable | None = None,
) -> ExtraColumns:
    """Add columns to imports of `kind`; registering the same fields again
    replaces them (ready() may run more than once in tests)."""
    normalized = tuple(
        (field[0], field[1], tuple(field[2]) if len(field) > 2 else ())
        for field in fields
    )
    columns = ExtraColumns(kind, normalized, parse, write, clean)
    name = ",".join(key for key, _label, _aliases in normalized)
    _registry[(kind, name)] = columns
    return columns


def registered(kind: str) -> list[ExtraColumns]:
    return [columns for (k, _n), columns in _registry.items() if k == kind]


def fields_for(kind: str) -> list[tuple[str, Any, tuple[str, ...]]]:
    """(key, label, aliases) of the columns other apps add to `kind`."""
    return [field for columns in registered(kind) for field in columns.fields]


def owner(kind: str, key: str) -> ExtraColumns | None:
    for columns in registered(kind):
        if key in columns.keys:
            return columns
    return None


def parse_cell(kind: str, key: str, raw: Any, data: dict, *, shop) -> bool:
    """Parse a registered column's cell into data[EXTRA]; False if not ours."""
    columns = owner(kind, key)
    if columns is None:
        return False
    data.setdefault(EXTRA, {})[key] = columns.parse(key, raw, shop=shop)
    return True


def clean_row(kind: str, data: dict, *, shop) -> list[tuple[str, str]]:
    """(key, message) of what is wrong with the registered columns together."""
    values = data.get(EXTRA)
    if not values:
        return []
    problems = []
    for columns in registered(kind):
        mine = {k: v for k, v in values.items() if k in columns.keys}
        if not mine or columns.clean is None:
            continue
        try:
            columns.clean(mine, shop=shop)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for key, messages in exc.message_dict.items():
                    problems.append((key, messages[0]))
            else:
                problems.append(("", exc.messages[0]))
    return problems


def write_rows(
    kind: str, *, shop, rows: list[tuple[int, dict]], job_id, acting_user, actor_label
) -> None:
    """Hand each registered app its columns of the written rows."""
    for columns in registered(kind):
        mine = [
            (member_id, picked)
            for member_id, values in rows
            if (picked := {k: v for k, v in values.items() if k in columns.keys})
        ]
        if mine:
            columns.write(
                shop=shop,
                rows=mine,
                job_id=job_id,
                acting_user=acting_user,
                actor_label=actor_label,
            )
