"""The points liability report: outstanding points and their cash value by
home store and by expiry month (in the shop's time zone), on a small known
dataset; managers and owners only; another shop's points are not counted."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from points.admin.liability import liability
from points.models import PointsPolicy
from points.services.ledger import credit, debit
from shops.models import Role
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, StoreFactory
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db

URL = reverse("admin:points_liability")


@pytest.fixture(autouse=True)
def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


def at(shop, *args):
    """A moment on the shop's wall clock."""
    return datetime.datetime(*args, tzinfo=shop.zone)


def earn(member, points, expires_at):
    with shop_scope(member.shop):
        credit(
            member=member,
            points=points,
            kind="earn",
            source="campaign",
            expires_at=expires_at,
        )


@pytest.fixture
def dataset(shop, other_shop):
    with shop_scope(shop):
        PointsPolicy.objects.create(shop=shop, cash_points=20, cash_value="1.00")
    flagship = StoreFactory(shop=shop, name="Flagship")
    garden = StoreFactory(shop=shop, name="Garden")
    a = MemberFactory(shop=shop, home_store=flagship)
    b = MemberFactory(shop=shop, home_store=garden)
    c = MemberFactory(shop=shop)  # no home store
    earn(a, 100, at(shop, 2031, 3, 15, 12))
    earn(a, 50, None)
    earn(b, 30, at(shop, 2031, 3, 20, 12))
    # 03:00 on 1 April in Shanghai is still 31 March in UTC: April here.
    earn(b, 40, at(shop, 2031, 4, 1, 3))
    earn(c, 10, at(shop, 2031, 5, 2, 12))
    with shop_scope(shop):
        # Spent from b's oldest lot first: 30 -> 10 left of it.
        debit(member=b, points=20, kind="redeem", source="reward")
    # Another shop's points never count here.
    earn(MemberFactory(shop=other_shop), 999, at(other_shop, 2031, 3, 1, 12))
    return {"flagship": flagship, "garden": garden}


def test_the_report_sums_open_lots_by_store_and_expiry_month(shop, dataset):
    with shop_scope(shop), CaptureQueriesContext(connection) as queries:
        report = liability(shop=shop)

    assert report.points == 210
    assert report.value == Decimal("10.50")
    assert [(r.label, r.points, r.value) for r in report.by_store] == [
        ("Flagship", 150, Decimal("7.50")),
        ("Garden", 50, Decimal("2.50")),
        ("No home store", 10, Decimal("0.50")),
    ]
    assert [(r.label, r.points, r.value) for r in report.by_month] == [
        ("2031-03", 110, Decimal("5.50")),
        ("2031-04", 40, Decimal("2.00")),
        ("2031-05", 10, Decimal("0.50")),
        ("Never expire", 50, Decimal("2.50")),
    ]
    # Set-based: the policy, two GROUP BYs and the store names, whatever the size.
    assert len(queries) <= 4


def test_the_cash_value_follows_the_policy_rate(shop, dataset):
    with shop_scope(shop):
        PointsPolicy.objects.filter(shop=shop).update(cash_points=3, cash_value="0.10")
        report = liability(shop=shop)

    # 210 points at 0.10 per 3 points.
    assert report.value == Decimal("7.00")
    assert report.by_store[2].value == Decimal("0.33")


def test_managers_read_the_report_page_and_clerks_may_not(client, shop, dataset):
    manager = MembershipFactory(shop=shop, role=Role.MANAGER, user__is_staff=True)
    clerk = MembershipFactory(shop=shop, role=Role.CLERK, user__is_staff=True)

    client.force_login(manager.user)
    response = client.get(URL)
    html = response.content.decode()
    entries = client.get(reverse("admin:points_pointsentry_changelist"))
    section = client.get(reverse("admin:app_list", args=["points"]))
    client.force_login(clerk.user)
    clerks_section = client.get(reverse("admin:app_list", args=["points"]))

    assert response.status_code == 200
    assert 'data-testid="liability-points">210<' in html
    assert "10.50 CNY" in html
    assert "Flagship" in html
    assert "2031-04" in html
    # The entries list links the report (its "Liability report" button).
    assert "Liability report" in entries.content.decode()
    # ... and so does the points section of the admin, for managers only.
    assert 'data-testid="points-reports"' in section.content.decode()
    assert 'data-testid="points-reports"' not in clerks_section.content.decode()
    assert client.get(URL).status_code == 403


def test_a_shop_without_points_or_policy_reports_zero(shop):
    with shop_scope(shop):
        report = liability(shop=shop)

    assert (report.points, report.value, report.by_store, report.by_month) == (
        0,
        Decimal("0.00"),
        [],
        [],
    )
