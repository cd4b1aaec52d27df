"""`load_demo` gives a newcomer a shop to try, and can be run again safely."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from shops.models import ApiKey, Role, Shop, StaffMembership, Store, User
from shops.tenancy import shop_scope


def load_demo(*args) -> str:
    out = StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def printed(output: str, label: str) -> str:
    match = re.search(rf"{label}:\s+(\S+)", output)
    assert match, f"{label} not printed in:\n{output}"
    return match.group(1)


def printed_password(output: str, label: str) -> str:
    match = re.search(rf"{label}:\s+\S+\s+password (\S+)", output)
    assert match, f"{label}'s password not printed in:\n{output}"
    return match.group(1)


def get_shop(key: str):
    return Client().get("/api/v1/shop", headers={"authorization": f"Api-Key {key}"})


@pytest.mark.django_db
def test_demo_can_be_loaded_twice_without_duplicates():
    # Given the demo loaded once, when it is loaded again
    load_demo()
    load_demo()

    # Then there is still one shop with two stores, an owner and a clerk
    shop = Shop.objects.get(slug="demo")
    assert Shop.objects.count() == 1
    with shop_scope(shop):
        assert Store.objects.count() == 2
        roles = sorted(StaffMembership.objects.values_list("role", flat=True))
        clerk = StaffMembership.objects.get(role=Role.CLERK)
        assert [s.code for s in clerk.stores.all()] == ["xuhui"]
    assert roles == [Role.CLERK, Role.OWNER]
    assert shop.currency == "CNY"
    assert shop.time_zone == "Asia/Shanghai"


@pytest.mark.django_db
def test_printed_logins_work_even_after_a_password_change():
    first = load_demo()
    owner = User.objects.get(username=printed(first, "Owner"))
    owner.set_password("something-else-entirely")
    owner.save()

    # When the demo is loaded again
    output = load_demo()

    # Then the printed owner and clerk logins let them in
    for label in ("Owner", "Clerk"):
        assert Client().login(
            username=printed(output, label), password=printed_password(output, label)
        ), label


@pytest.mark.django_db
def test_second_run_replaces_the_api_key():
    first_key = printed(load_demo(), "API key")
    second_key = printed(load_demo(), "API key")

    shop = Shop.objects.get(slug="demo")
    with shop_scope(shop):
        assert ApiKey.objects.filter(revoked=False).count() == 1
        assert ApiKey.objects.filter(revoked=True).count() == 1
        assert ApiKey.objects.get(revoked=False).can_write

    # The printed key works for the API; the previous one no longer does.
    response = get_shop(second_key)
    assert response.status_code == 200, response.content
    assert response.json()["slug"] == "demo"
    assert get_shop(first_key).status_code == 401


@pytest.mark.django_db
def test_another_slug_makes_a_second_shop():
    load_demo()

    output = load_demo("--shop-slug", "tea-two")

    assert "tea-two" in output
    assert sorted(Shop.objects.values_list("slug", flat=True)) == ["demo", "tea-two"]
