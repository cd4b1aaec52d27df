"""Room on each page of the accounts table, on PostgreSQL only.

Every purchase, redemption and expiry rewrites its account row (balance and
figures, none of them indexed). With room on the page PostgreSQL writes the
new row version beside the old one and touches no index (a HOT update);
with full pages (the default fillfactor 100) each write also inserts into
every index of the table. Pages already full stay so until the table is
rewritten (VACUUM FULL); the rows written from now on get the room.
"""

from django.db import migrations

from shops.migration_operations import on_postgresql_only

SET = ["ALTER TABLE points_pointsaccount SET (fillfactor = 80)"]
RESET = ["ALTER TABLE points_pointsaccount RESET (fillfactor)"]


class Migration(migrations.Migration):
    dependencies = [("points", "0002_account_pending_index")]

    operations = [on_postgresql_only(SET, RESET)]
