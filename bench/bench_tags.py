"""Tagging a whole list at once: why long lists go to a worker.

The members benchmarks' shop (1M members at full size). `add_tag` and
`remove_tag` (`members.services.tags`) on every member of the shop, each in a
transaction rolled back after, with the foreign keys checked at each
statement (Django checks them at commit) so the time is what a committed run
pays; beside the bare `INSERT ... SELECT` of the same tag rows, without the
timeline lines. From `BACKGROUND_FROM` members the admin hands the work to a
worker (`TagJob`) instead of holding a web request that long.
"""

from __future__ import annotations

import time

from django.db import connection, transaction
from harness import reproduce, skip_unless_postgres
from members_data import dataset

from members.models import Member, Tag
from members.services import tags as services
from shops.tenancy import shop_scope


def rolled_back(fn) -> tuple[float, int]:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        started = time.perf_counter()
        result = fn()
        took = time.perf_counter() - started
        transaction.set_rollback(True)
    return took, result


def main() -> None:
    if skip_unless_postgres("the tagging benchmark (data made with COPY)"):
        return
    with dataset() as shop, shop_scope(shop):
        tag = Tag.objects.filter(shop=shop, name="bench bulk").first()
        if tag is None:
            tag = Tag.objects.create(shop=shop, name="bench bulk", color="#336699")
        everyone = Member.objects.filter(shop=shop)
        count = everyone.count()
        print(
            f"\nTagging all {count:,} members of {shop.slug}, each run rolled "
            f"back (a worker does it from {services.BACKGROUND_FROM:,} members)"
        )

        def bare():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO members_membertag "
                    "(shop_id, member_id, tag_id, source, added_at) "
                    "SELECT shop_id, id, %s, 'manual', now() FROM members_member "
                    "WHERE shop_id = %s",
                    [tag.pk, shop.pk],
                )
                return cursor.rowcount

        def add_and_remove():
            added = services.add_tag(shop=shop, members=everyone, tag=tag)
            started = time.perf_counter()
            removed = services.remove_tag(shop=shop, members=everyone, tag=tag)
            return added, removed, time.perf_counter() - started

        baseline, rows = rolled_back(bare)
        print(
            f"  {'bare INSERT ... SELECT of the tag rows':58} {baseline:9.2f} s   "
            f"{rows:,} rows"
        )
        took, (added, removed, removing) = rolled_back(add_and_remove)
        adding = took - removing
        print(
            f"  {'add_tag() (rows + one timeline line per member)':58} "
            f"{adding:9.2f} s   {added:,} members; "
            f"{adding / baseline:.2f}x the bare INSERT"
        )
        print(
            f"  {'remove_tag() right after (the same members)':58} "
            f"{removing:9.2f} s   {removed:,} members"
        )
        reproduce("bench_tags")
