"""Large, realistic, deterministic members and purchases for one shop.

`manage.py generate_members` and the benchmarks call `generate()`. Rows are
made in Python from `random.Random(seed)` (same seed, same data in a fresh
shop) and streamed to PostgreSQL with COPY: a producer thread writes the next
chunk of text rows while the database parses the previous one, and a bounded
queue keeps memory flat whatever the size. The members' figures are then set
by one set-based UPDATE, as the purchase service keeps them: completed
purchases only, net of refunds.

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
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from members import codes
from members.demo import EMAIL_DOMAINS, name_pool, words
from members.models import Member, Purchase, Refund
from members.models.purchase import COUNTED_STATUSES
from shops.models import Shop, Store

CHUNK_ROWS = 20_000
QUEUE_CHUNKS = 4  # at most this many chunks wait in memory
REBUILD_MIN_ROWS = 100_000
DAY = 86_400
MEMBER_YEARS = 3
PURCHASE_YEARS = 2


# Mainland mobile prefixes; the other eight digits come from the member number.
PHONE_PREFIXES = tuple(
    f"+86{p}"
    for p in (*range(130, 140), *range(150, 154), *range(155, 160), *range(180, 190))
)
BRANCHES = (
    "Pudong 浦东店",
    "Hongqiao 虹桥店",
    "Wujiaochang 五角场店",
    "Lujiazui 陆家嘴店",
    "Minhang 闵行店",
    "Songjiang 松江店",
    "Hangzhou Xihu 杭州西湖店",
    "Suzhou Pingjiang 苏州平江店",
)
REFUND_REASONS = ("Changed mind", "Damaged in delivery", "Wrong item", "Duplicate")
# Phones are a bijection of the member number (n * A + B mod the space), so
# they never repeat in a shop, across runs too, without remembering any.
PHONE_BLOCK = 100_000_000
PHONE_SPACE = len(PHONE_PREFIXES) * PHONE_BLOCK
PHONE_A = 2_654_435_761  # coprime with the space (not divisible by 2, 3 or 5)
assert math.gcd(PHONE_A, PHONE_SPACE) == 1


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


@dataclass
class Plan:
    shop: Shop
    members: int
    purchases: int
    seed: int
    store_ids: list[int]
    first_number: int = 0  # first member number (member code) of this run
    first_member_id: int = 0
    first_purchase_id: int = 0
    # Whole days since `origin` (midnight UTC, MEMBER_YEARS before today).
    origin: datetime = field(default_factory=lambda: _today() - timedelta(days=1))
    days: int = 0
    utc_offset: int = 0  # seconds, the shop's time zone: business hours are local


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


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


# Rows -----------------------------------------------------------------------

MEMBER_COLUMNS = words(
    "id shop_id member_code name phone phone_last4 email birthday_month "
    "birthday_day birth_year gender language home_store_id source "
    "referred_by_id status joined_at sms_consent sms_consent_at email_consent "
    "email_consent_at notes custom_fields external_id total_spent order_count "
    "created_at updated_at"
)
PURCHASE_COLUMNS = words(
    "id shop_id member_id store_id external_order_id amount discount "
    "paid_amount refunded_amount currency channel status occurred_at "
    "completed_at cancelled_at note created_at"
)
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _weighted(pairs: list[tuple[object, int]], size: int = 1000) -> list:
    """A table to index with random(): each value as often as its weight."""
    total = sum(weight for _value, weight in pairs)
    table: list = []
    for value, weight in pairs:
        table += [value] * round(weight * size / total)
    return table


def _clock_strings(plan: Plan) -> tuple[list[str], list[str]]:
    """Timestamps are made as day + time-of-day strings: far cheaper than
    formatting a datetime for each of ten million rows."""
    day_names = [
        (plan.origin + timedelta(days=d)).strftime("%Y-%m-%d ")
        for d in range(plan.days + 1)
    ]
    times = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00" for s in range(DAY)]
    return day_names, times


def member_chunks(plan: Plan, joined: array.array, homes: array.array):
    """Member rows; fills `joined` (seconds since origin) and `homes` (store
    index or -1) for the purchases."""
    rng = random.Random(f"{plan.seed}:members")
    rnd = rng.random
    names = name_pool(random.Random(f"{plan.seed}:names"))
    n_names = len(names)
    days, times = _clock_strings(plan)
    span = plan.days * DAY
    b = random.Random(f"{plan.seed}:phones").randrange(PHONE_SPACE)
    stores = plan.store_ids
    n_stores = len(stores)
    genders = _weighted([("female", 55), ("male", 35), ("", 8), ("other", 2)])
    sources = _weighted(
        [
            ("counter", 45),
            ("qr", 20),
            ("portal", 12),
            ("referral", 8),
            ("import", 10),
            ("api", 5),
        ]
    )
    statuses = _weighted([("active", 93), ("inactive", 6), ("blocked", 1)])
    languages = _weighted([("", 70), ("zh-hans", 25), ("en", 5)])
    shop_id, first_id, first_number = (
        plan.shop.pk,
        plan.first_member_id,
        plan.first_number,
    )
    now = days[-1] + "00:00:00+00"
    encode = codes.encode
    rows = []
    for i in range(plan.members):
        n = first_number + i
        name, local = names[int(rnd() * n_names)]
        v = (n * PHONE_A + b) % PHONE_SPACE
        last8 = v % PHONE_BLOCK
        phone = f"{PHONE_PREFIXES[v // PHONE_BLOCK]}{last8:08d}"
        has_email = rnd() < 0.35
        email = (
            f"{local}{n}@{EMAIL_DOMAINS[n % len(EMAIL_DOMAINS)]}" if has_email else ""
        )
        if rnd() < 0.85:
            month = int(rnd() * 12)
            birthday = f"{month + 1}\t{1 + int(rnd() * MONTH_DAYS[month])}\t" + (
                str(1955 + int(rnd() * 52)) if rnd() < 0.6 else "\\N"
            )
        else:
            birthday = "\\N\t\\N\t\\N"
        t = int(rnd() * span)
        joined.append(t)
        at = days[t // DAY] + times[t % DAY]
        if rnd() < 0.9:
            home = int(rnd() * n_stores)
            homes.append(home)
            home_id = stores[home]
        else:
            homes.append(-1)
            home_id = "\\N"
        source = sources[int(rnd() * len(sources))]
        referrer = first_id + int(rnd() * i) if source == "referral" and i else "\\N"
        sms = "t\t" + at if rnd() < 0.6 else "f\t\\N"
        mail = "t\t" + at if has_email and rnd() < 0.5 else "f\t\\N"
        rows.append(
            f"{first_id + i}\t{shop_id}\t{encode(n)}\t{name}\t{phone}\t"
            f"{last8 % 10000:04d}\t{email}\t{birthday}\t"
            f"{genders[int(rnd() * len(genders))]}\t"
            f"{languages[int(rnd() * len(languages))]}\t{home_id}\t{source}\t"
            f"{referrer}\t{statuses[int(rnd() * len(statuses))]}\t{at}\t{sms}\t"
            f"{mail}\t\t{{}}\t\t0.00\t0\t{at}\t{now}\n"
        )
        if len(rows) == CHUNK_ROWS:
            yield "".join(rows)
            rows.clear()
    if rows:
        yield "".join(rows)


def _amount_table(rng: random.Random, size: int = 4096) -> list[tuple[str, ...]]:
    """(amount, discount, paid, part of paid) strings: a log-normal spread of
    tickets around 90 yuan with a long tail of big orders."""
    table = []
    for _ in range(size):
        cents = max(100, round(rng.lognormvariate(math.log(9000), 0.85)))
        if rng.random() < 0.05:  # gift boxes, tea sets
            cents *= rng.randint(3, 15)
        discount = (
            cents * rng.choice((5, 10, 15, 20)) // 100 if rng.random() < 0.2 else 0
        )
        paid = cents - discount
        part = max(1, paid * rng.randint(10, 70) // 100)
        table.append(
            tuple(f"{c // 100}.{c % 100:02d}" for c in (cents, discount, paid, part))
        )
    return table


def purchase_chunks(plan: Plan, joined: array.array, homes: array.array):
    """Purchase rows over the last PURCHASE_YEARS: a few members buy often,
    most now and then, a quarter never; most purchases are completed, some
    refunded in full or in part, cancelled, or still pending."""
    rng = random.Random(f"{plan.seed}:purchases")
    rnd = rng.random
    amounts = _amount_table(random.Random(f"{plan.seed}:amounts"))
    days, times = _clock_strings(plan)
    n = plan.members
    vips, regulars, buyers = max(1, n // 200), max(1, n * 8 // 100), max(1, n * 3 // 4)
    last_day = plan.days - 1
    window_start = max(0, plan.days - PURCHASE_YEARS * 365)
    opening = (9 * 3600 - plan.utc_offset) % DAY  # 09:00 to 22:00 in the shop
    stores = plan.store_ids
    n_stores = len(stores)
    shop_id, first_id, first_member = (
        plan.shop.pk,
        plan.first_purchase_id,
        plan.first_member_id,
    )
    currency = plan.shop.currency
    prefix = f"GEN{plan.first_number}-"  # unique per run in the shop
    rows = []
    for k in range(plan.purchases):
        r = rnd()
        if r < 0.1:
            m = int(rnd() * vips)
        elif r < 0.4:
            m = int(rnd() * regulars)
        else:
            m = int(rnd() * buyers)
        lo = max(joined[m] // DAY, window_start)
        r = rnd()
        if r < 0.98:
            day = lo + int(rnd() * (last_day + 1 - lo))
        else:  # pending: waits for the customer to confirm receipt
            day = max(lo, last_day - int(rnd() * 7))
        at = days[day] + times[(opening + int(rnd() * 46_800)) % DAY]
        amount, discount, paid, part = amounts[rng.getrandbits(12)]
        c = rnd()
        if c < 0.7:
            channel = "store"
            home = homes[m]
            if home >= 0 and c < 0.55:
                store = stores[home]
            else:
                store = stores[int(rnd() * n_stores)]
        else:
            channel = "online" if c < 0.85 else "app" if c < 0.97 else "phone"
            store = "\\N"
        head = (
            f"{first_id + k}\t{shop_id}\t{first_member + m}\t{store}\t"
            f"{prefix}{k + 1:09d}\t{amount}\t{discount}\t{paid}\t"
        )
        if r < 0.90:
            tail = f"0.00\t{currency}\t{channel}\tcompleted\t{at}\t{at}\t\\N"
        elif r < 0.93:
            tail = f"{paid}\t{currency}\t{channel}\trefunded\t{at}\t{at}\t\\N"
        elif r < 0.955:
            tail = f"{part}\t{currency}\t{channel}\tpartially_refunded\t{at}\t{at}\t\\N"
        elif r < 0.98:
            tail = f"0.00\t{currency}\t{channel}\tcancelled\t{at}\t\\N\t{at}"
        else:
            tail = f"0.00\t{currency}\t{channel}\tpending\t{at}\t\\N\t\\N"
        rows.append(f"{head}{tail}\t\t{at}\n")
        if len(rows) == CHUNK_ROWS:
            yield "".join(rows)
            rows.clear()
    if rows:
        yield "".join(rows)


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
