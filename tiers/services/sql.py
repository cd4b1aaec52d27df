# SQL text is built from model metadata and constants; every value is a
# parameter.
# ruff: noqa: S608
"""The set-based SQL shared by recalculation, rule-change previews and period
ends (PostgreSQL).

Every statement names the shop in each table it reads or writes (raw SQL is
outside the tenancy guard). The ladder travels as a VALUES list, so no
statement joins the tiers table, and the qualified rank is one CASE over the
thresholds, highest rank first.

`apply_moves` is the one writer: given a `calc` CTE (one row per member to
look at: current and new rank, figures, and which period fields to set), ONE
statement updates the members' tier rows (only where the tier is still the one
read, so a purchase committed meanwhile is never overwritten), inserts rows
for members moving off the entry tier, inserts a TierChange for each member
who moved (from the RETURNING rows) and ONE internal `tiers.moved` outbox
event naming those changes; nobody else is written. Run by a task (outside a
transaction), that statement runs on two connections at once, each over half
of the movers.

The `tier.changed` event of each move is written by the consumer of
`tiers.moved` (`emit_tier_changes`), in the worker that processes the outbox,
exactly once (the outbox's guard): writing a third of a million events was
two fifths of a whole-shop recalculation, and webhooks go out after the
commit in any case.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timedelta
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from members.models import Member, Purchase
from shops.db import MAX_ID, id_ranges, on_own_connections
from shops.models import OutboxEvent
from shops.services.events.outbox import kick_relay
from tiers.models import Basis, MemberTier, Tier, TierChange

from .events import TIER_CHANGED, TIERS_MOVED
from .figures import ORDER_STATUSES, SPEND_STATUSES

PURCHASES = Purchase._meta.db_table
MEMBERS = Member._meta.db_table
MEMBER_TIERS = MemberTier._meta.db_table
CHANGES = TierChange._meta.db_table
TIERS = Tier._meta.db_table
OUTBOX = OutboxEvent._meta.db_table

SPEND_IN = "(" + ", ".join(f"'{s}'" for s in SPEND_STATUSES) + ")"
ORDERS_IN = "(" + ", ".join(f"'{s}'" for s in ORDER_STATUSES) + ")"


def ladder_cte(ladder, params: dict, name: str = "ladder", detail=None) -> str:
    """`name(id, rank, min_spend, min_orders, tname, detail)` as VALUES;
    unsaved tiers (a proposal) get no id. `detail` is what a TierChange to it
    records besides the figures (built once here rather than once per
    member)."""
    rows = []
    for i, tier in enumerate(ladder):
        key = f"{name}_{i}"
        params[f"{key}_id"] = tier.pk
        params[f"{key}_rank"] = int(tier.rank)
        params[f"{key}_spend"] = tier.min_spend
        params[f"{key}_orders"] = int(tier.min_orders)
        params[f"{key}_name"] = tier.name
        params[f"{key}_detail"] = json.dumps(
            {
                **(detail or {}),
                "min_spend": f"{tier.min_spend:.2f}",
                "min_orders": int(tier.min_orders),
            }
        )
        rows.append(
            f"(%({key}_id)s::bigint, %({key}_rank)s::int, %({key}_spend)s::numeric, "
            f"%({key}_orders)s::bigint, %({key}_name)s::text, "
            f"%({key}_detail)s::jsonb)"
        )
    columns = "id, rank, min_spend, min_orders, tname, detail"
    return f"{name}({columns}) AS (VALUES {', '.join(rows)})"


def qualified_rank(ladder, basis: str, spend: str, orders: str, params: dict) -> str:
    """SQL for the rank of the highest tier met by `spend` / `orders` (column
    expressions); the entry rank when none is."""
    entry = min(int(t.rank) for t in ladder)
    whens = []
    for i, tier in enumerate(sorted(ladder, key=lambda t: -t.rank)):
        if int(tier.rank) == entry:
            continue
        ps, po = f"q{i}_spend", f"q{i}_orders"
        params[ps], params[po] = tier.min_spend, int(tier.min_orders)
        spend_ok = f"{spend} >= %({ps})s::numeric"
        orders_ok = f"{orders} >= %({po})s"
        cond = {
            Basis.SPEND: spend_ok,
            Basis.ORDERS: orders_ok,
            Basis.EITHER: f"({spend_ok} OR {orders_ok})",
            Basis.BOTH: f"({spend_ok} AND {orders_ok})",
        }[basis]
        whens.append(f"WHEN {cond} THEN {int(tier.rank)}")
    if not whens:
        return str(entry)
    return f"(CASE {' '.join(whens)} ELSE {entry} END)"


def figures_aggregate(*, lower: str | None, upper: str | None) -> str:
    """The shop's per-member figures over a window, one GROUP BY (the bare
    aggregate the benchmark compares with). `lower` / `upper` are parameter
    names of aware datetimes (or None)."""
    bounds = ""
    if lower:
        bounds += f" AND p.occurred_at >= %({lower})s"
    if upper:
        bounds += f" AND p.occurred_at < %({upper})s"
    return (
        "SELECT p.member_id, SUM(p.paid_amount - p.refunded_amount) AS spend, "
        f"COUNT(*) FILTER (WHERE p.status IN {ORDERS_IN}) AS orders "
        f"FROM {PURCHASES} p WHERE p.shop_id = %(shop)s AND p.status IN {SPEND_IN}"
        f"{bounds} GROUP BY p.member_id"
    )


def figures_lateral(row: str, lower: str, upper: str) -> str:
    """One member's figures between two SQL expressions (aware datetimes; a
    NULL lower bound is no bound), on the (shop, member, -occurred_at) index."""
    return (
        "LEFT JOIN LATERAL (SELECT COALESCE(SUM(p.paid_amount - p.refunded_amount), 0)"
        f" AS spend, COUNT(*) FILTER (WHERE p.status IN {ORDERS_IN}) AS orders "
        f"FROM {PURCHASES} p WHERE p.shop_id = %(shop)s"
        f" AND p.member_id = {row}.member_id"
        f" AND p.status IN {SPEND_IN} AND ({lower} IS NULL OR p.occurred_at >= {lower})"
        f" AND p.occurred_at < {upper}) f ON TRUE"
    )


def local_midnight(day_sql: str) -> str:
    """An aware datetime: the start of the day `day_sql` in the shop's zone."""
    return f"(({day_sql})::timestamp AT TIME ZONE %(tz)s)"


# The columns a `calc` CTE provides (see the module docstring):
#   member_id, has_row, old_tier_id, old_rank, new_rank, spend, orders,
#   set_period, period_ends_on, set_start, start_rank,
#   set_grace, grace_until, grace_rank, clear_manual
_APPLY = f"""
, upd AS (
    UPDATE {MEMBER_TIERS} mt SET
        tier_id = nt.id,
        since = CASE WHEN c.new_rank <> c.old_rank THEN %(now)s ELSE mt.since END,
        period_ends_on = CASE WHEN c.set_period THEN c.period_ends_on
                              ELSE mt.period_ends_on END,
        period_start_tier_id = CASE WHEN c.set_start THEN st.id
                                    ELSE mt.period_start_tier_id END,
        grace_until = CASE WHEN c.set_grace THEN c.grace_until ELSE mt.grace_until END,
        grace_target_id = CASE WHEN c.set_grace THEN gt.id ELSE mt.grace_target_id END,
        manual_tier_id = CASE WHEN c.clear_manual THEN NULL ELSE mt.manual_tier_id END,
        manual_mode = CASE WHEN c.clear_manual THEN '' ELSE mt.manual_mode END,
        manual_until = CASE WHEN c.clear_manual THEN NULL ELSE mt.manual_until END,
        manual_reason = CASE WHEN c.clear_manual THEN '' ELSE mt.manual_reason END,
        manual_by_id = CASE WHEN c.clear_manual THEN NULL ELSE mt.manual_by_id END,
        manual_at = CASE WHEN c.clear_manual THEN NULL ELSE mt.manual_at END,
        updated_at = %(now)s
    FROM calc c
        JOIN ladder nt ON nt.rank = c.new_rank
        LEFT JOIN ladder st ON st.rank = c.start_rank
        LEFT JOIN ladder gt ON gt.rank = c.grace_rank
    WHERE mt.shop_id = %(shop)s AND mt.member_id = c.member_id AND c.has_row
        AND mt.tier_id = c.old_tier_id
        AND (c.new_rank <> c.old_rank OR c.set_period OR c.set_start OR c.set_grace
             OR c.clear_manual)
    RETURNING mt.member_id, c.old_tier_id AS from_id, nt.id AS to_id,
        c.old_rank, c.new_rank, c.spend, c.orders
), ins AS (
    INSERT INTO {MEMBER_TIERS} (shop_id, member_id, tier_id, since,
        period_start_tier_id, period_ends_on, grace_until, grace_target_id,
        manual_tier_id, manual_mode, manual_until, manual_reason, manual_by_id,
        manual_at, updated_at)
    SELECT %(shop)s, c.member_id, nt.id, %(now)s, NULL,
        CASE WHEN c.set_period THEN c.period_ends_on END, NULL, NULL,
        NULL, '', NULL, '', NULL, NULL, %(now)s
    FROM calc c JOIN ladder nt ON nt.rank = c.new_rank
    WHERE NOT c.has_row AND c.new_rank <> c.old_rank
    ON CONFLICT (shop_id, member_id) DO NOTHING
    RETURNING member_id, tier_id
), moved AS (
    SELECT member_id, from_id, to_id, old_rank, new_rank, spend, orders
    FROM upd WHERE new_rank <> old_rank
    UNION ALL
    SELECT i.member_id, %(entry_id)s::bigint, i.tier_id, c.old_rank, c.new_rank,
        c.spend, c.orders
    FROM ins i JOIN calc c ON c.member_id = i.member_id
), ch AS (
    INSERT INTO {CHANGES} (shop_id, member_id, from_tier_id, to_tier_id, reason,
        detail, created_at, acting_user_id, actor_label)
    SELECT %(shop)s, m.member_id, m.from_id, m.to_id, %(reason)s,
        jsonb_build_object('spend', (m.spend)::numeric(14, 2)::text,
                           'orders', m.orders) || nt.detail,
        %(now)s, %(user)s, %(label)s
    FROM moved m JOIN ladder nt ON nt.id = m.to_id
    ORDER BY m.member_id
    RETURNING id, member_id, from_tier_id, to_tier_id
), ev AS (
    INSERT INTO {OUTBOX} (shop_id, topic, payload, created_at)
    SELECT %(shop)s, %(moved_topic)s, jsonb_build_object(
            'first', min(ch.id), 'last', max(ch.id), 'count', count(*),
            'low', %(low)s::bigint, 'high', %(high)s::bigint,
            'reason', %(reason)s::text, 'at', %(now_iso)s::text),
        %(now)s
    FROM ch HAVING count(*) > 0
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM moved WHERE new_rank > old_rank),
       (SELECT COUNT(*) FROM moved WHERE new_rank < old_rank),
       (SELECT COUNT(*) FROM ev)
"""


def apply_moves(
    *,
    shop,
    ladder,
    policy,
    ctes: str,
    params: dict,
    reason: str,
    window: str,
    acting_user=None,
    actor_label: str = "",
    workers: int | None = None,
) -> tuple[int, int]:
    """Run `WITH ladder, <ctes ending with calc> <the writers>`; returns
    (members up, members down). Inside a transaction: in it, on this
    connection. Outside one (the tasks): the movers are written in `workers`
    parts by member id at once, each part its own transaction on a
    connection of its own (parts hold disjoint members; a part that fails
    leaves its members to the next run, which moves only who still needs
    it)."""
    now = timezone.now()
    params = {
        **params,
        "shop": shop.pk,
        "now": now,
        "now_iso": now.isoformat(),
        "reason": str(reason),
        "window": window,
        "basis": policy.basis,
        "user": acting_user.pk if acting_user and acting_user.pk else None,
        "label": (actor_label or "")[:100],
        "moved_topic": TIERS_MOVED,
        "entry_id": ladder[0].pk,
    }
    ladder_sql = ladder_cte(
        ladder, params, detail={"window": window, "basis": policy.basis}
    )
    # The reading half first, on its own: a statement that writes (as the
    # second does) never gets a parallel plan, and the aggregate over the
    # purchases is most of the reading. In member order, so the writers fill
    # the member-led indexes in order.
    compute = f"WITH {ladder_sql}, {ctes} SELECT * FROM calc ORDER BY member_id"
    workers = WORKERS if workers is None else workers
    if connection.in_atomic_block or workers < 2:
        return _apply_here(compute, ladder_sql, params)
    return _apply_in_parts(compute, ladder_sql, params, workers)


def _apply_here(compute: str, ladder_sql: str, params: dict) -> tuple[int, int]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(f"DROP TABLE IF EXISTS {CALC}")
        cursor.execute(f"CREATE TEMP TABLE {CALC} AS {compute}", params)
        everyone = {**params, "low": 0, "high": MAX_ID}
        up, down = _write(cursor, ladder_sql, CALC, everyone)
        cursor.execute(f"DROP TABLE {CALC}")
    return up, down


def _apply_in_parts(
    compute: str, ladder_sql: str, params: dict, workers: int
) -> tuple[int, int]:
    # A table every connection sees (a temporary one is its connection's
    # own); unlogged, as it lives for this run only. Its name holds when it
    # was made, so that one left by a worker killed mid-run is dropped later
    # (`drop_leftover_tables`).
    table = f"{CALC}_{int(time.time())}_{uuid.uuid4().hex[:12]}"
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute(f"CREATE UNLOGGED TABLE {table} AS {compute}", params)
            cursor.execute(_PARTS_SQL.format(table=table), {"parts": workers})
            lows = [row[0] for row in cursor.fetchall()]
        parts = [{**params, "low": low, "high": high} for low, high in id_ranges(lows)]
        moves = on_own_connections(
            partial(_write_part, ladder_sql, table), parts, workers=workers
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    return sum(up for up, _ in moves), sum(down for _, down in moves)


def _write_part(ladder_sql: str, table: str, params: dict) -> tuple[int, int]:
    """One part's movers, in its own transaction (on a worker's connection)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        part = (
            f"(SELECT * FROM {table} "
            "WHERE member_id >= %(low)s AND member_id < %(high)s)"
        )
        return _write(cursor, ladder_sql, part, params)


def _write(cursor, ladder_sql: str, calc: str, params: dict) -> tuple[int, int]:
    statement = f"WITH {ladder_sql}, calc AS (SELECT * FROM {calc} c) {_APPLY}"
    cursor.execute(statement, params)
    up, down, events = cursor.fetchone()
    if events:
        transaction.on_commit(kick_relay, robust=True)
    return int(up), int(down)


CALC = "tiers_recalc_calc"
_LEFTOVER = re.compile(rf"^{CALC}_(?:(\d+)_)?[0-9a-f]+$")
# Far longer than a recalculation may run (its task's limit is 25 minutes).
LEFTOVER_AFTER = timedelta(hours=2)


def drop_leftover_tables(*, older_than: timedelta = LEFTOVER_AFTER) -> list[str]:
    """Drop the work tables of recalculations that never reached their
    `finally` (the worker was killed): a million rows each, kept for good
    otherwise. A name without its time is from before names held one."""
    if connection.vendor != "postgresql":
        return []
    cutoff = time.time() - older_than.total_seconds()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = current_schema()::regnamespace "
            "AND relname LIKE %s",
            [CALC.replace("_", r"\_") + r"\_%"],
        )
        names = [row[0] for row in cursor.fetchall()]
        dropped = []
        for name in names:
            match = _LEFTOVER.match(name)
            if match and (match.group(1) is None or int(match.group(1)) < cutoff):
                cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
                dropped.append(name)
    return dropped


# Connections writing movers at once: one per CPU of the database server is
# the most that helps (measured on 2 CPUs in bench/bench_tiers.py).
WORKERS = 2
# The first member id of each of `parts` parts of the movers, equal in size.
_PARTS_SQL = """
SELECT min(member_id) FROM (
    SELECT member_id, ntile(%(parts)s) OVER (ORDER BY member_id) AS part
      FROM {table}
) AS numbered
GROUP BY part ORDER BY 1
"""


# The `tier.changed` events of one `tiers.moved` event's changes, payloads as
# tiers.services.events builds them. The changes are found by id range, and
# by their reason and moment, which moves by purchases in between lack, and
# by the statement's members: the parts of one run share the moment and
# commit at once, so their ids interleave.
_EXPAND = f"""
INSERT INTO {OUTBOX} (shop_id, topic, payload, created_at)
SELECT ch.shop_id, %(topic)s, jsonb_build_object(
        'member', jsonb_build_object('id', m.id, 'member_code', m.member_code,
                                     'external_id', m.external_id),
        'change_id', ch.id,
        'from_tier', CASE WHEN f.id IS NOT NULL THEN
            jsonb_build_object('id', f.id, 'name', f.name, 'rank', f.rank) END,
        'to_tier', jsonb_build_object('id', t.id, 'name', t.name, 'rank', t.rank),
        'reason', ch.reason),
    ch.created_at
  FROM {CHANGES} ch
  JOIN {MEMBERS} m ON m.shop_id = ch.shop_id AND m.id = ch.member_id
  JOIN {TIERS} t ON t.shop_id = ch.shop_id AND t.id = ch.to_tier_id
  LEFT JOIN {TIERS} f ON f.shop_id = ch.shop_id AND f.id = ch.from_tier_id
 WHERE ch.shop_id = %(shop)s AND ch.id BETWEEN %(first)s AND %(last)s
   AND ch.member_id >= %(low)s AND ch.member_id < %(high)s
   AND ch.reason = %(reason)s AND ch.created_at = %(at)s
 ORDER BY ch.id
"""


def emit_tier_changes(event) -> int:
    """Consumer of `tiers.moved`: write the `tier.changed` event of each
    change it names; returns how many. Unlike most consumers it does its work
    in the consumer's transaction rather than queueing it: one statement,
    however many moves (8 s for a third of a million), and done under the
    event's row lock it is done once."""
    payload = event.payload
    with connection.cursor() as cursor:
        cursor.execute(
            _EXPAND,
            {
                "topic": TIER_CHANGED,
                "shop": event.shop_id,
                "first": int(payload["first"]),
                "last": int(payload["last"]),
                "low": int(payload["low"]),
                "high": int(payload["high"]),
                "reason": payload["reason"],
                "at": datetime.fromisoformat(payload["at"]),
            },
        )
        written = cursor.rowcount
    if written:
        transaction.on_commit(kick_relay, robust=True)
    return written
