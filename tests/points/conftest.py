from __future__ import annotations

import pytest

from tests.members.factories import MemberFactory


@pytest.fixture
def member(shop):
    return MemberFactory(shop=shop)


def ledger_problems(shop, *, now=None, account_id=None) -> list[str]:
    """Every broken ledger invariant in `shop` (or in one account of it), as
    readable lines (none: fine)."""
    from django.db import connection
    from django.utils import timezone

    now = now or timezone.now()
    # {a}: the account column each check is about.
    checks = {
        "balance != sum(entries)": (
            "a.id",
            """
            SELECT a.id FROM points_pointsaccount a
             WHERE a.shop_id = %(shop)s {only} AND a.balance <> COALESCE((
                SELECT SUM(e.points) FROM points_pointsentry e
                 WHERE e.shop_id = a.shop_id AND e.account_id = a.id), 0)""",
        ),
        "sum(open lots) != max(balance, 0)": (
            "a.id",
            """
            SELECT a.id FROM points_pointsaccount a
             WHERE a.shop_id = %(shop)s {only}
               AND GREATEST(a.balance, 0) <> COALESCE((
                SELECT SUM(l.remaining) FROM points_pointslot l
                 WHERE l.shop_id = a.shop_id AND l.account_id = a.id), 0)""",
        ),
        "pending != pending lots": (
            "a.id",
            """
            SELECT a.id FROM points_pointsaccount a
             WHERE a.shop_id = %(shop)s {only} AND a.pending <> COALESCE((
                SELECT SUM(l.remaining) FROM points_pointslot l
                 WHERE l.shop_id = a.shop_id AND l.account_id = a.id
                   AND l.available_at > %(now)s), 0)""",
        ),
        "lot remaining out of range": (
            "l.account_id",
            """
            SELECT l.id FROM points_pointslot l WHERE l.shop_id = %(shop)s {only}
               AND (l.remaining < 0 OR l.remaining > l.points)""",
        ),
        "debit consumptions != points": (
            "e.account_id",
            """
            SELECT e.id FROM points_pointsentry e
             WHERE e.shop_id = %(shop)s {only} AND e.points < 0
               AND -e.points <> COALESCE((
                SELECT SUM(c.points) FROM points_lotconsumption c
                 WHERE c.shop_id = e.shop_id AND c.entry_id = e.id), 0)
               AND NOT (e.kind = 'reverse' AND e.total_after < 0)""",
        ),
        "total_after != running balance": (
            "e.account_id",
            """
            SELECT e.id FROM points_pointsentry e
             WHERE e.shop_id = %(shop)s {only} AND e.total_after <> (
                SELECT SUM(e2.points) FROM points_pointsentry e2
                 WHERE e2.shop_id = e.shop_id AND e2.account_id = e.account_id
                   AND e2.id <= e.id)""",
        ),
        "negative balance without a go-negative refund": (
            "a.id",
            """
            SELECT a.id FROM points_pointsaccount a
             WHERE a.shop_id = %(shop)s {only} AND a.balance < 0 AND NOT EXISTS (
                SELECT 1 FROM points_pointsentry e
                 WHERE e.shop_id = a.shop_id AND e.account_id = a.id
                   AND e.kind = 'reverse' AND e.total_after < 0)""",
        ),
    }
    params = {"shop": shop.pk, "now": now, "account": account_id}
    problems = []
    with connection.cursor() as cursor:
        for name, (column, sql) in checks.items():
            only = f"AND {column} = %(account)s" if account_id is not None else ""
            sql = sql.format(only=only)
            if connection.vendor == "sqlite":
                sql = sql.replace("GREATEST(", "MAX(")
            cursor.execute(sql, params)
            ids = [row[0] for row in cursor.fetchall()]
            if ids:
                problems.append(f"{name}: {ids}")
    return problems


@pytest.fixture
def assert_ledger_ok(shop):
    def check(now=None):
        problems = ledger_problems(shop, now=now)
        assert not problems, problems

    return check


@pytest.fixture
def eager_tasks():
    """`.delay()` runs in-process, as with no broker, even when CI sets one."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
