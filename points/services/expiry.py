"""Expiry of due lots: set-based (two statements per chunk of 50,000 accounts,
for any number of lots), and idempotent (a second run on the same day finds
nothing due). Outside a transaction (the daily task) the chunks run on two
connections at once: each chunk's statement keeps one CPU of PostgreSQL busy.

For every account with lots whose `expires_at` has passed and that still hold
points: ONE expire entry (the sum), a consumption per lot, the lots emptied,
the account's balance, pending and `expired` updated, and ONE `points.expired`
event per account (the same payload shape as every other ledger event).

Raw SQL (the ORM cannot write data-modifying CTEs): every statement names the
shop itself, as the tenancy guard does not see raw SQL.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from points import events
from points.models import (
    EntryKind,
    EntrySource,
    LotConsumption,
    PointsAccount,
    PointsEntry,
    PointsLot,
)
from points.services import ledger
from shops.db import id_ranges, on_own_connections
from shops.services.events.outbox import kick_relay

# Due lots are expired in chunks of accounts, each chunk in its own
# transaction: a chunk's rows fit in memory (no temporary files), its locks
# are short, and an interrupted run is finished by the next (idempotent).
CHUNK_ACCOUNTS = 50_000
# Enough memory for a chunk's hash tables and sorts without spilling to disk.
WORK_MEM = "64MB"
# Connections running chunks at once (chunks hold disjoint accounts, so they
# never wait for each other). One per CPU of the database server is the most
# that helps; measured on 2 CPUs in bench/bench_points.py.
WORKERS = 2

# The first account id of each chunk of accounts with due lots.
_CHUNKS_SQL = """
SELECT account_id FROM (
    SELECT account_id, row_number() OVER (ORDER BY account_id) AS n
      FROM (SELECT DISTINCT l.account_id FROM points_pointslot l
             WHERE l.shop_id = %(shop)s AND l.remaining > 0
               AND l.expires_at <= %(now)s) AS due
) AS numbered
WHERE (n - 1) %% %(chunk)s = 0
ORDER BY account_id
"""

# Lock the chunk's accounts first, in id order (as single writes lock their
# one account): the statement after it then reads the lots as they are once
# any concurrent debit of those accounts has committed.
_LOCK_SQL = """
SELECT count(*) FROM (
    SELECT a.id FROM points_pointsaccount a
     WHERE a.shop_id = %(shop)s AND a.id >= %(low)s AND a.id < %(high)s
       AND a.id IN (SELECT l.account_id FROM points_pointslot l
                     WHERE l.shop_id = %(shop)s AND l.remaining > 0
                       AND l.expires_at <= %(now)s
                       AND l.account_id >= %(low)s AND l.account_id < %(high)s)
     ORDER BY a.id
       FOR UPDATE OF a
) AS locked
"""

# Every write goes in id order (ORDER BY), so each table and index is walked
# page after page rather than at random: at a million due lots that is most
# of the difference.
_EXPIRE_SQL = """
WITH due AS MATERIALIZED (
    SELECT l.id, l.account_id, l.remaining, l.available_at
      FROM points_pointslot l
     WHERE l.shop_id = %(shop)s AND l.remaining > 0 AND l.expires_at <= %(now)s
       AND l.account_id >= %(low)s AND l.account_id < %(high)s
),
per_account AS MATERIALIZED (
    SELECT d.account_id,
           SUM(d.remaining) AS points,
           COALESCE(SUM(d.remaining) FILTER (WHERE d.available_at > %(now)s), 0)
               AS pending
      FROM due d
     GROUP BY d.account_id
),
entries AS (
    INSERT INTO points_pointsentry
        (shop_id, account_id, kind, points, total_after, source, reason,
         purchase_id, reference, idempotency_key, acting_user_id, actor_label,
         created_at)
    SELECT %(shop)s, p.account_id, 'expire', -p.points, a.balance - p.points,
           'expiry', %(reason)s, NULL, '', '', NULL, %(actor)s, %(now)s
      FROM per_account p
      JOIN points_pointsaccount a ON a.shop_id = %(shop)s AND a.id = p.account_id
     ORDER BY p.account_id
    RETURNING id, account_id, points, total_after
),
consumed AS (
    INSERT INTO points_lotconsumption (shop_id, entry_id, lot_id, points)
    SELECT %(shop)s, e.id, d.id, d.remaining
      FROM due d JOIN entries e ON e.account_id = d.account_id
     ORDER BY d.id
),
emptied AS (
    UPDATE points_pointslot l SET remaining = 0
     WHERE l.shop_id = %(shop)s AND l.id IN (SELECT d.id FROM due d)
),
accounts AS (
    UPDATE points_pointsaccount a
       SET balance = a.balance - p.points,
           expired = a.expired + p.points,
           pending = GREATEST(a.pending - p.pending, 0),
           updated_at = %(now)s
      FROM per_account p
     WHERE a.shop_id = %(shop)s AND a.id = p.account_id
    RETURNING a.id, a.member_id, a.balance, a.pending
),
outbox AS (
    INSERT INTO shops_outboxevent (shop_id, topic, payload, created_at)
    SELECT %(shop)s, %(topic)s, jsonb_build_object(
               'member', jsonb_build_object('id', m.id,
                                            'member_code', m.member_code),
               'entry', jsonb_build_object(
                   'id', e.id, 'kind', 'expire', 'points', e.points,
                   'total_after', e.total_after, 'source', 'expiry',
                   'reason', %(reason)s, 'reference', '', 'purchase_id', NULL,
                   'created_at', %(now_iso)s),
               'balance', ac.balance,
               'pending', ac.pending),
           %(now)s
      FROM entries e
      JOIN accounts ac ON ac.id = e.account_id
      JOIN members_member m ON m.shop_id = %(shop)s AND m.id = ac.member_id
     ORDER BY e.id
    RETURNING id
)
SELECT (SELECT count(*) FROM entries), (SELECT COALESCE(-SUM(points), 0) FROM entries)
"""

REASON = ""  # the kind and source say it (shown translated)
ACTOR = "expiry"


def expire_due_lots(
    *, shop, now=None, chunk: int = CHUNK_ACCOUNTS, workers: int = WORKERS
) -> int:
    """Expire every lot of `shop` due at `now`; returns the points expired.

    Set-based: one statement to find the chunks, then two per chunk of
    `chunk` accounts, whatever the number of lots; running it again expires
    nothing more. Called outside a transaction, up to `workers` chunks run at
    once, each on a connection of its own; inside one (the caller's
    all-or-nothing), one after the other on the caller's connection.
    """
    now = now or timezone.now()
    if connection.vendor != "postgresql":
        return _expire_portably(shop, now)
    params = {
        "shop": shop.pk,
        "now": now,
        "now_iso": now.isoformat(),
        "reason": REASON,
        "actor": ACTOR,
        "topic": events.POINTS_EXPIRED,
        "chunk": chunk,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CHUNKS_SQL, params)
        lows = [row[0] for row in cursor.fetchall()]
    chunks = [{**params, "low": low, "high": high} for low, high in id_ranges(lows)]
    if workers < 2 or len(chunks) < 2 or connection.in_atomic_block:
        return sum(_expire_chunk(chunk_params) for chunk_params in chunks)
    return sum(on_own_connections(_expire_chunk, chunks, workers=workers))


def _expire_chunk(params) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = %s", [WORK_MEM])
        cursor.execute(_LOCK_SQL, params)
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(_EXPIRE_SQL, params)
        accounts, points = cursor.fetchone()
        if accounts:
            transaction.on_commit(kick_relay, robust=True)
        return int(points)


def _expire_portably(shop, now) -> int:
    """The same, account by account: for the embedded SQLite database only
    (development and the demo); production runs the statements above."""
    due = PointsLot.objects.unscoped().filter(
        shop_id=shop.pk, remaining__gt=0, expires_at__lte=now
    )
    expired = 0
    with transaction.atomic():
        accounts = (
            PointsAccount.objects.unscoped()
            .filter(shop_id=shop.pk, pk__in=due.values("account_id"))
            .select_related("member")
            .order_by("pk")
        )
        for account in accounts:
            lots = list(due.filter(account_id=account.pk))
            points = sum(lot.remaining for lot in lots)
            entry = PointsEntry(
                shop_id=shop.pk,
                account=account,
                kind=EntryKind.EXPIRE,
                points=-points,
                total_after=account.balance - points,
                source=EntrySource.EXPIRY,
                reason=REASON,
                actor_label=ACTOR,
            )
            entry.save(force_insert=True)
            LotConsumption.objects.unscoped().bulk_create(
                LotConsumption(
                    shop_id=shop.pk, entry=entry, lot=lot, points=lot.remaining
                )
                for lot in lots
            )
            pending = sum(lot.remaining for lot in lots if lot.available_at > now)
            for lot in lots:
                lot.remaining = 0
            PointsLot.objects.unscoped().bulk_update(lots, ["remaining"])
            account.balance -= points
            account.expired += points
            account.pending = max(account.pending - pending, 0)
            ledger._save_account(account)
            ledger._emit(account, entry, shop)
            expired += points
    return expired
