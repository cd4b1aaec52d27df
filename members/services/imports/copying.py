"""Inserting many rows at once: PostgreSQL's COPY, bulk_create elsewhere.

An import writes a member, a timeline line, consent records and an event for
every row. Building model instances and Django's INSERT SQL for them cost more
than the database's own work, so on PostgreSQL the rows go straight from
dicts of column values into COPY; member ids are reserved from the table's
sequence first, so the rows that point at a member can be written with them.
Columns a row leaves out get the field's default, as `Model()` would give.
"""

from __future__ import annotations

import datetime
import io
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

# COPY's text format: tab-separated, \N for NULL, backslash escapes.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, cls=DjangoJSONEncoder).translate(_ESCAPES)
    return str(value).translate(_ESCAPES)


def _defaults(model) -> tuple[list[str], dict]:
    """The columns COPY fills (all but the id) and each field's default."""
    now = timezone.now()
    columns, values = [], {}
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values[field.attname] = now
        else:
            values[field.attname] = field.get_default()
    return columns, values


def _reserve_ids(model, count: int) -> list[int]:
    table, column = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) "
            "FROM generate_series(1, %s)",
            [table, column, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _copy(model, columns: list[str], lines: io.StringIO) -> None:
    quote = connection.ops.quote_name
    sql = (
        f"COPY {quote(model._meta.db_table)} "
        f"({', '.join(quote(c) for c in columns)}) FROM STDIN"
    )
    lines.seek(0)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        raw = cursor.cursor
        if hasattr(raw, "copy_expert"):  # psycopg2
            raw.copy_expert(sql, lines)
        else:  # psycopg 3
            with raw.copy(sql) as copy:
                copy.write(lines.getvalue())


def insert_rows(model, rows: list[dict], *, with_ids: bool = False) -> list[int]:
    """Insert `rows` (attname -> value) of `model`; their new ids if asked."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        # The rows carry their shop_id; the caller runs in that shop's scope.
        objs = model._base_manager.bulk_create(
            [model(**row) for row in rows], batch_size=1000
        )
        return [obj.pk for obj in objs] if with_ids else []
    columns, defaults = _defaults(model)
    ids: list[int] = []
    if with_ids:
        ids = _reserve_ids(model, len(rows))
        columns = [model._meta.pk.column, *columns]
    lines = io.StringIO()
    write = lines.write
    for n, row in enumerate(rows):
        values = [row.get(k, v) for k, v in defaults.items()]
        if with_ids:
            values.insert(0, ids[n])
        write("\t".join(map(_text, values)))
        write("\n")
    _copy(model, columns, lines)
    return ids
