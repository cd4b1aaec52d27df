"""Loading the made-up rows (see `rows`) into PostgreSQL with COPY.

The rows are streamed: a producer thread writes the next chunk of text rows
while the database parses the previous one, and a bounded queue keeps memory
flat whatever the size (about 170 MB at a million members and ten million
purchases, which load in about 3 minutes and 15 seconds on two cores). The
members' figures are then set by one set-based UPDATE, as the purchase
service keeps them: completed purchases only, net of refunds.

Everything happens in one transaction, so a failed run leaves nothing behind.
For big loads the secondary indexes (and the unique constraints no foreign key
depends on) are dropped first and built again at the end, from their own
definitions read back from the catalogue: building an index once is several
times faster than growing it row by row. Foreign-key checks are skipped during
COPY (`session_replication_role = replica`, superusers only): the ids are
reserved by this run and every reference is made consistent by construction.
"""

from __future__ import annotations

import array
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction

from members import codes
from members.models import Member, Purchase, Refund
from members.models.purchase import COUNTED_STATUSES
from shops.models import Shop, Store

from .rows import (
    BRANCHES,
    MEMBER_COLUMNS,
    MEMBER_YEARS,
    PURCHASE_COLUMNS,
    REFUND_REASONS,
    Plan,
    _today,
    member_chunks,
    purchase_chunks,
)

QUEUE_CHUNKS = 4  # at most this many chunks wait in memory
REBUILD_MIN_ROWS = 100_000


class NeedsPostgres(Exception):
    """The generator loads with COPY, which only PostgreSQL has."""


@dataclass
class Step:
    name: str
    rows: int
    seconds: float


@dataclass
class Report:
    shop: Shop
    members: int = 0
    purchases: int = 0
    refunds: int = 0
    indexes_rebuilt: list[str] = field(default_factory=list)
    fk_checks_skipped: bool = False
    steps: list[Step] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


# Streaming ------------------------------------------------------------------


class _ChunkReader:
    """A file for `copy_expert` whose chunks a producer thread makes meanwhile."""

    def __init__(self, chunks: Iterator[str]):
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(chunks,), daemon=True
        )
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, chunks: Iterator[str]) -> None:
        try:
            for chunk in chunks:
                if not self._put(chunk.encode()):
                    return
            self._put(b"")
        except BaseException as error:  # handed to the reading thread
            self._put(error)

    def read(self, size: int = -1) -> bytes:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    readline = read

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _copy(cursor, table: str, columns: tuple[str, ...], chunks: Iterator[str]):
    reader = _ChunkReader(chunks)
    try:
        cursor.copy_expert(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN", reader, 1 << 20
        )
    finally:
        reader.close()


# Loading --------------------------------------------------------------------


def _reserve_ids(cursor, table: str, count: int) -> int:
    """The first of `count` consecutive ids of `table`, ours alone: the lock
    holds other inserts (which would draw ids) until this run commits."""
    cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    cursor.execute("SELECT nextval(%s)", [sequence])
    first = cursor.fetchone()[0]
    if count > 1:
        cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
    return first


def _secondary_indexes(cursor, table: str) -> list[tuple[str, str, str]]:
    """(name, drop, create) of every index of `table` but the primary key and
    those a foreign key points at, with their own definitions."""
    cursor.execute(
        """
        SELECT ci.relname, pg_get_indexdef(i.indexrelid), con.conname,
               pg_get_constraintdef(con.oid)
        FROM pg_index i
        JOIN pg_class ci ON ci.oid = i.indexrelid
        LEFT JOIN pg_constraint con
          ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
         AND con.contype IN ('u', 'x')
        WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
          AND NOT EXISTS (
            SELECT 1 FROM pg_constraint f
            WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
        ORDER BY ci.relname
        """,
        [table],
    )
    quote = connection.ops.quote_name
    found = []
    for name, indexdef, constraint, condef in cursor.fetchall():
        if constraint:
            drop = f"ALTER TABLE {table} DROP CONSTRAINT {quote(constraint)}"
            create = f"ALTER TABLE {table} ADD CONSTRAINT {quote(constraint)} {condef}"
        else:
            drop, create = f"DROP INDEX {quote(name)}", indexdef
        found.append((name, drop, create))
    return found


def _should_rebuild(cursor, table: str, rows: int, indexes: str) -> bool:
    if indexes != "auto":
        return indexes == "rebuild"
    cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
    existing = max(0, cursor.fetchone()[0])
    return rows >= REBUILD_MIN_ROWS and rows >= existing


BULK_SETTINGS = {
    "synchronous_commit": "off",
    "work_mem": "'512MB'",  # the figures' aggregate: a million groups in memory
    "maintenance_work_mem": "'1GB'",  # index builds sort in memory
    "max_parallel_maintenance_workers": "2",
}

FIGURES_SQL = """
UPDATE members_member m
SET total_spent = f.spent, order_count = f.orders,
    first_purchase_at = f.first_at, last_purchase_at = f.last_at
FROM (
    SELECT member_id, SUM(paid_amount - refunded_amount) AS spent,
           COUNT(*) AS orders, MIN(occurred_at) AS first_at,
           MAX(occurred_at) AS last_at
    FROM members_purchase
    WHERE shop_id = %(shop)s AND member_id BETWEEN %(first)s AND %(last)s
      AND status IN %(counted)s
    GROUP BY member_id
) f
WHERE m.shop_id = %(shop)s AND m.id = f.member_id
"""

REFUNDS_SQL = """
INSERT INTO members_refund
    (shop_id, purchase_id, amount, reason, lines, external_refund_id, created_at)
SELECT shop_id, id, refunded_amount, (%(reasons)s::text[])[1 + id %% 4], '{}', '',
       LEAST(occurred_at + interval '3 days', %(today)s)
FROM members_purchase
WHERE shop_id = %(shop)s AND id BETWEEN %(first)s AND %(last)s
  AND refunded_amount > 0
"""


def ensure_stores(shop: Shop, count: int | None) -> list[Store]:
    """The shop's active stores, with branches added until there are `count`
    (at least one: purchases in store need a store)."""
    from shops.services import tenants

    found = list(Store.objects.unscoped().filter(shop=shop, is_active=True))
    if not found:
        count = max(count or 1, 1)
    taken = {store.code for store in Store.objects.unscoped().filter(shop=shop)}
    number = 0
    while count is not None and len(found) < count:
        number += 1
        code = f"g{number:02d}"
        if code in taken:
            continue
        found.append(
            tenants.create_store(
                shop=shop, name=BRANCHES[(number - 1) % len(BRANCHES)], code=code
            )
        )
    return sorted(found, key=lambda store: store.pk)


def generate(
    *,
    shop: Shop,
    members: int,
    purchases: int,
    seed: int = 1,
    stores: int | None = None,
    indexes: str = "auto",
    progress: Callable[[Step], None] | None = None,
) -> Report:
    """Add `members` members and `purchases` of theirs to `shop`.

    `indexes`: "auto" rebuilds a table's secondary indexes when this run adds
    at least REBUILD_MIN_ROWS rows and no fewer than it holds; "rebuild" or
    "keep" force it. A rebuild locks the table for the run.
    """
    if connection.vendor != "postgresql":
        raise NeedsPostgres("The generator loads with COPY: it needs PostgreSQL.")
    if members < 1:
        raise ValueError("members must be at least 1")
    if purchases < 0:
        raise ValueError("purchases cannot be negative")
    report = Report(shop=shop)

    def step(name: str, rows: int, started: float) -> None:
        done = Step(name, rows, time.perf_counter() - started)
        report.steps.append(done)
        if progress:
            progress(done)

    started = time.perf_counter()
    store_ids = [store.pk for store in ensure_stores(shop, stores)]
    today = _today()
    plan = Plan(
        shop=shop,
        members=members,
        purchases=purchases,
        seed=seed,
        store_ids=store_ids,
        origin=today - timedelta(days=MEMBER_YEARS * 365),
        days=MEMBER_YEARS * 365,
        utc_offset=int(today.astimezone(shop.zone).utcoffset().total_seconds()),
    )
    member_table = Member._meta.db_table
    purchase_table = Purchase._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        for name, value in BULK_SETTINGS.items():
            cursor.execute(f"SET LOCAL {name} = {value}")
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if cursor.fetchone()[0]:
            cursor.execute("SET LOCAL session_replication_role = replica")
            report.fk_checks_skipped = True
        plan.first_number = codes.reserve(shop=shop, count=members).start
        plan.first_member_id = _reserve_ids(cursor, member_table, members)
        if purchases:
            plan.first_purchase_id = _reserve_ids(cursor, purchase_table, purchases)
        rebuild = []
        for table, rows in ((member_table, members), (purchase_table, purchases)):
            if _should_rebuild(cursor, table, rows, indexes):
                rebuild += _secondary_indexes(cursor, table)
        for _name, drop, _create in rebuild:
            cursor.execute(drop)
        step("prepare", 0, started)

        started = time.perf_counter()
        joined, homes = array.array("q"), array.array("b")
        _copy(cursor, member_table, MEMBER_COLUMNS, member_chunks(plan, joined, homes))
        report.members = members
        step("members (COPY)", members, started)

        if purchases:
            started = time.perf_counter()
            chunks = purchase_chunks(plan, joined, homes)
            _copy(cursor, purchase_table, PURCHASE_COLUMNS, chunks)
            report.purchases = purchases
            step("purchases (COPY)", purchases, started)

            started = time.perf_counter()
            last_purchase = plan.first_purchase_id + purchases - 1
            cursor.execute(
                REFUNDS_SQL,
                {
                    "reasons": list(REFUND_REASONS),
                    "today": today,
                    "shop": shop.pk,
                    "first": plan.first_purchase_id,
                    "last": last_purchase,
                },
            )
            report.refunds = cursor.rowcount
            step("refunds (INSERT ... SELECT)", report.refunds, started)

            started = time.perf_counter()
            cursor.execute(
                FIGURES_SQL,
                {
                    "shop": shop.pk,
                    "first": plan.first_member_id,
                    "last": plan.first_member_id + members - 1,
                    "counted": tuple(str(s) for s in COUNTED_STATUSES),
                },
            )
            step("members' figures (one UPDATE)", cursor.rowcount, started)

        if rebuild:
            started = time.perf_counter()
            for _name, _drop, create in rebuild:
                cursor.execute(create)
            report.indexes_rebuilt = [name for name, _drop, _create in rebuild]
            step(f"indexes ({len(rebuild)} built)", len(rebuild), started)
        for name in (*BULK_SETTINGS, "session_replication_role"):
            cursor.execute(f"SET LOCAL {name} TO DEFAULT")

    started = time.perf_counter()
    tables = f"{member_table}, {purchase_table}, {Refund._meta.db_table}"
    with connection.cursor() as cursor:
        if connection.in_atomic_block:  # VACUUM cannot run in a transaction
            cursor.execute(f"ANALYZE {tables}")
        else:
            # The figures' UPDATE left a dead version of each member behind.
            cursor.execute(f"VACUUM ANALYZE {member_table}")
            cursor.execute(f"ANALYZE {purchase_table}, {Refund._meta.db_table}")
    step("ANALYZE", 0, started)
    return report
