"""`POST /api/v1/purchases` (completed at once) under gunicorn at 8 concurrent
clients, beside pgbench running the SAME SQL statements at 8 clients.

1. One request runs in-process with its statements captured (after a warm-up,
   so it is the steady state); they become a pgbench script
   (`bench/pgbench/purchase.sql`, rewritten each run: a change of the hot
   path's SQL shows in `git diff`), with the member and the order number as
   pgbench variables.
2. pgbench runs that script for T seconds at 8 clients: the database's floor
   for exactly these round trips.
3. gunicorn (DEBUG=false, Redis broker DB 12 so the outbox hand-over really
   publishes, Redis cache for the throttle) serves the same request for T
   seconds to wrk at 8 connections, each request a new order of a random
   member of the bench shop.

Targets (issue 3): >= 300 requests/s, p99 < 60 ms, >= 0.12 of pgbench's TPS.
Needs PostgreSQL, pgbench and wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from unittest import mock

from django.db import connection
from django.test import Client
from harness import env_int, reproduce, scale, skip_unless_postgres, timing_from_ms
from http_load import (
    GUNICORN_ARGS,
    command_text,
    flush_bench_redis,
    gunicorn,
    have_wrk,
    run_wrk,
)
from members_data import dataset, write_key
from pgbench_capture import (
    ID_FLOOR,
    capture,
    command_line,
    run_pgbench,
    separate_id_ranges,
    to_pgbench,
)
from points_data import (
    ensure_ledger,
    ensure_programme,
    ensure_tiers_settled,
    no_relay,
)

from members.models import Member, Purchase
from shops.models import Store

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "pgbench" / "purchase.sql"
CLIENTS = env_int("BENCH_HTTP_CLIENTS", 8)
LINES = env_int("BENCH_PURCHASE_LINES", 0)
SAMPLE = 20_000
ENDPOINT = "/api/v1/purchases"


def seconds() -> int:
    return env_int("BENCH_HTTP_SECONDS", 20 if scale() >= 1 else 8)


def purchase_body(member, order, store) -> dict:
    """The request a till sends: a completed purchase of one member."""
    body = {
        "member_id": member,
        "external_order_id": order,
        "amount": "128.00",
        "discount": "8.00",
        "store_id": store,
        "channel": "store",
    }
    if LINES:
        body["lines"] = [
            {
                "sku": f"TEA-{n}",
                "name": "Oolong 100 g",
                "quantity": "1",
                "unit_price": "60.00",
            }
            for n in range(LINES)
        ]
    return body


WARM_UPS = 3
CAPTURE_TRIES = 10


def capture_request(plain: str, member_ids: list[int], store_id: int, run: str):
    """Run the request in-process a few times, then capture one whose member
    stays in their tier (a move writes rows that pgbench could not replay:
    the member's tier row is unique)."""
    client = Client()
    handed_over = []
    # Asking the broker for a relay run sends no SQL; keep the statements
    # identical to gunicorn's (which queues it in Redis, for a worker) without
    # running the relay and its consumers eagerly in this process.
    with mock.patch(
        "shops.services.events.outbox.kick_relay",
        side_effect=lambda: handed_over.append(1) or True,
    ):
        for attempt in range(WARM_UPS + CAPTURE_TRIES):
            order = f"{run}-capture-{attempt}"
            member = member_ids[attempt]
            headers = {
                "authorization": f"Api-Key {plain}",
                "idempotency-key": order,
            }
            body = json.dumps(purchase_body(member, order, store_id))
            if attempt < WARM_UPS:
                response = client.post(
                    ENDPOINT, body, content_type="application/json", headers=headers
                )
                assert response.status_code == 201, response.content
                continue
            with capture() as recorded:
                response = client.post(
                    ENDPOINT, body, content_type="application/json", headers=headers
                )
            assert response.status_code == 201, response.content
            tier = response.json()["member"].get("tier") or {}
            if not tier.get("changed"):
                break
    variables = {member: ":member_id", order: "('pgb-' || :n)"}
    variables.update(derived_variables(recorded, variables))
    queries = [s for s in recorded if not isinstance(s, str)]
    return recorded, variables, len(queries), response, member


def derived_variables(recorded, variables: dict) -> dict:
    """Strings made from a value that changes per request (the order number,
    an id an INSERT returned) become pgbench expressions too, e.g. the points
    entry's idempotency key 'purchase:9000000000004' -> ('purchase:' ||
    :r5_id): as literals, every transaction after the first would collide.
    JSON payloads stay literal (no unique constraint reads them)."""
    known = {str(v): e for v, e in variables.items() if isinstance(v, str)}
    found: dict = {}
    for number, item in enumerate(recorded):
        if isinstance(item, str):
            continue
        for value in item.params:
            if (
                not isinstance(value, str)
                or value in variables
                or value[:1] in "{["
                or len(value) > 200
            ):
                continue
            for text, expr in known.items():
                if text in value:
                    head, _, tail = value.partition(text)
                    parts = [f"'{head}'" if head else "", expr]
                    parts.append(f"'{tail}'" if tail else "")
                    found[value] = "(" + " || ".join(p for p in parts if p) + ")"
                    break
        is_insert = item.sql.lstrip().upper().startswith("INSERT")
        if is_insert and item.returned and len(item.returned) == 1:
            for column, value in zip(item.columns, item.returned[0], strict=True):
                if column == "id" and isinstance(value, int) and value >= ID_FLOOR:
                    known[str(value)] = f":r{number}_id"
    return found


def account_variable(shop, member_id: int) -> dict:
    """The member's points account id as a pgbench expression of :member_id:
    the generated accounts follow the members' ids at a fixed distance."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(id - member_id), max(id - member_id) "
            "FROM points_pointsaccount WHERE shop_id = %s",
            [shop.pk],
        )
        low, high = cursor.fetchone()
        cursor.execute(
            "SELECT id FROM points_pointsaccount WHERE shop_id = %s AND member_id = %s",
            [shop.pk, member_id],
        )
        row = cursor.fetchone()
    if row is None or low != high:
        print("  warning: accounts are not at a fixed distance from members")
        return {}
    return {row[0]: f"(:member_id + {low})" if low else ":member_id"}


def last_entry_id(shop) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(id), 0) FROM points_pointsentry WHERE shop_id = %s",
            [shop.pk],
        )
        return cursor.fetchone()[0]


def repair_accounts(shop, after_entry: int) -> int:
    """pgbench replays the account UPDATE with the captured request's figures
    as literals: put every account it wrote to back to the sum of its entries
    (the ledger's invariant), so the kept data stay consistent."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE points_pointsaccount a
            SET balance = s.total - a.pending, lifetime_earned = s.earned,
                redeemed = s.redeemed
            FROM (
                SELECT account_id, sum(points) AS total,
                       coalesce(sum(points) FILTER (WHERE kind = 'earn'), 0)
                           AS earned,
                       coalesce(-sum(points) FILTER (WHERE kind = 'redeem'), 0)
                           AS redeemed
                FROM points_pointsentry
                WHERE shop_id = %(shop)s AND account_id IN (
                    SELECT account_id FROM points_pointsentry
                    WHERE shop_id = %(shop)s AND id > %(after)s)
                GROUP BY account_id
            ) s
            WHERE a.shop_id = %(shop)s AND a.id = s.account_id
            """,
            {"shop": shop.pk, "after": after_entry},
        )
        return cursor.rowcount


def checkpoint() -> None:
    """Write every dirty page out before a measured phase, so neither phase
    pays for the other's writes (pgbench's 20 s leave about a gigabyte of WAL
    behind: the checkpoint it forces would land in the middle of wrk's run)."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    connection.close()


def lua_script(plain: str, member_ids: list[int], store_id: int, run: str) -> str:
    template = json.dumps(purchase_body(987654321987, "ORDERPLACEHOLDER", store_id))
    template = template.replace("%", "%%")
    template = template.replace("987654321987", "%d").replace("ORDERPLACEHOLDER", "%s")
    assert template.index("%d") < template.index("%s")
    members = ",".join(str(m) for m in member_ids)
    return f"""
local members = {{{members}}}
local fmt = [==[{template}]==]
local run = "{run}"
local counter = 0
-- `tid` is a global set per thread by setup() below (no local: it would hide it)
local next_tid = 0
setup = function(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
end
init = function(args)
  math.randomseed(os.time() * 1000 + tid)
  run = run .. "t" .. tid
end
request = function()
  counter = counter + 1
  local order = run .. "-" .. counter
  local member = members[math.random(#members)]
  local headers = {{
    ["Authorization"] = "Api-Key {plain}",
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = order,
  }}
  return wrk.format("POST", "{ENDPOINT}", headers, string.format(fmt, member, order))
end
"""


def main() -> None:
    if skip_unless_postgres("POST /api/v1/purchases under gunicorn"):
        return
    if not have_wrk():
        print("  skipped: needs wrk (apt-get install wrk)")
        return
    # Relay runs the commits here ask for are a worker's job: counted, not run
    # in this process (gunicorn's requests hand them to Redis as in production).
    with dataset() as shop, no_relay():
        # The shop a purchase settles in: a tier ladder and policy, a purchase
        # earning rule, a ledger of 10M entries (every member has an account)
        # and members on the tiers their figures give them.
        ensure_programme(shop)
        ensure_ledger(shop)
        ensure_tiers_settled(shop)
        run = f"b{int(time.time())}"
        plain = write_key(shop)
        store_id = Store.objects.unscoped().filter(shop=shop).first().pk
        with connection.cursor() as cursor:
            # TABLESAMPLE: a random sample without sorting a million rows.
            cursor.execute(
                f"SELECT id FROM {Member._meta.db_table} TABLESAMPLE SYSTEM (5) "  # noqa: S608
                "WHERE shop_id = %s AND status = 'active' LIMIT %s",
                [shop.pk, SAMPLE],
            )
            member_ids = [row[0] for row in cursor.fetchall()]
        random.Random(1).shuffle(member_ids)
        print(
            f"  {len(member_ids):,} random members of {shop.slug}; "
            f"{LINES} purchase lines per request (BENCH_PURCHASE_LINES)"
        )

        separate_id_ranges()
        recorded, variables, count, _response, captured = capture_request(
            plain, member_ids, store_id, run
        )
        variables.update(account_variable(shop, captured))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT min(id), max(id), count(*) FROM {Member._meta.db_table} "  # noqa: S608
                "WHERE shop_id = %s",
                [shop.pk],
            )
            member_min, member_max, member_count = cursor.fetchone()
        if member_max - member_min + 1 != member_count:
            print("  warning: member ids have gaps; pgbench may pick missing ones")
        header = (
            "-- The SQL of one completed POST /api/v1/purchases, captured from the\n"
            "-- real request by bench/bench_purchases_http.py (rewritten each run).\n"
            "-- :member_id and :n vary per transaction.\n"
            "\\set n random(1, 1000000000000000)\n"
            "\\set member_id random(:member_min, :member_max)\n"
        )
        script = to_pgbench(recorded, variables=variables, header=header)
        SCRIPT.parent.mkdir(exist_ok=True)
        SCRIPT.write_text(script)
        shown = SCRIPT.relative_to(HERE.parent)
        print(f"  captured {count} statements per request -> {shown}")
        for line in script.splitlines():
            if not line.startswith("--"):
                print(f"    {line[:150]}")

        secs = seconds()
        defines = {"member_min": member_min, "member_max": member_max}
        connection.close()
        flush_bench_redis()
        entries_before = last_entry_id(shop)
        checkpoint()
        pg = run_pgbench(SCRIPT, clients=CLIENTS, seconds=secs, defines=defines)
        repaired = repair_accounts(shop, entries_before)
        connection.close()
        pg_timing = timing_from_ms("pgbench", pg.latencies_ms)

        lua = lua_script(plain, member_ids, store_id, run)
        checkpoint()
        with gunicorn() as base:
            # Warm-up: every worker's first requests import and connect.
            run_wrk(
                base,
                lua.replace(f'"{run}"', f'"{run}w"'),
                connections=CLIENTS,
                seconds=3,
            )
            web = run_wrk(base, lua, connections=CLIENTS, seconds=secs)
        flush_bench_redis()

        recorded_ok = (
            Purchase.objects.unscoped()
            .filter(
                shop=shop, external_order_id__startswith=f"{run}t", status="completed"
            )
            .count()
        )
        ratio = web.rps / pg.tps if pg.tps else float("nan")
        print(
            f"\nPOST {ENDPOINT} (completed) vs the same SQL in pgbench, "
            f"{CLIENTS} clients, {secs} s each"
        )
        print(f"  {'':34} {'per s':>9} {'p50':>10} {'p99':>10}")
        print(
            f"  {'pgbench, same statements':34} {pg.tps:9.1f} "
            f"{pg_timing.p50 * 1000:7.2f} ms {pg_timing.p99 * 1000:7.2f} ms"
        )
        print(
            f"  {'gunicorn + wrk':34} {web.rps:9.1f} {web.p50_ms:7.2f} ms "
            f"{web.p99_ms:7.2f} ms"
        )
        print(
            f"  ratio (requests/s over pgbench TPS): {ratio:.3f}  "
            f"(target >= 0.12); target >= 300 requests/s, p99 < 60 ms"
        )
        print("  pgbench's slowest statements (mean ms per transaction):")
        for ms, statement in pg.slowest():
            print(f"    {ms:7.3f}  {statement[:90]}")
        print(
            f"  {web.requests:,} responses, {web.non_2xx} not 2xx, "
            f"{web.socket_errors} socket errors; {recorded_ok:,} completed purchases "
            f"recorded; pgbench failed transactions: {pg.failed}"
        )
        print(
            f"  {repaired:,} points accounts pgbench wrote its captured figures to "
            "were put back to the sum of their entries"
        )
        print(f"  server: {GUNICORN_ARGS}")
        print(f"  reproduce server: {command_text()}")
        print(
            "  reproduce baseline: "
            + command_line(SCRIPT, clients=CLIENTS, seconds=secs, defines=defines)
        )
        reproduce("purchases_http")
        if os.environ.get("BENCH_VERBOSE"):
            print(pg.output, web.output)
