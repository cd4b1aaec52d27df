"""The cost of an authenticated API call and of the tenancy guard.

1. N x `GET /api/v1/shop` through the whole WSGI stack (middleware, key check,
   throttle, view, JSON) against the bare SQL the request needs: the key row by
   its prefix and the shop row. The ratio is what Django and DRF add.
2. The scoped manager (`Store.objects` inside `shop_scope`) against
   `Store.objects.unscoped().filter(shop=...)` on the same query: what the
   fail-closed guard costs.
"""

from __future__ import annotations

import os

from django.db import connection
from django.test import Client
from harness import compare, measure_interleaved

from shops.models import ApiKey, ApiKeyScope, Shop, Store
from shops.services import tenants
from shops.tenancy import shop_scope

REQUESTS = int(os.environ.get("BENCH_API_REQUESTS", "1000"))
QUERIES = int(os.environ.get("BENCH_QUERIES", "3000"))


def make_shop() -> tuple[Shop, str]:
    shop = tenants.create_shop(name="Bench Tea House", slug="bench-api-auth")
    for number in range(20):
        tenants.create_store(shop=shop, name=f"Store {number}", code=f"s{number:02d}")
    _key, plain = tenants.create_api_key(
        shop=shop, name="bench", scope=ApiKeyScope.WRITE
    )
    return shop, plain


def bench_request(plain: str) -> None:
    client = Client()
    headers = {"authorization": f"Api-Key {plain}"}
    first = client.get("/api/v1/shop", headers=headers)
    # Timing a 401 or a 429 would measure the wrong thing.
    assert first.status_code == 200, first.content

    def api_call():
        response = client.get("/api/v1/shop", headers=headers)
        assert response.status_code == 200, response.status_code

    prefix = plain.split(".", 1)[0]
    key_table = connection.ops.quote_name(ApiKey._meta.db_table)
    shop_table = connection.ops.quote_name(Shop._meta.db_table)
    key_sql = f"SELECT * FROM {key_table} WHERE prefix = %s AND revoked = %s"  # noqa: S608
    shop_sql = f"SELECT * FROM {shop_table} WHERE id = %s"  # noqa: S608

    def bare_sql():
        with connection.cursor() as cursor:
            cursor.execute(key_sql, [prefix, False])
            columns = [c[0] for c in cursor.description]
            row = dict(zip(columns, cursor.fetchone(), strict=True))
            cursor.execute(shop_sql, [row["shop_id"]])
            cursor.fetchone()

    baseline, request = measure_interleaved(
        {
            "bare SQL: key by prefix + shop row": bare_sql,
            "GET /api/v1/shop (WSGI, in-process)": api_call,
        },
        n=REQUESTS,
    )
    compare("Authenticated API call vs the SQL it needs", baseline, request)


def bench_scoped_manager(shop: Shop) -> None:
    def unscoped():
        list(Store.objects.unscoped().filter(shop=shop, is_active=True)[:10])

    def scoped():
        with shop_scope(shop):
            list(Store.objects.filter(is_active=True)[:10])

    baseline, guarded = measure_interleaved(
        {
            ".unscoped().filter(shop=...)": unscoped,
            "scoped manager inside shop_scope()": scoped,
        },
        n=QUERIES,
    )
    compare("Tenancy guard vs an explicit shop filter", baseline, guarded)


def main() -> None:
    shop, plain = make_shop()
    bench_request(plain)
    bench_scoped_manager(shop)
