import pytest

from shops.models import ApiKey, Shop, Store
from shops.tenancy import shop_scope

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_owner_signs_up_adds_a_store_and_creates_an_api_key(live_server, page):
    # Given a visitor on the sign-up page
    page.goto(f"{live_server.url}/signup/")

    # When they sign up their shop
    page.fill("input[name=shop_name]", "Lotus Bakery")
    page.fill("input[name=slug]", "lotus-bakery")
    page.fill("input[name=owner_name]", "Mei Lin")
    page.fill("input[name=owner_email]", "mei@lotus.example.com")
    page.fill("input[name=owner_password]", "Steamed-Bun-2048")
    page.click("button[type=submit]")

    # Then they are in the admin, working in their new shop
    page.wait_for_url(f"{live_server.url}/admin/")
    assert "Lotus Bakery" in page.content()

    # When they add a second store
    page.goto(f"{live_server.url}/admin/shops/store/add/")
    page.fill("input[name=name]", "Harbour Road")
    page.fill("input[name=code]", "harbour")
    page.click("button[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/shops/store/")
    assert "Harbour Road" in page.content()

    # And create an API key, which is shown once
    page.goto(f"{live_server.url}/admin/shops/apikey/add/")
    page.fill("input[name=name]", "Till 1")
    page.click("button[name=_save]")
    page.wait_for_selector("text=Copy it now")

    shop = Shop.objects.get(slug="lotus-bakery")
    with shop_scope(shop):
        assert set(Store.objects.values_list("name", flat=True)) >= {"Harbour Road"}
        assert ApiKey.objects.filter(name="Till 1").count() == 1
