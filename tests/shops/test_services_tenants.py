import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from shops.models import ApiKey, Role, Shop, StaffMembership, Store, User
from shops.services.tenants import (
    add_staff_member,
    change_staff_role,
    create_api_key,
    create_store,
    deactivate_staff_member,
    revoke_api_key,
    sign_up_shop,
    update_staff_member,
)
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

STRONG = "teapot-Lantern-42"


def sign_up(**overrides):
    data = {
        "shop_name": "Jade Tea",
        "slug": "jade-tea",
        "owner_email": "Li@Example.com",
        "owner_password": STRONG,
        "owner_name": "Li Wei",
    }
    return sign_up_shop(**{**data, **overrides})


def test_sign_up_creates_shop_first_store_and_owner():
    shop, user = sign_up()

    assert user.username == "li@example.com"
    assert user.check_password(STRONG)
    assert user.is_staff
    with shop_scope(shop):
        assert list(Store.objects.values_list("code", flat=True)) == ["main"]
        membership = StaffMembership.objects.get()
    assert membership.user == user
    assert membership.role == Role.OWNER


def test_sign_up_with_a_taken_slug_keeps_nothing():
    sign_up()

    with pytest.raises(ValidationError) as error:
        sign_up(owner_email="wang@example.com")

    assert "slug" in error.value.message_dict
    assert Shop.objects.count() == 1
    assert not User.objects.filter(username="wang@example.com").exists()


def test_sign_up_with_an_existing_email_asks_to_log_in():
    sign_up()

    with pytest.raises(ValidationError) as error:
        sign_up(slug="second", owner_email="li@example.COM")

    assert "log in" in error.value.message_dict["owner_email"][0]
    assert not Shop.objects.filter(slug="second").exists()


def test_sign_up_with_a_weak_password_or_chinese_slug_is_refused():
    with pytest.raises(ValidationError) as error:
        sign_up(owner_password="123", slug="翡翠茶")

    assert set(error.value.message_dict) == {"owner_password", "slug"}
    assert Shop.objects.count() == 0


def test_store_codes_are_unique_within_a_shop_only(shop, other_shop):
    create_store(shop=shop, name="Bund", code="sh01")
    create_store(shop=other_shop, name="Bund", code="sh01")

    with pytest.raises(ValidationError) as error:
        create_store(shop=shop, name="Again", code="sh01")

    assert "code" in error.value.message_dict


def test_clerk_cannot_create_a_store(shop):
    clerk = MembershipFactory(shop=shop, role=Role.CLERK).user

    with pytest.raises(PermissionDenied):
        create_store(shop=shop, name="Bund", code="sh01", acting_user=clerk)


def test_add_staff_member_limited_to_stores_of_this_shop_only(shop, other_shop):
    mine = StoreFactory(shop=shop)
    theirs = StoreFactory(shop=other_shop)

    with pytest.raises(ValidationError) as error:
        add_staff_member(
            shop=shop,
            username="amy",
            password=STRONG,
            role=Role.CLERK,
            stores=[mine, theirs],
        )
    assert "stores" in error.value.message_dict
    assert not User.objects.filter(username="amy").exists()

    member = add_staff_member(
        shop=shop, username="amy", password=STRONG, role=Role.CLERK, stores=[mine]
    )
    with shop_scope(shop):
        assert list(member.stores.all()) == [mine]


def test_a_taken_username_is_refused(shop):
    UserFactory(username="amy")

    with pytest.raises(ValidationError) as error:
        add_staff_member(shop=shop, username="Amy", password=STRONG, role="clerk")

    assert "username" in error.value.message_dict


def test_the_last_owner_can_never_be_demoted_or_deactivated(shop):
    owner = MembershipFactory(shop=shop, role=Role.OWNER)

    with pytest.raises(ValidationError):
        change_staff_role(membership=owner, role=Role.MANAGER)
    with pytest.raises(ValidationError):
        deactivate_staff_member(membership=owner)
    with pytest.raises(ValidationError):
        update_staff_member(
            membership=owner, role=Role.OWNER, stores=[], is_active=False
        )

    owner.refresh_from_db()
    assert (owner.role, owner.is_active) == (Role.OWNER, True)


def test_an_owner_can_step_down_when_another_owner_remains(shop):
    first = MembershipFactory(shop=shop, role=Role.OWNER)
    MembershipFactory(shop=shop, role=Role.OWNER)

    change_staff_role(membership=first, role=Role.MANAGER)

    first.refresh_from_db()
    assert first.role == Role.MANAGER


def test_deactivating_the_only_membership_closes_the_admin_door(shop):
    clerk = MembershipFactory(shop=shop, role=Role.CLERK, user__is_staff=True)

    deactivate_staff_member(membership=clerk)

    clerk.user.refresh_from_db()
    assert not clerk.user.is_staff


def test_api_key_is_hashed_and_revocable(shop):
    api_key, plain = create_api_key(shop=shop, name="Till", scope="write")

    stored = ApiKey.unscoped_keyring.get(pk=api_key.pk)
    assert plain not in (stored.hashed_key, stored.id)
    assert plain.startswith(stored.prefix + ".")
    assert ApiKey.unscoped_keyring.is_valid(plain)

    revoke_api_key(api_key=stored)

    assert not ApiKey.unscoped_keyring.is_valid(plain)


def test_api_key_with_a_past_expiry_or_bad_scope_is_refused(shop):
    with pytest.raises(ValidationError) as error:
        create_api_key(
            shop=shop,
            name="Till",
            scope="admin",
            expires_at=timezone.now() - datetime.timedelta(days=1),
        )

    assert set(error.value.message_dict) == {"scope", "expires_at"}
