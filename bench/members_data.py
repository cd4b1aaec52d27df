"""The members benchmarks' shop: N members and M purchases made by the data
generator (`manage.py generate_members`, COPY), in a database of its own.

The shop's slug carries the sizes and the seed; its name gets " (complete)"
once the generator and ANALYZE finished, which is the marker a later run with
--keep-data checks before reusing the data instead of generating it again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.db import connection
from harness import data_database, database_url, sizes

from shops.models import ApiKeyScope, Shop, Store
from shops.services import tenants

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("BENCH_SEED", "1"))
COMPLETE = " (complete)"
STORES = 8

_ready: dict[str, Shop] = {}


def slug_for(members: int, purchases: int, seed: int = SEED) -> str:
    return f"bench-m{members}-p{purchases}-s{seed}"


def generator_command(slug: str, members: int, purchases: int) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "manage.py"),
        "generate_members",
        "--shop-slug",
        slug,
        "--members",
        str(members),
        "--purchases",
        str(purchases),
        "--seed",
        str(SEED),
    ]


def _generate(slug: str, members: int, purchases: int) -> Shop:
    shop = Shop.objects.filter(slug=slug).first()
    if shop is not None:
        # A run that broke off half-way: start again from nothing.
        print(f"  data: {slug} is incomplete; deleting it and generating again")
        Shop.objects.filter(pk=shop.pk).delete()
    shop = tenants.create_shop(name=f"Bench {members} members", slug=slug)
    for number in range(1, STORES):
        tenants.create_store(shop=shop, name=f"Store {number}", code=f"b{number:02d}")
    if not _generator_exists():
        _sql_stand_in(shop, members, purchases)
        Shop.objects.filter(pk=shop.pk).update(name=shop.name + COMPLETE)
        shop.refresh_from_db()
        return shop
    command = generator_command(slug, members, purchases)
    # The generator is another process: this one must hold no transaction.
    connection.close()
    env = {**os.environ, "DATABASE_URL": database_url(), "DEBUG": "false"}
    env.setdefault("SECRET_KEY", "bench-only-not-secret")
    shown = " ".join(command[1:]).replace(str(ROOT) + "/", "")
    print(f"  data: DATABASE_URL={database_url()} python {shown}")
    started = time.perf_counter()
    result = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-4000:])
        raise RuntimeError("generate_members failed")
    for line in result.stdout.strip().splitlines()[-5:]:
        print(f"    | {line}")
    print(
        f"  generator: {members:,} members + {purchases:,} purchases in "
        f"{took:.1f} s ({purchases / took:,.0f} purchases/s); target < 300 s "
        f"for 1M + 10M"
    )
    Shop.objects.filter(pk=shop.pk).update(name=shop.name + COMPLETE)
    shop.refresh_from_db()
    return shop


def _generator_exists() -> bool:
    from django.core.management import get_commands

    return "generate_members" in get_commands()


def _sql_stand_in(shop: Shop, members: int, purchases: int) -> None:
    """Plain INSERT ... SELECT data while `generate_members` is not there yet
    (keeps the other benchmarks runnable); not timed as the generator."""
    print("  data: no generate_members command yet; INSERT ... SELECT stand-in")
    stores = list(
        Store.objects.unscoped().filter(shop=shop).values_list("pk", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO members_member (shop_id, member_code, name, phone, phone_last4,
              email, birthday_month, birthday_day, gender, language, home_store_id,
              source, status, joined_at, sms_consent, email_consent, notes,
              custom_fields, external_id, total_spent, order_count, created_at,
              updated_at)
            SELECT %(shop)s, 'T' || lpad(i::text, 7, '0'), 'Member ' || i,
              '+86139' || lpad(((i * 7919) %% 100000000)::text, 8, '0'),
              right(lpad(((i * 7919) %% 100000000)::text, 8, '0'), 4), '',
              1 + i %% 12, 1 + i %% 28, '', '',
              (%(stores)s::bigint[])[1 + i %% cardinality(%(stores)s::bigint[])],
              (ARRAY['counter','portal','qr','referral','import','api'])[1 + i %% 6],
              CASE WHEN i %% 20 = 0 THEN 'inactive' ELSE 'active' END,
              now() - (i %% 1000) * interval '1 day', false, false, '', '{}', '',
              0, 0, now(), now()
            FROM generate_series(1::bigint, %(members)s) AS i
            """,
            {"shop": shop.pk, "members": members, "stores": stores},
        )
        cursor.execute(
            "SELECT min(id), max(id) FROM members_member WHERE shop_id = %s",
            [shop.pk],
        )
        low, high = cursor.fetchone()
        cursor.execute(
            """
            INSERT INTO members_purchase (shop_id, member_id, store_id,
              external_order_id, amount, discount, paid_amount, refunded_amount,
              currency, channel, status, occurred_at, completed_at, note, created_at)
            SELECT %(shop)s, %(low)s + (i * 104729) %% (%(high)s - %(low)s + 1),
              (%(stores)s::bigint[])[1 + i %% cardinality(%(stores)s::bigint[])],
              'T' || i, 10 + i %% 500, 0, 10 + i %% 500, 0, 'CNY', 'store',
              'completed', now() - (i %% 700) * interval '1 day',
              now() - (i %% 700) * interval '1 day', '', now()
            FROM generate_series(1::bigint, %(purchases)s) AS i
            """,
            {
                "shop": shop.pk,
                "low": low,
                "high": high,
                "stores": stores,
                "purchases": purchases,
            },
        )
        cursor.execute(
            """
            UPDATE members_member m SET total_spent = f.spent, order_count = f.n,
              first_purchase_at = f.first, last_purchase_at = f.last
            FROM (SELECT member_id, sum(paid_amount) spent, count(*) n,
                    min(occurred_at) first, max(occurred_at) last
                  FROM members_purchase WHERE shop_id = %(shop)s GROUP BY member_id) f
            WHERE m.id = f.member_id
            """,
            {"shop": shop.pk},
        )
        cursor.execute("ANALYZE members_member, members_purchase")


def ensure_shop() -> Shop:
    members, purchases = sizes()
    slug = slug_for(members, purchases)
    if slug in _ready:
        return _ready[slug]
    shop = Shop.objects.filter(slug=slug).first()
    if shop is not None and shop.name.endswith(COMPLETE):
        print(f"  data: reusing {slug} (kept by an earlier --keep-data run)")
    else:
        shop = _generate(slug, members, purchases)
    _ready[slug] = shop
    return shop


@contextmanager
def dataset():
    """The bench shop, inside its data database (generated on first use)."""
    with data_database("members"):
        shop = ensure_shop()
        yield shop


def write_key(shop: Shop) -> str:
    _key, plain = tenants.create_api_key(
        shop=shop, name="bench", scope=ApiKeyScope.WRITE
    )
    return plain
