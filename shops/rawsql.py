"""Hand-written SQL for the API's hot paths, where compiling an ORM query costs
more than running it.

Raw SQL bypasses the tenancy guard (`ShopScopedManager`): every statement
written with these helpers MUST filter by the shop's id itself, and says so.
Rows come back as model instances through the ORM's own converters, so they
look exactly like what `Model.objects.filter(...).first()` returns.
"""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models.sql import Query

_SELECTS: dict[type, str] = {}
_CONVERTERS: dict[tuple[type, str], dict] = {}


def select_from(model) -> str:
    """`SELECT <every concrete column> FROM <table>`, compiled once per model."""
    sql = _SELECTS.get(model)
    if sql is None:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in model._meta.concrete_fields)
        # Names from the model's own metadata; values are always parameters.
        sql = f"SELECT {columns} FROM {quote(model._meta.db_table)}"  # noqa: S608
        _SELECTS[model] = sql
    return sql


def _converters(model, db) -> dict:
    key = (model, db.vendor)
    converters = _CONVERTERS.get(key)
    if converters is None:
        table = model._meta.db_table
        columns = [f.get_col(table) for f in model._meta.concrete_fields]
        compiler = Query(model).get_compiler(connection=db)
        converters = compiler.get_converters(columns)
        _CONVERTERS[key] = converters
    return converters


def fetch_one(model, where: str, params: list):
    """The first row of `select_from(model) WHERE <where>` as an instance, or None.

    `where` must name the shop (`shop_id = %s`): nothing else scopes it.
    """
    with connection.cursor() as cursor:
        execute(cursor, f"{select_from(model)} WHERE {where} LIMIT 1", params)
        row = cursor.fetchone()
    return None if row is None else from_row(model, row)


def columns_of(model, alias: str) -> str:
    """Every concrete column of `model` as `alias."column"`, in field order:
    the select list whose rows `from_row(model, ...)` turns into instances."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


def from_row(model, row):
    """A model instance from a row of its concrete columns (in field order),
    through the ORM's converters, as a queryset would build it."""
    # The connection itself, not the `connection` proxy: every attribute of
    # the proxy is a thread-local lookup, and these run a dozen times a sale.
    db = connections[DEFAULT_DB_ALIAS]
    converters = _converters(model, db)
    if converters:
        row = list(row)
        for pos, (functions, expression) in converters.items():
            value = row[pos]
            for function in functions:
                value = function(value, expression, db)
            row[pos] = value
    return model.from_db(db.alias, None, row)


_INSERTS: dict[tuple, tuple[str, list]] = {}


def insert(instance, *, unless_exists: tuple[str, ...] = ()) -> bool:
    """INSERT `instance` (a new row) in one statement, as `save(force_insert=True)`
    would, without compiling the ORM's INSERT each time; sets its primary key.

    `unless_exists` names the columns of a unique constraint: a row that
    already holds those values (or one being inserted by a concurrent
    transaction, once it commits) makes this a no-op returning False
    (`ON CONFLICT ... DO NOTHING`), without aborting the transaction.

    Field defaults and `auto_now_add` apply as in `save()`. No signals are sent
    and no validation runs: for hot paths whose service checked everything. The
    row's shop is the instance's own `shop_id` (the caller names it).
    """
    model = type(instance)
    key = (model, connection.vendor, unless_exists)
    cached = _INSERTS.get(key)
    if cached is None:
        quote = connection.ops.quote_name
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        pk = model._meta.pk
        names = ", ".join(quote(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        # Names from the model's own metadata; values are always parameters.
        conflict = ""
        if unless_exists:
            target = ", ".join(quote(column) for column in unless_exists)
            conflict = f" ON CONFLICT ({target}) DO NOTHING"
        sql = (
            f"INSERT INTO {quote(model._meta.db_table)} ({names}) "  # noqa: S608
            f"VALUES ({marks}){conflict} RETURNING {quote(pk.column)}"
        )
        cached = _INSERTS[key] = (sql, fields)
    sql, fields = cached
    return run_insert(instance, sql, insert_params(instance, fields))


def insert_params(instance, fields) -> list:
    """The values of `fields` of a new `instance` as `save()` would write them
    (defaults and `auto_now_add` applied), ready to be query parameters."""
    db = connections[DEFAULT_DB_ALIAS]
    return [
        f.get_db_prep_save(f.pre_save(instance, True), connection=db) for f in fields
    ]


def run_insert(instance, sql: str, params: list) -> bool:
    """Run `sql`, an INSERT of `instance` ending in `RETURNING <its id>`, and
    mark the instance saved with that id; False when no row came back (an
    `ON CONFLICT ... DO NOTHING` that wrote nothing)."""
    with connection.cursor() as cursor:
        execute(cursor, sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = DEFAULT_DB_ALIAS
    return True


# Prepared statements (PostgreSQL). Planning a statement costs as much as
# running it on the hot paths (a CTE of the settlement: 1.3 ms to plan, 0.3
# ms to run), so each hand-written statement is prepared once per database
# connection (`PREPARE`, on its first use there) and then only executed: the
# server plans it from then on only when its generic plan would be worse.
# A prepared statement outlives a rolled-back transaction and dies with its
# connection, so the names prepared are kept per raw connection. Not for a
# pooler in transaction mode (PgBouncer): `DATABASE_PREPARED_STATEMENTS=false`.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")
_STATEMENTS: dict[str, tuple[str, str, str, tuple[str, ...] | None]] = {}
_BY_NAME: dict[str, str] = {}
_EXECUTE = re.compile(r"EXECUTE (rs_[0-9a-f]+)")


def _statement(sql: str):
    """(name, PREPARE ..., EXECUTE ...(%s, ...), parameter names or None)."""
    cached = _STATEMENTS.get(sql)
    if cached is None:
        names: list[str] = []
        count = 0

        def number(match) -> str:
            nonlocal count
            if match.group(0) == "%%":
                return "%"
            if match.group(1) is None:
                count += 1
                return f"${count}"
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        body = _PLACEHOLDER.sub(number, sql)
        name = "rs_" + hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()
        arguments = ", ".join(["%s"] * (len(names) or count))
        run = f"EXECUTE {name}({arguments})" if arguments else f"EXECUTE {name}"
        cached = (name, f"PREPARE {name} AS {body}", run, tuple(names) or None)
        _STATEMENTS[sql] = cached
        _BY_NAME[name] = sql
    return cached


def _prepared_here(db) -> set[str]:
    raw = db.connection
    known = getattr(db, "_rawsql_prepared", None)
    if known is None or known[0] is not raw:
        known = (raw, set())
        db._rawsql_prepared = known
    return known[1]


def execute(cursor, sql: str, params=None) -> None:
    """`cursor.execute(sql, params)`, as a prepared statement on PostgreSQL.

    `sql` takes `%s` or `%(name)s` placeholders as usual; each one must have a
    type PostgreSQL can infer from its place (a column it is compared with or
    written to) or an explicit cast (`%s::timestamptz`). Statements are
    prepared once per connection, outside the queries Django counts.
    """
    db = cursor.db  # the connection itself (see `from_row`)
    if db.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        cursor.execute(sql, params)
        return
    name, prepare, run, names = _statement(sql)
    known = _prepared_here(db)
    if name not in known:
        with db.wrap_database_errors:
            cursor.cursor.execute(prepare)
        known.add(name)
    if names is not None:
        params = [params[key] for key in names]
    cursor.execute(run, params)


def statement_of(sql: str) -> str:
    """The statement that an `EXECUTE rs_...(...)` ran, as written (with its
    placeholders), for logs and tests; any other SQL as it is."""
    match = _EXECUTE.match(sql)
    return _BY_NAME.get(match.group(1), sql) if match else sql


def unprepared(sql: str, params):
    """(statement, parameters) as `execute` was called, from the EXECUTE it
    sent (for the benchmark's capture); any other SQL unchanged."""
    statement = statement_of(sql)
    if statement is sql:
        return sql, params
    names = _STATEMENTS[statement][3]
    return statement, dict(zip(names, params, strict=True)) if names else params
