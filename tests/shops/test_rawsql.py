"""The hot paths' hand-written statements, prepared once per connection."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from shops import rawsql
from shops.models import Store
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

BY_CODE = 'SELECT "name" FROM "shops_store" WHERE "shop_id" = %s AND "code" = %s'
NAMED = (
    'SELECT "name" || %(tail)s FROM "shops_store" '
    'WHERE "shop_id" = %(shop)s AND "code" LIKE \'A%%\' AND "id" > %(above)s '
    'AND "code" <> %(tail)s'
)


def run(sql, params):
    with connection.cursor() as cursor:
        rawsql.execute(cursor, sql, params)
        return cursor.fetchall()


def prepared_here() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_answers_as_the_plain_one_with_either_placeholders(shop):
    StoreFactory(shop=shop, code="A1", name="Harbour")
    StoreFactory(shop=shop, code="B2", name="Hill")

    assert run(BY_CODE, [shop.pk, "A1"]) == [("Harbour",)]
    assert run(BY_CODE, [shop.pk, "B2"]) == [("Hill",)]
    # Named placeholders, one used twice, and a literal percent sign.
    named = {"shop": shop.pk, "tail": "!", "above": 0}
    assert run(NAMED, named) == [("Harbour!",)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # closes its connection
def test_it_is_prepared_once_per_connection_and_survives_a_rollback(shop):
    StoreFactory(shop=shop, code="A1", name="Harbour")
    connection.close()  # a new connection: nothing prepared yet

    with transaction.atomic():
        run(BY_CODE, [shop.pk, "A1"])
        transaction.set_rollback(True)
    with CaptureQueriesContext(connection) as queries:
        assert run(BY_CODE, [shop.pk, "A1"]) == [("Harbour",)]

    # Prepared in the rolled-back transaction, still there afterwards; the
    # statement counted is the EXECUTE, which reads back as the statement.
    assert [rawsql.statement_of(q["sql"]) for q in queries] == [BY_CODE]
    assert queries[0]["sql"].startswith("EXECUTE rs_")
    assert sum(BY_CODE.split(" %s")[0] in s for s in prepared_here()) == 1

    connection.close()  # the server forgot it with the connection: again
    assert run(BY_CODE, [shop.pk, "A1"]) == [("Harbour",)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_setting_turns_it_off(shop, settings):
    StoreFactory(shop=shop, code="A1", name="Harbour")
    settings.DATABASE_PREPARED_STATEMENTS = False
    connection.close()

    with CaptureQueriesContext(connection) as queries:
        assert run(BY_CODE, [shop.pk, "A1"]) == [("Harbour",)]

    assert queries[0]["sql"].startswith("SELECT")
    assert prepared_here() == []


def test_fetch_one_is_prepared_too(shop):
    store = StoreFactory(shop=shop, code="A1")

    found = rawsql.fetch_one(Store, "shop_id = %s AND id = %s", [shop.pk, store.pk])

    assert found == store
    assert rawsql.fetch_one(Store, "shop_id = %s AND id = %s", [shop.pk, 0]) is None
