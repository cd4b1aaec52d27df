"""The demo's members: realistic, consistent figures, and a second load adds
nothing."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, F, Q, Sum

from members.demo import MEMBERS, ORDER_PREFIX
from members.models import CustomField, Member, Purchase
from members.models.purchase import COUNTED_STATUSES
from shops.models import Shop

pytestmark = pytest.mark.django_db


def load() -> str:
    out = StringIO()
    call_command("load_demo", "--shop-slug", "demo-test", stdout=out)
    return out.getvalue()


def test_the_demo_loads_members_with_two_years_of_purchases_once():
    first_output = load()
    shop = Shop.objects.get(slug="demo-test")
    members = Member.objects.unscoped().filter(shop=shop)
    purchases = Purchase.objects.unscoped().filter(shop=shop)
    counts = (members.count(), purchases.count())

    second_output = load()

    assert counts[0] == MEMBERS
    assert counts[1] > 3 * MEMBERS
    assert (members.count(), purchases.count()) == counts
    assert f"{MEMBERS} demo members" in first_output
    assert "(0 new)" in second_output
    assert (
        purchases.filter(external_order_id__startswith=ORDER_PREFIX).count()
        == (counts[1])
    )
    assert set(purchases.values_list("status", flat=True)) >= {
        "completed", "refunded", "partially_refunded", "pending",
    }  # fmt: skip
    assert CustomField.objects.unscoped().filter(shop=shop).count() == 2
    assert members.exclude(custom_fields={}).count() > MEMBERS // 2
    assert members.exclude(referred_by=None).exists()
    assert members.exclude(email="").exists()


def test_demo_figures_match_the_purchases():
    load()
    shop = Shop.objects.get(slug="demo-test")
    counted = Q(purchases__status__in=COUNTED_STATUSES)

    members = Member.objects.unscoped().filter(shop=shop).annotate(
        spent=Sum(F("purchases__paid_amount") - F("purchases__refunded_amount"),
                  filter=counted),
        orders=Count("purchases", filter=counted),
    )  # fmt: skip

    for member in members:
        assert member.total_spent == (member.spent or 0)
        assert member.order_count == member.orders
    assert members.filter(order_count=0).exists()  # some never came back
    assert members.filter(order_count__gte=10).exists()  # and some regulars
