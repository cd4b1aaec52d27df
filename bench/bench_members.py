"""Members at scale: the data generator, find by phone, the filtered list.

1. Data: the bench shop (1M members and 10M purchases at full size) made by
   `manage.py generate_members` (COPY); its time is printed (target < 5 min).
   With --keep-data a later run reuses it.
2. Find by phone and by the last four digits through `search_members` (the
   selector the admin's search box and the API's `q` use), inside the shop
   scope, beside the very SQL it sends run on a bare cursor. Target p99 < 20 ms.
3. The member list with two filters and a sort, first page, through
   `MemberFilter` + `parse_ordering` (what the API and the admin apply) and
   through `GET /api/v1/members?...` in-process, beside the bare SQL. Target
   < 100 ms. The plan of the slowest is printed (EXPLAIN ANALYZE).
4. The same in the admin: `GET /admin/members/member/?...` in-process as an
   owner (the page rendered whole), beside its SQL statements run bare.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from harness import (
    compare,
    env_int,
    measure_interleaved,
    reproduce,
    skip_unless_postgres,
)
from members_data import dataset, write_key

from members.models import Member
from shops.models import Role, StaffMembership, Store, User
from shops.tenancy import shop_scope

FINDS = env_int("BENCH_FINDS", 2000)
LISTS = env_int("BENCH_LISTS", 200)
PAGE = 50


def sample_members(shop, count: int) -> list[tuple[str, str]]:
    """(phone, last4) of random members, without sorting a million rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT phone, phone_last4 FROM {Member._meta.db_table} "  # noqa: S608
            "TABLESAMPLE SYSTEM (2) WHERE shop_id = %s AND phone <> '' LIMIT %s",
            [shop.pk, count],
        )
        rows = cursor.fetchall()
    random.Random(2).shuffle(rows)
    return rows


def cycling(values):
    """A function returning the next value each call (round robin)."""
    state = {"i": -1}

    def next_value():
        state["i"] = (state["i"] + 1) % len(values)
        return values[state["i"]]

    return next_value


def bare(sql_and_params):
    """Run a compiled statement on a bare cursor and fetch every row."""
    sql, params = sql_and_params
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def typed_phone(e164: str) -> str:
    # Staff type the local number at the counter; the selector reads it in the
    # shop's country.
    return e164[3:] if e164.startswith("+86") else e164


def bench_find(shop) -> None:
    from members.selectors.members import search_members

    rows = sample_members(shop, 1000)
    if not rows:
        print("  no members with phones: nothing to find")
        return
    phones = cycling([typed_phone(phone) for phone, _ in rows])
    last4s = cycling([last4 for _, last4 in rows])

    def selector_page(query: str) -> list:
        with shop_scope(shop):
            return list(search_members(query=query, shop=shop)[:PAGE])

    def compiled(query: str):
        with shop_scope(shop):
            qs = search_members(query=query, shop=shop)[:PAGE]
            return qs.query.sql_with_params()

    # Compile once per query outside the timing: the baseline is the database
    # and driver alone.
    phone_sql = {q: compiled(q) for q in {phones() for _ in range(len(rows))}}
    last4_sql = {q: compiled(q) for q in {last4s() for _ in range(len(rows))}}
    for label, pick, sqls in (
        ("phone (11 digits as typed)", phones, phone_sql),
        ("last four digits", last4s, last4_sql),
    ):
        current = {}

        def bare_call(pick=pick, sqls=sqls, current=current):
            current["q"] = pick()
            return bare(sqls[current["q"]])

        def selector_call(current=current):
            found = selector_page(current["q"])
            assert found, current["q"]

        baseline, selector = measure_interleaved(
            {
                "bare SQL (the same statement)": bare_call,
                "search_members() in shop_scope": selector_call,
            },
            n=FINDS,
        )
        compare(
            f"Find by {label} at {shop_size(shop)} members (target p99 < 20 ms)",
            baseline,
            selector,
        )
    explain(compiled(last4s()), "last four digits")


_size_cache: dict[int, str] = {}


def shop_size(shop) -> str:
    if shop.pk not in _size_cache:
        count = Member.objects.unscoped().filter(shop=shop).count()
        _size_cache[shop.pk] = f"{count:,}"
    return _size_cache[shop.pk]


def first_store(shop) -> Store:
    return Store.objects.unscoped().filter(shop=shop).order_by("pk").first()


def list_cases(shop) -> dict[str, dict[str, str]]:
    now = timezone.now()
    store = first_store(shop)
    return {
        "status=active, source=counter, by -total_spent": {
            "status": "active",
            "source": "counter",
            "ordering": "-total_spent",
        },
        "home store, birthday month, by -last_purchase_at": {
            "home_store": str(store.pk),
            "birthday_month": "5",
            "ordering": "-last_purchase_at",
        },
        "spent >= 2000, no purchase in 180 days, by -total_spent": {
            "total_spent_min": "2000",
            "last_purchase_before": (now - timedelta(days=180)).isoformat(),
            "ordering": "-total_spent",
        },
        "joined in the last 90 days, source=qr, by -joined_at": {
            "joined_after": (now - timedelta(days=90)).isoformat(),
            "source": "qr",
            "ordering": "-joined_at",
        },
    }


def list_queryset(shop, params: dict[str, str]):
    """The first page as the API builds it: the filters, the sort, and for a
    sort on a field members may lack, only the members who have it."""
    from members.api.members import NULLABLE_SORTS
    from members.filters import MemberFilter, parse_ordering

    data = {k: v for k, v in params.items() if k != "ordering"}
    with shop_scope(shop):
        filtered = MemberFilter(data, queryset=Member.objects.filter(shop=shop))
        assert filtered.is_valid(), filtered.errors
        ordering = parse_ordering(params.get("ordering"))
        queryset = filtered.qs
        first = ordering[0].lstrip("-")
        if first in NULLABLE_SORTS:
            queryset = queryset.filter(**{f"{first}__isnull": False})
        return queryset.order_by(*ordering)[:PAGE]


def api_list_available(client: Client, headers: dict) -> bool:
    response = client.get("/api/v1/members", {"status": "active"}, headers=headers)
    if response.status_code != 200:
        print(f"  GET /api/v1/members answered {response.status_code}: API not timed")
        return False
    return True


def bench_list(shop) -> None:
    client = Client()
    headers = {"authorization": f"Api-Key {write_key(shop)}"}
    with_api = api_list_available(client, headers)
    slowest = (0.0, None, "")
    for label, params in list_cases(shop).items():
        sql = list_queryset(shop, params).query.sql_with_params()

        def selector_call(params=params):
            with shop_scope(shop):
                return list(list_queryset(shop, params))

        contenders = {
            "bare SQL (the same statement)": lambda sql=sql: bare(sql),
            "MemberFilter + ordering as the API does": selector_call,
        }
        if with_api:

            def api_call(params=params):
                response = client.get("/api/v1/members", params, headers=headers)
                assert response.status_code == 200, response.content[:300]

            contenders["GET /api/v1/members (WSGI, in-process)"] = api_call
        timings = measure_interleaved(contenders, n=LISTS, warmup=3)
        compare(f"Member list: {label} (target < 100 ms)", *timings)
        worst = max(t.p99 for t in timings)
        if worst > slowest[0]:
            slowest = (worst, sql, label)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        print(f"  GET /api/v1/members?{query}")
    if slowest[1] is not None:
        explain(slowest[1], f"slowest list: {slowest[2]}")


ADMIN_LIST = "/admin/members/member/"


def admin_cases(shop) -> dict[str, dict[str, str]]:
    """Two filters and a sort, as staff click them (`o` is the column: 7 is
    the spend, 9 the last purchase, 10 the joining date)."""
    store = first_store(shop)
    return {
        "status active, source counter, by spend (highest first)": {
            "status__exact": "active",
            "source__exact": "counter",
            "o": "-7",
        },
        "home store, birthday month, by last purchase (newest first)": {
            "home_store": str(store.pk),
            "birthday_month": "5",
            "o": "-9",
        },
        "spent 0 to 100, source counter, by spend (lowest first)": {
            "total_spent_from": "0",
            "total_spent_to": "100",
            "source__exact": "counter",
            "o": "7",
        },
        "joined this year, status active, by joining date (oldest first)": {
            "joined_at_from": f"{timezone.now().year}-01-01",
            "status__exact": "active",
            "o": "10",
        },
    }


def bench_admin_list(shop) -> None:
    user = User.objects.create_user(
        username=f"bench-owner-{shop.pk}-{time.time_ns()}", password=None
    )
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    StaffMembership.objects.unscoped().create(shop=shop, user=user, role=Role.OWNER)
    client = Client()
    client.force_login(user)
    for label, params in admin_cases(shop).items():

        def page(params=params):
            response = client.get(ADMIN_LIST, params)
            assert response.status_code == 200, response.status_code

        page()
        with CaptureQueriesContext(connection) as captured:
            page()
        statements = [q["sql"] for q in captured.captured_queries]

        def statements_bare(statements=statements):
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
                    if cursor.description:
                        cursor.fetchall()

        timings = measure_interleaved(
            {
                f"its {len(statements)} SQL statements, bare": statements_bare,
                "GET /admin/members/member/ (in-process)": page,
            },
            n=LISTS // 4,
            warmup=2,
        )
        compare(f"Admin member list: {label} (target < 100 ms)", *timings)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        print(f"  {ADMIN_LIST}?{query}")


def explain(sql_and_params, label: str) -> None:
    sql, params = sql_and_params
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
    print(f"\n  EXPLAIN ANALYZE, {label}:")
    for line in plan[:25]:
        print(f"    {line}")


def main() -> None:
    if skip_unless_postgres("the members benchmark (data made with COPY)"):
        return
    with dataset() as shop:
        print(f"  bench shop {shop.slug}: {shop_size(shop)} members")
        bench_find(shop)
        bench_list(shop)
        bench_admin_list(shop)
        reproduce("bench_members")
