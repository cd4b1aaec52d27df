"""The tiers and points benchmarks' shop: the members benchmarks' shop (see
`members_data`) with a loyalty programme and a points ledger.

`ensure_programme(shop)` gives the shop a 4-tier ladder (normal, senior, VIP,
supreme VIP; spend OR orders over a rolling 12-month window), a points policy
(lots expire 24 months after they are earned, no return window) and a purchase
earning rule (1 point per 1.00 paid, times the tier multiplier).

`ensure_ledger(shop)` makes the ledger with COPY, deterministic from the seed
(BENCH_SEED): one account per member and `ledger_size()` entries (10M at full
size, 10 per member on average, a few members with many), each credit a lot,
each debit consuming lots oldest expiry first (its consumptions recorded), so
the ledger's invariants hold: for every account, balance = sum(entries) = sum
of its open lots' remaining. Most members who joined more than 60 days before
the data were made carry an opening balance imported from their old system
60 days ago that expired 1 to 29 days ago, not expired yet by the daily task:
the mass expiry such a shop meets on the first run after an import or a year
end, about 1M due lots at full size. Everything is one transaction (a broken
run leaves nothing); the marker is one entry's idempotency key naming the
size and seed, and its reason the reference time the data were made for.
Secondary indexes are dropped and rebuilt around big loads, as in
`bench/datagen`.
"""

from __future__ import annotations

import array
import bisect
import os
import random
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock

from datagen.load import (
    BULK_SETTINGS,
    _copy,
    _reserve_ids,
    _secondary_indexes,
    _should_rebuild,
)
from django.db import connection, transaction
from harness import FULL_MEMBERS, sizes

from members.demo import words
from points.models import (
    EarningRule,
    ExpiryMode,
    LotConsumption,
    PointsAccount,
    PointsEntry,
    PointsLot,
    PointsPolicy,
    RefundPolicy,
    Rounding,
    RuleKind,
)
from shops.tenancy import shop_scope
from tiers.models import (
    Basis,
    DowngradeRule,
    MemberTier,
    Tier,
    TierPolicy,
    Window,
)

SEED = int(os.environ.get("BENCH_SEED", "1"))
FULL_ENTRIES = 10_000_000
DAY = 86_400
EXPIRY_DAYS = 730  # lots expire 24 months after they are earned
IMPORT_AGE_DAYS = 60  # the opening balances came in 60 days before the data
LEDGER_YEARS = 2

# (rank, name, Chinese name, spend, orders, discount %, multiplier, colour)
LADDER = (
    (0, "Normal", "普通会员", "0", 0, "0", "1.00", "#64748b"),
    (1, "Senior", "银卡会员", "1000", 5, "2", "1.25", "#94a3b8"),
    (2, "VIP", "金卡会员", "5000", 20, "5", "1.50", "#d4a017"),
    (3, "Supreme VIP", "钻石会员", "20000", 60, "10", "2.00", "#7c3aed"),
)


def ledger_size() -> int:
    """Entries in the bench shop's ledger: BENCH_LEDGER_ENTRIES, else 10 per
    member of the bench shop (10M at 1M members)."""
    value = os.environ.get("BENCH_LEDGER_ENTRIES", "").strip()
    members, _purchases = sizes()
    return int(float(value)) if value else FULL_ENTRIES // FULL_MEMBERS * members


def marker(entries: int, seed: int = SEED) -> str:
    return f"bench-ledger:e{entries}:s{seed}"


# The programme: ladder, tier policy, points policy, earning rule -------------


def ensure_programme(shop) -> None:
    """The ladder, the qualification policy, the points policy and the purchase
    earning rule of the bench shop (made once; a kept shop keeps them)."""
    with shop_scope(shop):
        if not Tier.objects.filter(shop=shop).exists():
            for rank, name, zh, spend, orders, discount, mult, colour in LADDER:
                Tier.objects.create(
                    shop=shop,
                    rank=rank,
                    name=name,
                    name_translations={"zh-hans": zh},
                    min_spend=Decimal(spend),
                    min_orders=orders,
                    discount_percent=Decimal(discount),
                    points_multiplier=Decimal(mult),
                    colour=colour,
                    birthday_points=100 * rank,
                )
        TierPolicy.objects.get_or_create(
            shop=shop,
            defaults={
                "basis": Basis.EITHER,
                "window": Window.ROLLING,
                "window_months": 12,
                "downgrade": DowngradeRule.HIGHEST_MET,
                "grace_days": 0,
            },
        )
        PointsPolicy.objects.get_or_create(
            shop=shop,
            defaults={
                "expiry": ExpiryMode.MONTHS,
                "expiry_months": EXPIRY_DAYS // 365 * 12,
                "pending_days": 0,
                "refund_policy": RefundPolicy.TAKE_REMAINING,
                "cash_points": 100,
                "cash_value": Decimal("1.00"),
            },
        )
        EarningRule.objects.get_or_create(
            shop=shop,
            kind=RuleKind.PURCHASE,
            defaults={"points_per_unit": Decimal("1.00"), "rounding": Rounding.DOWN},
        )


@contextmanager
def no_relay():
    """Outbox relay runs asked for by commits are counted, not run: relaying
    is a worker's job (without a broker Celery would run it eagerly here, in
    the middle of the timings)."""
    kicks = []
    fake = mock.Mock()
    fake.delay.side_effect = lambda *a, **k: kicks.append(1)
    with mock.patch("shops.tasks.relay_outbox", fake):
        yield kicks


@contextmanager
def counting_statements():
    """Count the SQL statements the block sends (set-based work sends a few,
    whatever the number of rows)."""
    counted = [0]

    def wrapper(execute, sql, params, many, context):
        counted[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield counted


def is_placeholder(fn) -> bool:
    """True while `fn` is still the lead's TEMPORARY placeholder."""
    import sys

    module = sys.modules.get(fn.__module__)
    return "TEMPORARY placeholder" in ((module and module.__doc__) or "")


def has_tier_state(shop) -> bool:
    return MemberTier.objects.unscoped().filter(shop=shop).exists()


def recalculation_service():
    """`tiers.services.recalculation.recalculate_shop`, or None while it is
    not written yet."""
    try:
        from tiers.services.recalculation import recalculate_shop
    except ImportError:
        return None
    return recalculate_shop


def ensure_tiers_settled(shop) -> None:
    """Members hold the tiers their figures give them, as after the nightly
    recalculation: the steady state purchases are evaluated against."""
    recalculate_shop = recalculation_service()
    if recalculate_shop is None:
        print("  tiers: no tiers.services.recalculation yet; members stay unranked")
        return
    if has_tier_state(shop):
        return
    from tiers.models import TierChangeReason

    started = time.perf_counter()
    with shop_scope(shop):
        up, down = recalculate_shop(shop=shop, reason=TierChangeReason.RECALCULATION)
    took = time.perf_counter() - started
    print(
        f"  tiers: settled the shop's tiers once in {took:.1f} s "
        f"({up:,} up, {down:,} down)"
    )


# The ledger -----------------------------------------------------------------


@dataclass
class Ledger:
    """What `ensure_ledger` made or found."""

    entries: int
    reference: datetime  # the time the data were made for (lots due then)
    accounts: int = 0
    lots: int = 0
    consumptions: int = 0
    due_lots: int = 0
    seconds: float = 0.0


REFERENCE_RE = re.compile(r"as of (\S+)\)")


def find_ledger(shop, entries: int, seed: int = SEED) -> Ledger | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reason FROM points_pointsentry "
            "WHERE shop_id = %s AND idempotency_key = %s",
            [shop.pk, marker(entries, seed)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    found = REFERENCE_RE.search(row[0])
    reference = datetime.fromisoformat(found.group(1)) if found else _today()
    return Ledger(entries=entries, reference=reference)


def ensure_ledger(shop) -> Ledger:
    """The bench shop's ledger, generated on first use (kept with --keep-data)."""
    entries = ledger_size()
    found = find_ledger(shop, entries)
    if found is not None:
        print(f"  ledger: reusing {entries:,} entries (kept by an earlier run)")
        return found
    if PointsAccount.objects.unscoped().filter(shop=shop).exists():
        print("  ledger: the shop has another ledger; deleting it first")
        _delete_ledger(shop)
    ledger = generate_ledger(shop, entries=entries, seed=SEED)
    print(
        f"  ledger generator: {ledger.accounts:,} accounts, {ledger.entries:,} "
        f"entries, {ledger.lots:,} lots, {ledger.consumptions:,} consumptions "
        f"({ledger.due_lots:,} lots due) in {ledger.seconds:.1f} s "
        f"({ledger.entries / ledger.seconds:,.0f} entries/s)"
    )
    return ledger


def _delete_ledger(shop) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        for table in (
            LotConsumption._meta.db_table,
            PointsLot._meta.db_table,
            PointsEntry._meta.db_table,
            PointsAccount._meta.db_table,
        ):
            cursor.execute(f"DELETE FROM {table} WHERE shop_id = %s", [shop.pk])  # noqa: S608


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


ACCOUNT_COLUMNS = words(
    "id shop_id member_id balance pending lifetime_earned redeemed expired updated_at"
)
ENTRY_COLUMNS = words(
    "id shop_id account_id kind points total_after source reason reference "
    "idempotency_key actor_label created_at"
)
LOT_COLUMNS = words(
    "id shop_id account_id entry_id points remaining expires_at available_at created_at"
)
CONSUMPTION_COLUMNS = words("id shop_id entry_id lot_id points")
REWARD_PRICES = (100, 200, 300, 500, 800, 1000, 2000)
CHUNK_ROWS = 20_000


@dataclass
class _Plan:
    shop_id: int
    members: array.array  # member ids
    joined: array.array  # seconds since origin
    counts: array.array  # entries per member
    origin: datetime
    reference: datetime
    first_account: int
    first_entry: int
    first_lot: int
    first_consumption: int
    seed: int
    marker: str


def _entry_counts(rng: random.Random, members: int, entries: int) -> array.array:
    """Entries per member summing to `entries`: a long tail (a few members with
    many), every member at least one."""
    mean = max(entries / members, 1.0)
    counts = array.array(
        "l", (1 + int(rng.expovariate(1 / max(mean - 1, 0.01))) for _ in range(members))
    )
    diff = entries - sum(counts)
    i = 0
    while diff != 0:
        if diff > 0:
            counts[i % members] += 1
            diff -= 1
        elif counts[i % members] > 1:
            counts[i % members] -= 1
            diff += 1
        i += 1
    return counts


def _points_table(rng: random.Random, size: int = 4096) -> list[int]:
    """Points of one purchase: a log-normal spread around 90 with a long tail."""
    import math

    table = []
    for _ in range(size):
        points = max(1, round(rng.lognormvariate(math.log(90), 0.85)))
        if rng.random() < 0.05:
            points *= rng.randint(3, 15)
        table.append(points)
    return table


def _rows(plan: _Plan, files: dict, stats: dict):
    """Entry chunks for COPY; accounts, lots and consumptions go to `files`."""
    rng = random.Random(f"{plan.seed}:ledger")
    rnd = rng.random
    points_table = _points_table(random.Random(f"{plan.seed}:points"))
    ref = int((plan.reference - plan.origin).total_seconds())
    days = [
        (plan.origin + timedelta(days=d)).strftime("%Y-%m-%d ")
        for d in range(ref // DAY + EXPIRY_DAYS + 2)
    ]
    clock = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00" for s in range(DAY)]

    def ts(t: int) -> str:
        return days[t // DAY] + clock[t % DAY]

    start_floor = ref - LEDGER_YEARS * 365 * DAY
    imported_at = ref - IMPORT_AGE_DAYS * DAY
    shop = plan.shop_id
    updated = ts(ref)
    eid, lid, cid = plan.first_entry, plan.first_lot, plan.first_consumption
    account = plan.first_account
    entries, accounts_out = [], []
    lots_out, cons_out = files["lots"], files["consumptions"]
    lots_buf, cons_buf = [], []
    due = 0
    for i, member in enumerate(plan.members):
        n = plan.counts[i]
        joined = plan.joined[i]
        begin = max(joined, start_floor)
        span = max(ref - DAY - begin, DAY)
        has_import = joined < imported_at
        times = sorted(begin + int(rnd() * span) for _ in range(n - has_import))
        # The opening balance comes in at its time among the others.
        at_import = bisect.bisect_right(times, imported_at) if has_import else -1
        if has_import:
            times.insert(at_import, imported_at)
        # [lot id, points, remaining, expires (s), created (s), entry id], in
        # the order they were made; regular lots expire in that order too.
        lots: list[list[int]] = []
        opening = None  # the imported lot: expires before every other
        head = 0  # first regular lot that may have points left
        total = earned = redeemed = 0
        for k, t in enumerate(times):
            key = ""
            if k == at_import:
                points = 200 + int(rnd() * 1800)
                expires = ref - DAY - int(rnd() * 28) * DAY
                kind, source, reason = "earn", "import", "Opening balance"
                if i == 0:
                    key = plan.marker
                    reason = (
                        f"Opening balance (bench ledger as of {updated[:10]}"
                        "T00:00:00+00:00)"
                    )
            else:
                price = REWARD_PRICES[int(rnd() * len(REWARD_PRICES))]
                lapsed = opening[2] if opening is not None and opening[3] <= t else 0
                if rnd() < 0.15 and total - lapsed >= price:
                    # A reward: consume open, unexpired lots, oldest expiry first.
                    total -= price
                    redeemed += price
                    entries.append(
                        f"{eid}\t{shop}\t{account}\tredeem\t{-price}\t{total}\treward\t"
                        f"Reward\treward:{1 + price // 100}\t\t\t{ts(t)}\n"
                    )
                    left = price
                    if opening is not None and opening[3] > t and opening[2]:
                        take = min(opening[2], left)
                        opening[2] -= take
                        left -= take
                        cons_buf.append(f"{cid}\t{shop}\t{eid}\t{opening[0]}\t{take}\n")
                        cid += 1
                    while left:
                        lot = lots[head]
                        if lot is opening or not lot[2]:
                            head += 1
                            continue
                        take = min(lot[2], left)
                        lot[2] -= take
                        left -= take
                        cons_buf.append(f"{cid}\t{shop}\t{eid}\t{lot[0]}\t{take}\n")
                        cid += 1
                    eid += 1
                    continue
                points = points_table[rng.getrandbits(12)]
                expires = t + EXPIRY_DAYS * DAY
                kind, source, reason = "earn", "purchase", ""
            total += points
            earned += points
            entries.append(
                f"{eid}\t{shop}\t{account}\t{kind}\t{points}\t{total}\t{source}\t"
                f"{reason}\t\t{key}\t\t{ts(t)}\n"
            )
            lot = [lid, points, points, expires, t, eid]
            lots.append(lot)
            if k == at_import:
                opening = lot
            lid += 1
            eid += 1
        for lot_id, points, remaining, expires, created, entry in lots:
            if remaining and expires <= ref:
                due += 1
            lots_buf.append(
                f"{lot_id}\t{shop}\t{account}\t{entry}\t{points}\t{remaining}\t"
                f"{ts(expires)}\t{ts(created)}\t{ts(created)}\n"
            )
        accounts_out.append(
            f"{account}\t{shop}\t{member}\t{total}\t0\t{earned}\t{redeemed}\t0\t"
            f"{updated}\n"
        )
        account += 1
        if len(entries) >= CHUNK_ROWS:
            yield "".join(entries)
            entries.clear()
            lots_out.write("".join(lots_buf))
            cons_out.write("".join(cons_buf))
            files["accounts"].write("".join(accounts_out))
            lots_buf.clear()
            cons_buf.clear()
            accounts_out.clear()
    lots_out.write("".join(lots_buf))
    cons_out.write("".join(cons_buf))
    files["accounts"].write("".join(accounts_out))
    for file in files.values():
        file.flush()
    stats.update(
        entries=eid - plan.first_entry,
        lots=lid - plan.first_lot,
        consumptions=cid - plan.first_consumption,
        accounts=account - plan.first_account,
        due=due,
    )
    if entries:
        yield "".join(entries)


def generate_ledger(shop, *, entries: int, seed: int) -> Ledger:
    """Accounts, entries, lots and consumptions for every member of `shop`."""
    started = time.perf_counter()
    reference = _today()
    origin = reference - timedelta(days=3 * 365 + 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, extract(epoch FROM joined_at - %s)::bigint "
            "FROM members_member WHERE shop_id = %s ORDER BY id",
            [origin, shop.pk],
        )
        members, joined = array.array("q"), array.array("q")
        for member_id, seconds in cursor.fetchall():
            members.append(member_id)
            joined.append(max(0, seconds))
    count = len(members)
    entries = max(entries, count)
    counts = _entry_counts(random.Random(f"{seed}:counts"), count, entries)
    tables = {
        "accounts": PointsAccount._meta.db_table,
        "entries": PointsEntry._meta.db_table,
        "lots": PointsLot._meta.db_table,
        "consumptions": LotConsumption._meta.db_table,
    }
    stats: dict = {}
    data_dir = Path(__file__).resolve().parent / "data"
    data_dir.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="ledger-", dir=data_dir) as tmp,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        for name, value in BULK_SETTINGS.items():
            cursor.execute(f"SET LOCAL {name} = {value}")
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if cursor.fetchone()[0]:
            cursor.execute("SET LOCAL session_replication_role = replica")
        plan = _Plan(
            shop_id=shop.pk,
            members=members,
            joined=joined,
            counts=counts,
            origin=origin,
            reference=reference,
            first_account=_reserve_ids(cursor, tables["accounts"], count),
            first_entry=_reserve_ids(cursor, tables["entries"], entries),
            # Lots are at most the entries; consumptions a few per debit.
            first_lot=_reserve_ids(cursor, tables["lots"], entries),
            first_consumption=_reserve_ids(cursor, tables["consumptions"], entries),
            seed=seed,
            marker=marker(entries, seed),
        )
        rebuild = []
        for table in tables.values():
            if _should_rebuild(cursor, table, entries, "auto"):
                rebuild += _secondary_indexes(cursor, table)
        for _name, drop, _create in rebuild:
            cursor.execute(drop)
        paths = {
            name: Path(tmp) / f"{name}.tsv" for name in tables if name != "entries"
        }
        files = {name: path.open("w") for name, path in paths.items()}
        try:
            _copy(
                cursor,
                tables["entries"],
                ENTRY_COLUMNS,
                _rows(plan, files, stats),
            )
        finally:
            for file in files.values():
                file.close()
        for name, columns in (
            ("accounts", ACCOUNT_COLUMNS),
            ("lots", LOT_COLUMNS),
            ("consumptions", CONSUMPTION_COLUMNS),
        ):
            with paths[name].open() as source:
                cursor.copy_expert(
                    f"COPY {tables[name]} ({', '.join(columns)}) FROM STDIN",
                    source,
                    1 << 20,
                )
        for _name, _drop, create in rebuild:
            cursor.execute(create)
        for name in (*BULK_SETTINGS, "session_replication_role"):
            cursor.execute(f"SET LOCAL {name} TO DEFAULT")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables.values())}")
    return Ledger(
        entries=stats["entries"],
        reference=reference,
        accounts=stats["accounts"],
        lots=stats["lots"],
        consumptions=stats["consumptions"],
        due_lots=stats["due"],
        seconds=time.perf_counter() - started,
    )


def check_invariants(shop) -> tuple[int, int]:
    """(accounts checked, accounts breaking an invariant): balance equals the
    sum of entries and the sum of open lots' remaining, on every account."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*), count(*) FILTER (
                WHERE a.balance + a.pending <> coalesce(e.total, 0)
                   OR a.balance + a.pending <> coalesce(l.total, 0))
            FROM points_pointsaccount a
            LEFT JOIN (SELECT account_id, sum(points) total FROM points_pointsentry
                       WHERE shop_id = %(shop)s GROUP BY account_id) e
              ON e.account_id = a.id
            LEFT JOIN (SELECT account_id, sum(remaining) total FROM points_pointslot
                       WHERE shop_id = %(shop)s AND remaining > 0 GROUP BY account_id) l
              ON l.account_id = a.id
            WHERE a.shop_id = %(shop)s
            """,
            {"shop": shop.pk},
        )
        return cursor.fetchone()
