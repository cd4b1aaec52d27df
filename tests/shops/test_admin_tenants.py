"""The tenant admins: what each role may see and do, and shop isolation."""

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.urls import reverse

from shops.models import ApiKey, Role, StaffMembership, Store, User
from shops.services.tenants import set_staff_stores
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, StoreFactory, make_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(client):
    """Assertions read English: the shops' default language is Chinese."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


STRONG = "teapot-Lantern-42"


@pytest.fixture
def staff_client(client, shop):
    """Log in a member of `shop` with the given role; returns the client."""

    def login(role=Role.OWNER, stores=(), target_shop=None):
        membership = MembershipFactory(
            shop=target_shop or shop, role=role, user__is_staff=True
        )
        if stores:
            set_staff_stores(membership=membership, stores=stores)
        client.force_login(membership.user)
        return client

    return login


def changelist(model):
    return reverse(f"admin:shops_{model}_changelist")


def add_url(model):
    return reverse(f"admin:shops_{model}_add")


def change_url(model, pk):
    return reverse(f"admin:shops_{model}_change", args=[pk])


# Stores ---------------------------------------------------------------------


def test_owner_adds_a_store(staff_client, shop):
    client = staff_client(Role.OWNER)

    response = client.post(add_url("store"), {"name": "Bund", "code": "sh01"})

    assert response.status_code == 302
    with shop_scope(shop):
        assert Store.objects.get(code="sh01").name == "Bund"


def test_a_duplicate_store_code_is_a_form_error(staff_client, shop):
    StoreFactory(shop=shop, code="sh01")
    client = staff_client(Role.OWNER)

    response = client.post(add_url("store"), {"name": "Again", "code": "sh01"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    with shop_scope(shop):
        assert Store.objects.filter(code="sh01").count() == 1


def test_clerk_sees_stores_but_cannot_add_change_or_delete(staff_client, shop):
    store = StoreFactory(shop=shop, name="Bund")
    client = staff_client(Role.CLERK)

    listing = client.get(changelist("store"))
    adding = client.post(add_url("store"), {"name": "X", "code": "x1"})
    changing = client.post(change_url("store", store.pk), {"name": "Y", "code": "y"})

    assert listing.status_code == 200
    assert "Bund" in listing.content.decode()
    assert adding.status_code == 403
    assert changing.status_code == 403
    store.refresh_from_db()
    assert store.name == "Bund"


def test_clerk_limited_to_a_store_sees_only_that_store(staff_client, shop):
    mine = StoreFactory(shop=shop, name="Bund")
    StoreFactory(shop=shop, name="Xintiandi")
    client = staff_client(Role.CLERK, stores=[mine])

    page = client.get(changelist("store")).content.decode()

    assert "Bund" in page
    assert "Xintiandi" not in page


# Staff ----------------------------------------------------------------------


def test_owner_adds_a_clerk_limited_to_a_store(staff_client, shop):
    store = StoreFactory(shop=shop)
    client = staff_client(Role.OWNER)

    response = client.post(
        add_url("staffmembership"),
        {
            "username": "amy",
            "name": "Amy",
            "email": "",
            "password": STRONG,
            "role": Role.CLERK,
            "store_access": [store.pk],
        },
    )

    assert response.status_code == 302
    amy = User.objects.get(username="amy")
    assert amy.check_password(STRONG)
    with shop_scope(shop):
        membership = StaffMembership.objects.get(user=amy)
        assert list(membership.stores.all()) == [store]
    assert membership.role == Role.CLERK
    # The new clerk can log in to the admin and sees the stores.
    client.force_login(amy)
    assert client.get(changelist("store")).status_code == 200


def test_store_choices_for_staff_are_this_shops_only(staff_client, shop, other_shop):
    StoreFactory(shop=shop, name="Bund")
    theirs = StoreFactory(shop=other_shop, name="Elsewhere")
    client = staff_client(Role.OWNER)

    form_page = client.get(add_url("staffmembership")).content.decode()
    response = client.post(
        add_url("staffmembership"),
        {
            "username": "amy",
            "password": STRONG,
            "role": "clerk",
            "store_access": [theirs.pk],
        },
    )

    assert "Bund" in form_page
    assert "Elsewhere" not in form_page
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["store_access"]
    assert not User.objects.filter(username="amy").exists()


def test_the_staff_page_never_lists_other_shops_users(staff_client, shop, other_shop):
    MembershipFactory(shop=other_shop, user__username="stranger")
    client = staff_client(Role.OWNER)

    listing = client.get(changelist("staffmembership")).content.decode()
    form_page = client.get(add_url("staffmembership")).content.decode()

    assert "stranger" not in listing
    assert "stranger" not in form_page


def test_a_taken_username_is_a_form_error(staff_client, shop):
    MembershipFactory(shop=shop, user__username="amy")
    client = staff_client(Role.OWNER)

    response = client.post(
        add_url("staffmembership"),
        {"username": "amy", "password": STRONG, "role": "clerk"},
    )

    assert response.context["adminform"].form.errors["username"]


def test_the_last_owner_cannot_be_demoted(staff_client, shop):
    client = staff_client(Role.OWNER)
    with shop_scope(shop):
        owner = StaffMembership.objects.get()

    response = client.post(
        change_url("staffmembership", owner.pk), {"role": "clerk", "is_active": "on"}
    )

    assert response.status_code == 200
    assert "at least one active owner" in str(response.context["adminform"].form.errors)
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_a_deactivated_member_loses_access_at_once(staff_client, shop):
    clerk_client = staff_client(Role.CLERK)
    with shop_scope(shop):
        clerk = StaffMembership.objects.get()
    assert clerk_client.get(changelist("store")).status_code == 200
    owner = MembershipFactory(shop=shop, role=Role.OWNER, user__is_staff=True)

    from django.test import Client

    owner_client = Client()
    owner_client.force_login(owner.user)
    owner_client.post(change_url("staffmembership", clerk.pk), {"role": "clerk"})

    clerk.refresh_from_db()
    assert not clerk.is_active
    assert clerk_client.get(changelist("store")).status_code in {302, 403}


@pytest.mark.parametrize("role", [Role.MANAGER, Role.CLERK])
@pytest.mark.parametrize("model", ["staffmembership", "apikey"])
def test_managers_and_clerks_are_refused_staff_and_api_keys(staff_client, role, model):
    client = staff_client(role)

    assert client.get(changelist(model)).status_code == 403
    assert client.get(add_url(model)).status_code == 403


def test_managers_see_stores_but_only_owners_change_them(staff_client, shop):
    client = staff_client(Role.MANAGER)

    assert client.get(changelist("store")).status_code == 200
    assert client.get(add_url("store")).status_code == 403


# API keys -------------------------------------------------------------------


def test_owner_creates_an_api_key_shown_once_and_stored_hashed(staff_client, shop):
    client = staff_client(Role.OWNER)

    response = client.post(
        add_url("apikey"), {"name": "Till", "scope": "write"}, follow=True
    )

    api_key = ApiKey.unscoped_keyring.get(shop=shop)
    shown = response.content.decode().split()
    plain = next(word for word in shown if word.startswith(api_key.prefix + "."))
    assert ApiKey.unscoped_keyring.get_from_key(plain) == api_key
    assert plain not in (api_key.hashed_key, api_key.id)
    # Afterwards only the prefix shows, never the key.
    detail = client.get(change_url("apikey", api_key.pk)).content.decode()
    assert api_key.prefix in detail
    assert plain not in detail
    assert plain not in client.get(changelist("apikey")).content.decode()


def test_the_new_key_reads_the_shop_through_the_api(staff_client, shop, client):
    owner = staff_client(Role.OWNER)
    response = owner.post(add_url("apikey"), {"name": "Till", "scope": "read"})
    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    plain = next(w for w in text.split() if "." in w and len(w) > 20)
    owner.logout()

    api = client.get("/api/v1/shop", HTTP_AUTHORIZATION=f"Api-Key {plain}")

    assert api.status_code == 200
    assert api.json()["slug"] == shop.slug


def test_owner_revokes_a_key(staff_client, shop):
    api_key, plain = make_api_key(shop=shop)
    client = staff_client(Role.OWNER)

    response = client.post(
        changelist("apikey"),
        {"action": "revoke_keys", "_selected_action": [api_key.pk]},
    )

    assert response.status_code == 302
    assert not ApiKey.unscoped_keyring.is_valid(plain)


def test_key_material_is_never_editable(staff_client, shop):
    api_key, _ = make_api_key(shop=shop, name="Till")
    client = staff_client(Role.OWNER)

    response = client.post(
        change_url("apikey", api_key.pk), {"name": "Hacked", "scope": "write"}
    )

    assert response.status_code == 403
    api_key.refresh_from_db()
    assert api_key.name == "Till"


# Isolation ------------------------------------------------------------------


@pytest.mark.parametrize("model", ["store", "staffmembership", "apikey", "shop"])
def test_another_shops_objects_answer_404(staff_client, shop, other_shop, model):
    theirs = {
        "store": lambda: StoreFactory(shop=other_shop),
        "staffmembership": lambda: MembershipFactory(shop=other_shop),
        "apikey": lambda: make_api_key(shop=other_shop)[0],
        "shop": lambda: other_shop,
    }[model]()
    client = staff_client(Role.OWNER)

    mine = {"apikey": lambda: make_api_key(shop=shop)[0]}.get(model)

    assert client.get(change_url(model, theirs.pk)).status_code == 404
    posted = client.post(change_url(model, theirs.pk), {"name": "x"}).status_code
    if mine is None:
        assert posted == 404
    else:
        # Keys are never edited: the same refusal as for one's own key.
        assert posted == client.post(change_url(model, mine().pk), {}).status_code


def test_lists_show_only_the_active_shops_rows(staff_client, shop, other_shop):
    StoreFactory(shop=shop, name="Mine Store")
    StoreFactory(shop=other_shop, name="Their Store")
    make_api_key(shop=other_shop, name="Their Key")
    client = staff_client(Role.OWNER)

    stores = client.get(changelist("store")).content.decode()
    keys = client.get(changelist("apikey")).content.decode()
    shops = client.get(changelist("shop")).content.decode()

    assert "Mine Store" in stores
    assert "Their Store" not in stores
    assert "Their Key" not in keys
    assert "Other Shop" not in shops


def test_owner_changes_the_shops_settings(staff_client, shop):
    client = staff_client(Role.OWNER)

    response = client.post(
        change_url("shop", shop.pk),
        {
            "name": "Tea House Pudong",
            "language": "en",
            "currency": "CNY",
            "time_zone": "Asia/Shanghai",
            "country": "CN",
            "brand_color": "#123456",
        },
    )

    assert response.status_code == 302
    shop.refresh_from_db()
    assert (shop.name, shop.brand_color, shop.slug) == (
        "Tea House Pudong",
        "#123456",
        "tea-house",
    )


def test_users_and_groups_are_for_the_platform_only(staff_client):
    client = staff_client(Role.OWNER)

    assert client.get(reverse("admin:shops_user_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403


def test_revoke_from_the_key_page_asks_first_then_revokes(staff_client, shop):
    api_key, plain = make_api_key(shop=shop, name="Till")
    client = staff_client(Role.OWNER)
    url = reverse("admin:shops_apikey_revoke_key", args=[api_key.pk])

    asking = client.get(url)
    assert ApiKey.unscoped_keyring.is_valid(plain)
    client.post(url)

    assert "cannot be undone" in asking.content.decode()
    assert not ApiKey.unscoped_keyring.is_valid(plain)
