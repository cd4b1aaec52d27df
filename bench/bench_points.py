"""Points at scale: balance reads, expiring a million lots, earning on purchase.

1. Data: the members benchmarks' shop (1M members, 10M purchases at full size)
   with a ladder, policies and a purchase earning rule, and a ledger of 10M
   entries made with COPY by `points_data` (one account per member; about 1M
   lots due). Both reused with --keep-data. The ledger's invariants are checked
   on every account (balance = sum of entries = sum of open lots' remaining).
2. Balance read: `GET /api/v1/members/{id}/points` in-process and
   `points.services.ledger.account_for`, beside a bare primary-key SELECT of
   the account row. Target p99 < 5 ms.
3. Expiry: `points.services.expiry.expire_due_lots` over every due lot (about
   1M at full size), beside a bare `UPDATE ... SET remaining = 0` of the same
   lots before and after it. Twice: in a transaction rolled back after (one
   connection, foreign keys checked at each statement as a commit would), and
   as the daily task runs it (outside a transaction: chunks committed on
   `expiry.WORKERS` connections at once), then undone from a snapshot, so the
   kept ledger stays as it was. Target < 60 s, set-based.
4. Earning's added time to completing a purchase: the settlement with and
   without points earning (see `bench_tiers.bench_settlement`).
"""

from __future__ import annotations

import itertools
import os
import random
import time

from bench_tiers import bench_settlement
from django.db import connection, transaction
from django.test import Client
from harness import (
    compare,
    env_int,
    measure_interleaved,
    reproduce,
    skip_unless_postgres,
)
from members_data import dataset
from points_data import (
    check_invariants,
    counting_statements,
    ensure_ledger,
    ensure_programme,
    ensure_tiers_settled,
    is_placeholder,
    no_relay,
)

from members.models import Member
from shops.models import ApiKeyScope
from shops.services import tenants

READS = env_int("BENCH_BALANCE_READS", 2000)
BARE_LABEL = "bare UPDATE of the due lots, remaining = 0"


def sample_accounts(shop, count: int) -> list[tuple[int, int]]:
    """(account id, member id) of random accounts, without sorting them all."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, member_id FROM points_pointsaccount TABLESAMPLE SYSTEM (5) "
            "WHERE shop_id = %s LIMIT %s",
            [shop.pk, count],
        )
        rows = cursor.fetchall()
    random.Random(4).shuffle(rows)
    return rows


def bench_balance(shop) -> None:
    from points.services.ledger import account_for

    rows = sample_accounts(shop, 1000)
    cycle = itertools.cycle(rows)
    current = {}
    _key, plain = tenants.create_api_key(
        shop=shop, name="bench points", scope=ApiKeyScope.READ
    )
    client = Client()
    headers = {"authorization": f"Api-Key {plain}"}

    def bare():
        current["row"] = next(cycle)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT * FROM points_pointsaccount WHERE id = %s", [current["row"][0]]
            )
            return cursor.fetchone()

    def service():
        member = Member(pk=current["row"][1], shop_id=shop.pk)
        return account_for(member)

    def api():
        response = client.get(
            f"/api/v1/members/{current['row'][1]}/points", headers=headers
        )
        assert response.status_code == 200, response.content[:300]

    contenders = {
        "bare SQL: the account row by primary key": bare,
        "points.services.ledger.account_for()": service,
    }
    probe = client.get(f"/api/v1/members/{rows[0][1]}/points", headers=headers)
    if probe.status_code == 200:
        contenders["GET /api/v1/members/{id}/points (WSGI)"] = api
    else:
        print(f"  GET /api/v1/members/{{id}}/points answered {probe.status_code}")
    timings = measure_interleaved(contenders, n=READS)
    compare(
        f"Balance read, {len(rows):,} random accounts (target p99 < 5 ms)", *timings
    )


def due_lots(shop, now) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(remaining), 0) FROM points_pointslot "
            "WHERE shop_id = %s AND remaining > 0 AND expires_at <= %s",
            [shop.pk, now],
        )
        return cursor.fetchone()


def bare_expiry(shop, now) -> tuple[float, int]:
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            "UPDATE points_pointslot SET remaining = 0 "
            "WHERE shop_id = %s AND remaining > 0 AND expires_at <= %s",
            [shop.pk, now],
        )
        took = time.perf_counter() - started
        rows = cursor.rowcount
        transaction.set_rollback(True)
    return took, rows


def bench_expiry(shop, ledger) -> None:
    try:
        from points.services.expiry import WORKERS
    except ImportError:
        print("\n  expiry: points.services.expiry.expire_due_lots is not there yet")
        return
    now = ledger.reference
    count, points = due_lots(shop, now)
    print(
        f"\nExpiring {count:,} due lots ({points:,} points) as of "
        f"{now:%Y-%m-%d %H:%M} UTC; the bare UPDATEs rolled back, the service "
        "once rolled back and once committed and undone after"
    )
    before, rows = bare_expiry(shop, now)
    print(f"  {BARE_LABEL + ' (before)':58} {before:9.2f} s   {rows:,} lots")
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Django's foreign keys are checked at commit: at each statement
            # here, so the time includes them although nothing is committed.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        took = timed_expiry(
            shop, now, points, "expire_due_lots(), one connection, rolled back"
        )
        transaction.set_rollback(True)
    vacuum_after_rollbacks()
    snapshot = take_snapshot(shop, now)
    try:
        took_task = timed_expiry(
            shop,
            now,
            points,
            f"expire_due_lots(), as the task: {WORKERS} connections, committed",
        )
    finally:
        restore_snapshot(shop, snapshot)
    after, _ = bare_expiry(shop, now)
    print(f"  {BARE_LABEL + ' (after)':58} {after:9.2f} s")
    baseline = (before + after) / 2
    print(
        f"  ratio: {took / baseline:.2f}x the bare UPDATE on one connection, "
        f"{took_task / baseline:.2f}x as the task runs it "
        "(target < 60 s for 1M lots)"
    )


def account_totals(shop) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(expired), 0), coalesce(sum(balance), 0) "
            "FROM points_pointsaccount WHERE shop_id = %s",
            [shop.pk],
        )
        return cursor.fetchone()


def timed_expiry(shop, now, points: int, label: str) -> float:
    from points.services.expiry import expire_due_lots

    expired_before, balance_before = account_totals(shop)
    started = time.perf_counter()
    with counting_statements() as statements:
        result = expire_due_lots(shop=shop, now=now)
    took = time.perf_counter() - started
    left, _ = due_lots(shop, now)
    expired_after, balance_after = account_totals(shop)
    print(
        f"  {label:58} {took:9.2f} s   returned {result!r} in "
        f"{statements[0]} SQL statements on this connection (chunks on "
        "workers' connections not counted); "
        f"{left:,} due lots left; accounts' expired "
        f"+{expired_after - expired_before:,}, "
        f"balances {balance_after - balance_before:+,} (due points {points:,})"
    )
    return took


SNAPSHOT = "bench_expiry_accounts"


def take_snapshot(shop, now) -> tuple[int, int, int]:
    """The due lots' accounts as they are, and the last entry, consumption and
    event ids: what `restore_snapshot` needs to undo a committed expiry."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SNAPSHOT}")
        cursor.execute(
            f"CREATE UNLOGGED TABLE {SNAPSHOT} AS "  # noqa: S608
            "SELECT id, balance, pending, expired, updated_at "
            "FROM points_pointsaccount WHERE shop_id = %(shop)s AND id IN ("
            "SELECT account_id FROM points_pointslot WHERE shop_id = %(shop)s "
            "AND remaining > 0 AND expires_at <= %(now)s)",
            {"shop": shop.pk, "now": now},
        )
        cursor.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM points_pointsentry),"
            " (SELECT coalesce(max(id), 0) FROM points_lotconsumption),"
            " (SELECT coalesce(max(id), 0) FROM shops_outboxevent)"
        )
        return cursor.fetchone()


def restore_snapshot(shop, snapshot: tuple[int, int, int]) -> None:
    """Undo a committed expiry: each lot gets back what its expiry
    consumption took (all it had), the rows written after the snapshot go,
    the accounts get their figures back. Then the invariants are checked."""
    entry, consumption, event = snapshot
    params = {"shop": shop.pk, "entry": entry, "cons": consumption, "event": event}
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        # No foreign key checks while undoing (the bench connects as a
        # superuser): each deleted entry's check would look for lots and
        # consumptions by entry alone, which no index leads with (they are
        # led by the shop), a scan per row.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE points_pointslot l SET remaining = c.points "
            "FROM points_lotconsumption c WHERE c.shop_id = %(shop)s "
            "AND c.id > %(cons)s AND l.shop_id = %(shop)s AND l.id = c.lot_id",
            params,
        )
        cursor.execute(
            "DELETE FROM points_lotconsumption "
            "WHERE shop_id = %(shop)s AND id > %(cons)s",
            params,
        )
        cursor.execute(
            "DELETE FROM points_pointsentry "
            "WHERE shop_id = %(shop)s AND id > %(entry)s",
            params,
        )
        cursor.execute(
            "DELETE FROM shops_outboxevent WHERE shop_id = %(shop)s AND id > %(event)s",
            params,
        )
        cursor.execute(
            "UPDATE points_pointsaccount a SET balance = s.balance, "  # noqa: S608
            "pending = s.pending, expired = s.expired, updated_at = s.updated_at "
            f"FROM {SNAPSHOT} s WHERE a.shop_id = %(shop)s AND a.id = s.id",
            params,
        )
        cursor.execute(f"DROP TABLE {SNAPSHOT}")
    vacuum_after_rollbacks()
    checked, broken = check_invariants(shop)
    print(
        f"  (undone from the snapshot in {time.perf_counter() - started:.1f} s: "
        f"{checked:,} accounts, {broken:,} broken)"
    )


# BENCH_POINTS_PARTS=balance,expiry (default: every part).
PARTS = os.environ.get("BENCH_POINTS_PARTS", "balance,expiry,settlement").split(",")


def vacuum_after_rollbacks() -> None:
    """The expiry runs were rolled back: vacuum the tables they wrote, so the
    benchmarks after this one do not pay for a million dead row versions."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in (
            "points_pointslot",
            "points_pointsaccount",
            "points_pointsentry",
            "points_lotconsumption",
            "shops_outboxevent",
        ):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    took = time.perf_counter() - started
    print(f"  (vacuumed after the rolled-back runs: {took:.1f} s)")


def main() -> None:
    if skip_unless_postgres("the points benchmark (data made with COPY)"):
        return
    with dataset() as shop, no_relay() as kicks:
        ensure_programme(shop)
        ledger = ensure_ledger(shop)
        started = time.perf_counter()
        checked, broken = check_invariants(shop)
        print(
            f"  invariants (balance = sum of entries = sum of open lots): "
            f"{checked:,} accounts, {broken:,} broken "
            f"({time.perf_counter() - started:.1f} s)"
        )
        ensure_tiers_settled(shop)
        if "balance" in PARTS:
            bench_balance(shop)
        from points.services.earning import earn_for_purchase

        if is_placeholder(earn_for_purchase):
            print("\n  earn_for_purchase is still the placeholder: timed anyway")
        # The per-purchase figures before the expiry: after its million rows
        # written and undone, PostgreSQL flushes them for minutes, and
        # recording a purchase took twice as long then (9.3 against 4.9 ms).
        if "settlement" in PARTS:
            bench_settlement(
                shop,
                prefix="bp",
                title="Recording a completed purchase, rolled back (points "
                "earning's added time)",
            )
        if "expiry" in PARTS:
            bench_expiry(shop, ledger)
        print(f"  outbox relay runs asked for (not run in-process): {len(kicks):,}")
        reproduce("bench_points")
