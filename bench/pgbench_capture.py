"""Turn the SQL a real request runs into a pgbench custom script.

`capture()` records every statement Django sends while a block runs, with its
parameters, whether it ran inside a transaction, each COMMIT, and the rows of
each INSERT ... RETURNING. `to_pgbench()` writes them out as a pgbench script:
parameters that must change per run (the member, the order number) become
pgbench variables, ids returned by an INSERT and used later become `\\gset`
variables, everything else stays a literal. pgbench then runs exactly the round
trips the request runs, without Python: the floor under the request's cost.
The request prepares its statements once per connection (`shops.rawsql`), so
pgbench does too (`-M prepared`).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection
from harness import libpq_env

from shops import rawsql


@dataclass
class Statement:
    sql: str
    params: tuple | dict
    in_transaction: bool
    returned: list[tuple] | None = None
    columns: list[str] = field(default_factory=list)


COMMIT = "COMMIT"
# Ids handed out after `separate_id_ranges()` are at least this, one range of
# ID_FLOOR per table: never equal to a count, a store id or another table's id.
ID_FLOOR = 10**12
ROLLBACK = "ROLLBACK"


@contextmanager
def capture():
    """Record the statements (and COMMIT/ROLLBACK markers) of the block."""
    recorded: list[Statement | str] = []

    def wrapper(execute, sql, params, many, context):
        inside = context["connection"].in_atomic_block
        result = execute(sql, params, many, context)
        # A prepared statement's EXECUTE is written out as the statement:
        # pgbench prepares it in turn (`-M prepared`).
        sql, params = rawsql.unprepared(sql, params)
        kept = dict(params) if isinstance(params, dict) else tuple(params or ())
        statement = Statement(sql, kept, inside)
        raw = context["cursor"].cursor
        if not many and "RETURNING" in sql.upper() and raw.description:
            # Peek at the returned rows without taking them from Django.
            statement.columns = [c[0] for c in raw.description]
            statement.returned = raw.fetchall()
            raw.scroll(0, mode="absolute")
        recorded.append(statement)
        return result

    real_commit, real_rollback = connection.commit, connection.rollback

    def commit():
        recorded.append(COMMIT)
        real_commit()

    def rollback():
        recorded.append(ROLLBACK)
        real_rollback()

    connection.commit, connection.rollback = commit, rollback
    try:
        with connection.execute_wrapper(wrapper):
            yield recorded
    finally:
        del connection.commit, connection.rollback


def separate_id_ranges() -> None:
    """Move every sequence still below ID_FLOOR to a range of its own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname, sequencename FROM pg_sequences "
            "WHERE coalesce(last_value, 0) < %s AND max_value > %s "
            "ORDER BY sequencename",
            [ID_FLOOR, ID_FLOOR * 10_000],
        )
        for number, (schema, name) in enumerate(cursor.fetchall(), start=1):
            cursor.execute(
                "SELECT setval(format('%%I.%%I', %s::text, %s::text), %s)",
                [schema, name, ID_FLOOR * number],
            )


def _literal(sql: str, params) -> str:
    return connection.ops.compose_sql(sql, params)


def to_pgbench(
    recorded: list[Statement | str],
    *,
    variables: dict[object, str],
    header: str = "",
) -> str:
    """A pgbench script running the recorded statements.

    `variables` maps a parameter value seen in the request to the pgbench
    expression that replaces it in every statement (e.g. the member's id to
    `:member_id`). Ids returned by an INSERT ... RETURNING and passed to a
    later statement become `\\gset` variables.
    """
    lines = [header.rstrip()] if header else []
    returned: dict[int, str] = {}
    in_tx = False
    for number, item in enumerate(recorded):
        if item in (COMMIT, ROLLBACK):
            if in_tx:
                lines.append(f"{item};")
            in_tx = False
            continue
        if item.in_transaction and not in_tx:
            lines.append("BEGIN;")
            in_tx = True
        sentinels: dict[str, str] = {}

        def substituted(value, sentinels=sentinels):
            expr = None
            if isinstance(value, int) and not isinstance(value, bool):
                expr = returned.get(value)
            if expr is None and _hashable(value) and value in variables:
                expr = variables[value]
            if expr is None:
                return value
            sentinel = f"PGBVAR{len(sentinels)}X"
            sentinels[sentinel] = expr
            return sentinel

        # Named parameters (`%(shop)s`, as in the tier snapshot) or positional.
        if isinstance(item.params, dict):
            params = {key: substituted(v) for key, v in item.params.items()}
        else:
            params = tuple(substituted(value) for value in item.params)
        text = _literal(item.sql, params)
        for sentinel, expr in sentinels.items():
            text = re.sub(rf"'{sentinel}'(::\w+)?", expr, text)
        text = " ".join(text.split())
        gset = ""
        is_insert = item.sql.lstrip().upper().startswith("INSERT")
        if is_insert and item.returned is not None and len(item.returned) == 1:
            # Only new rows' ids: run `separate_id_ranges()` first, so that no
            # other parameter can be mistaken for one of them.
            prefix = f"r{number}_"
            for column, value in zip(item.columns, item.returned[0], strict=True):
                if column == "id" and isinstance(value, int) and value >= ID_FLOOR:
                    returned[value] = f":{prefix}{column}"
                    gset = f" \\gset {prefix}"
        lines.append(text + (gset if gset else ";"))
    if in_tx:
        lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@dataclass
class PgbenchResult:
    tps: float
    latencies_ms: list[float]
    transactions: int
    failed: int
    output: str
    # (mean ms, statement) per statement of the script (pgbench -r).
    statements: list[tuple[float, str]]

    def slowest(self, count: int = 3) -> list[tuple[float, str]]:
        return sorted(self.statements, reverse=True)[:count]


def statement_latencies(output: str) -> list[tuple[float, str]]:
    """pgbench -r's report: a mean latency (ms), failures and the statement
    per line, after the "statement latencies" heading."""
    rows = []
    lines = output.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("statement latencies"):
            for row in lines[number + 1 :]:
                parts = row.split(maxsplit=2)
                try:
                    rows.append((float(parts[0]), parts[-1]))
                except (ValueError, IndexError):
                    break
            break
    return [(ms, text) for ms, text in rows if not text.startswith("\\")]


def run_pgbench(
    script: Path, *, clients: int, seconds: int, defines: dict[str, object]
) -> PgbenchResult:
    """pgbench with the script against the current database; per-transaction
    latencies from its log."""
    with tempfile.TemporaryDirectory(prefix="pgbench-") as tmp:
        command = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(seconds),
            "-f",
            str(script),
            "-l",
            f"--log-prefix={tmp}/log",
            "-r",
        ]
        for name, value in defines.items():
            command += ["-D", f"{name}={value}"]
        result = subprocess.run(
            command,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", **libpq_env()},
            capture_output=True,
            text=True,
            check=False,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise RuntimeError(f"pgbench failed:\n{output[-3000:]}")
        latencies = []
        for log in Path(tmp).glob("log*"):
            for row in log.read_text().splitlines():
                parts = row.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    latencies.append(int(parts[2]) / 1000)
    tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", output)
    return PgbenchResult(
        tps=tps,
        latencies_ms=latencies,
        transactions=len(latencies),
        failed=int(failed.group(1)) if failed else 0,
        output=output,
        statements=statement_latencies(output),
    )


def command_line(script: Path, *, clients: int, seconds: int, defines: dict) -> str:
    extra = " ".join(f"-D {k}={v}" for k, v in defines.items())
    return (
        f"pgbench -n -M prepared -c {clients} -j {min(clients, 2)} -T {seconds} "
        f"-f {script} {extra}"
    )
