import pytest
from django.urls import reverse

from shops.middleware import SESSION_KEY
from shops.models import Role, Shop, StaffMembership, Store, User
from shops.tenancy import shop_scope
from tests.factories import ShopFactory, UserFactory

pytestmark = pytest.mark.django_db

STRONG = "teapot-Lantern-42"


def form_data(**overrides):
    return {
        "shop_name": "Jade Tea",
        "slug": "jade-tea",
        "owner_name": "Li Wei",
        "owner_email": "li@example.com",
        "owner_password": STRONG,
        **overrides,
    }


def test_welcome_page_links_to_sign_up_log_in_and_api_docs(client):
    response = client.get("/")

    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("signup") in body
    assert reverse("admin:login") in body
    assert "/api/docs/" in body
    assert reverse("set_language") in body


def test_sign_up_creates_the_shop_and_lands_the_owner_in_its_admin(client):
    response = client.post(reverse("signup"), form_data(), follow=True)

    shop = Shop.objects.get(slug="jade-tea")
    owner = User.objects.get(username="li@example.com")
    with shop_scope(shop):
        assert Store.objects.count() == 1
        membership = StaffMembership.objects.get(user=owner)
    assert membership.role == Role.OWNER
    assert response.redirect_chain[-1][0] == reverse("admin:index")
    assert client.session[SESSION_KEY] == shop.pk
    page = response.content.decode()
    assert "Welcome to Regulars" in page
    assert "Jade Tea" in page  # The switcher shows the active shop.


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"slug": "taken"}, "slug"),
        ({"slug": "翡翠茶"}, "slug"),
        ({"owner_email": "old@example.com"}, "owner_email"),
        ({"owner_password": "12345678"}, "owner_password"),
        ({"owner_password": "short"}, "owner_password"),
        ({"owner_email": "not-an-email"}, "owner_email"),
    ],
)
def test_bad_sign_up_shows_form_errors_and_creates_nothing(client, overrides, field):
    ShopFactory(slug="taken")
    UserFactory(username="old@example.com", email="old@example.com")
    shops_before, users_before = Shop.objects.count(), User.objects.count()

    response = client.post(reverse("signup"), form_data(**overrides))

    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert Shop.objects.count() == shops_before
    assert User.objects.count() == users_before
    assert SESSION_KEY not in client.session


def test_an_existing_email_is_told_to_log_in(client):
    UserFactory(username="old@example.com", email="old@example.com")

    response = client.post(reverse("signup"), form_data(owner_email="OLD@example.com"))

    assert "log in" in response.context["form"].errors["owner_email"][0]


def test_sign_up_page_has_a_language_switch_that_works(client):
    response = client.post(
        reverse("set_language"),
        {"language": "zh-hans", "next": reverse("signup")},
        follow=True,
    )

    assert response.status_code == 200
    assert '<html lang="zh-hans">' in response.content.decode()
