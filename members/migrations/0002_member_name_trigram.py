"""A trigram index for "name contains" searches, on PostgreSQL only.

Django's `name__icontains` is `UPPER(name) LIKE UPPER('%wei%')`, which no
btree can serve; a GIN trigram index over UPPER(name) can. btree_gin lets the
same GIN index hold shop_id, so the index is led by the shop like every other
(one index scan answers "this shop and this name", and it keeps the layout
Citus needs). Both extensions ship with PostgreSQL and are trusted, so the
database owner can create them. SQLite (the embedded default) gets nothing:
it scans, which is fine at its size.
"""

from django.db import migrations

from shops.migration_operations import on_postgresql_only

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    "CREATE INDEX IF NOT EXISTS members_name_trgm_idx ON members_member "
    "USING gin (shop_id, UPPER(name) gin_trgm_ops)",
]
DROP = ["DROP INDEX IF EXISTS members_name_trgm_idx"]


class Migration(migrations.Migration):
    dependencies = [("members", "0001_initial")]

    operations = [on_postgresql_only(CREATE, DROP)]
