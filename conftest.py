import os

import pytest
from django.conf import settings
from django.db import connection

from shops.tenancy import shop_scope


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    no_pg = pytest.mark.skip(
        reason="needs PostgreSQL (row locks, SKIP LOCKED, real concurrency): "
        "set DATABASE_URL=postgres://... as .ci/run does"
    )
    no_broker = pytest.mark.skip(
        reason="needs a real Redis broker: set CELERY_BROKER_URL=redis://... "
        "as .ci/run does"
    )
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(no_pg)
        if "broker" in item.keywords and not os.environ.get("CELERY_BROKER_URL"):
            item.add_marker(no_broker)


@pytest.fixture
def shop(db):
    from tests.factories import ShopFactory

    return ShopFactory(name="Tea House", slug="tea-house")


@pytest.fixture
def other_shop(db):
    from tests.factories import ShopFactory

    return ShopFactory(name="Other Shop", slug="other-shop")


@pytest.fixture
def in_shop(shop):
    """Run the test inside the scope of `shop`."""
    with shop_scope(shop):
        yield shop


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _no_relay_requested():
    """Each test starts with no outbox relay run pending (the flag lives in the
    cache, which may be a Redis shared by the whole run)."""
    from shops.services.events.outbox import relay_started

    relay_started()


@pytest.fixture(autouse=True)
def _no_points_rules_cached():
    """Each test reads its shop's points rules afresh: a rolled-back test's
    shop id can come again on SQLite, and the cache is per process."""
    from points.services.rules import forget_all

    forget_all()
