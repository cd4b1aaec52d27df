"""Switching the active shop and the admin's language."""

import pytest
from django.conf import settings
from django.urls import reverse

from shops.middleware import SESSION_KEY
from shops.models import Role
from tests.factories import MembershipFactory, ShopFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(client):
    """Assertions read English: the shops' default language is Chinese."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


STORES = reverse("admin:shops_store_changelist")
SWITCH = reverse("switch_shop")


@pytest.fixture
def two_shop_user(shop, other_shop):
    user = UserFactory(is_staff=True)
    MembershipFactory(shop=shop, user=user, role=Role.OWNER)
    MembershipFactory(shop=other_shop, user=user, role=Role.CLERK)
    StoreFactory(shop=shop, name="Tea Bund")
    StoreFactory(shop=other_shop, name="Other Mall")
    return user


def test_every_admin_page_shows_the_active_shop_and_role(client, shop):
    owner = MembershipFactory(shop=shop, role=Role.OWNER, user__is_staff=True)
    client.force_login(owner.user)

    for url in (reverse("admin:index"), STORES):
        page = client.get(url).content.decode()
        assert 'data-testid="active-shop">Tea House<' in page
        assert 'data-testid="active-role">Owner<' in page


def test_switching_shows_the_other_shops_rows(client, two_shop_user, shop, other_shop):
    client.force_login(two_shop_user)
    client.post(SWITCH, {"shop": shop.pk})
    before = client.get(STORES).content.decode()

    response = client.post(SWITCH, {"shop": other_shop.pk, "next": STORES})
    after = client.get(STORES).content.decode()

    assert "Tea Bund" in before
    assert "Other Mall" not in before
    assert response.status_code == 302
    assert response["Location"] == STORES
    assert client.session[SESSION_KEY] == other_shop.pk
    assert "Other Mall" in after
    assert "Tea Bund" not in after
    assert 'data-testid="active-role">Clerk<' in after


def test_switching_to_a_shop_you_do_not_belong_to_is_refused(client, shop):
    member = MembershipFactory(shop=shop, user__is_staff=True)
    stranger_shop = ShopFactory(slug="stranger")
    client.force_login(member.user)

    response = client.post(SWITCH, {"shop": stranger_shop.pk, "next": STORES})

    assert response.status_code == 404
    assert client.session.get(SESSION_KEY) != stranger_shop.pk


def test_switching_needs_a_post_and_never_redirects_off_site(
    client, two_shop_user, other_shop
):
    client.force_login(two_shop_user)

    assert client.get(SWITCH).status_code == 405
    response = client.post(
        SWITCH, {"shop": other_shop.pk, "next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("admin:index")


def test_switching_from_an_object_page_returns_to_its_list(
    client, two_shop_user, shop, other_shop
):
    client.force_login(two_shop_user)
    store_page = reverse("admin:shops_store_change", args=[1])

    response = client.post(SWITCH, {"shop": other_shop.pk, "next": store_page})

    assert response["Location"] == STORES


def test_a_superuser_sees_every_shops_stores_in_the_all_shops_view(
    client, shop, other_shop
):
    StoreFactory(shop=shop, name="Tea Bund")
    StoreFactory(shop=other_shop, name="Other Mall")
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    client.post(SWITCH, {"shop": shop.pk})

    client.post(SWITCH, {"shop": "all"})
    page = client.get(STORES).content.decode()

    assert SESSION_KEY not in client.session
    assert "Tea Bund" in page
    assert "Other Mall" in page
    assert 'data-testid="active-shop">All shops<' in page


def test_all_shops_is_for_superusers_only(client, two_shop_user):
    client.force_login(two_shop_user)

    assert client.post(SWITCH, {"shop": "all"}).status_code == 404


def test_the_language_switch_turns_the_admin_chinese(client, shop):
    shop.language = "en"
    shop.save()
    owner = MembershipFactory(shop=shop, role=Role.OWNER, user__is_staff=True)
    client.force_login(owner.user)
    assert "Log out" in client.get(STORES).content.decode()

    response = client.post(
        reverse("set_language"), {"language": "zh-hans", "next": STORES}, follow=True
    )

    page = response.content.decode()
    assert response.redirect_chain[-1][0] == STORES
    assert "注销" in page
    assert "Log out" not in page
    # The admin offers the switch itself (unfold's SHOW_LANGUAGES).
    assert reverse("set_language") in page


def test_without_a_chosen_language_the_shops_default_applies(client, shop):
    shop.language = "zh-hans"
    shop.save()
    owner = MembershipFactory(shop=shop, role=Role.OWNER, user__is_staff=True)
    client.force_login(owner.user)
    del client.cookies[settings.LANGUAGE_COOKIE_NAME]

    chinese = client.get(STORES, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get(STORES, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "注销" in chinese
    assert "Log out" in english


def test_the_login_page_offers_languages_and_sign_up(client):
    page = client.get(reverse("admin:login")).content.decode()

    assert reverse("set_language") in page
    assert reverse("signup") in page
