from django.http import HttpResponse
from django.test import RequestFactory

from shops.middleware import SESSION_KEY, StaffShopMiddleware
from shops.models import Role
from shops.tenancy import current_shop_or_none
from tests.factories import MembershipFactory, ShopFactory, UserFactory


class FakeSession(dict):
    pass


def run(user, session=None):
    """Pass a request through the middleware; return what the view saw."""
    seen = {}

    def view(request):
        seen["shop"] = current_shop_or_none()
        seen["role"] = request.role
        return HttpResponse()

    request = RequestFactory().get("/admin/")
    request.user = user
    request.session = FakeSession(session or {})
    StaffShopMiddleware(view)(request)
    return seen


def test_staff_work_in_their_shop_and_the_scope_ends_with_the_request(shop):
    clerk = MembershipFactory(shop=shop, role=Role.CLERK).user

    seen = run(clerk)

    assert seen == {"shop": shop, "role": Role.CLERK}
    assert current_shop_or_none() is None


def test_the_active_shop_is_the_one_chosen_among_the_users_shops(shop, other_shop):
    user = UserFactory()
    MembershipFactory(shop=shop, user=user, role=Role.OWNER)
    MembershipFactory(shop=other_shop, user=user, role=Role.MANAGER)

    seen = run(user, {SESSION_KEY: other_shop.pk})

    assert seen == {"shop": other_shop, "role": Role.MANAGER}


def test_a_shop_the_user_does_not_belong_to_is_never_entered(shop, other_shop):
    user = MembershipFactory(shop=shop).user

    seen = run(user, {SESSION_KEY: other_shop.pk})

    assert seen["shop"] == shop


def test_a_deactivated_membership_gives_no_shop(shop):
    user = MembershipFactory(shop=shop, is_active=False).user

    assert run(user)["shop"] is None


def test_a_superuser_without_a_chosen_shop_is_in_the_all_shops_view(db):
    ShopFactory()
    admin = UserFactory(is_superuser=True, is_staff=True)

    assert run(admin) == {"shop": None, "role": None}


def test_a_superuser_may_enter_any_shop(shop):
    admin = UserFactory(is_superuser=True, is_staff=True)

    assert run(admin, {SESSION_KEY: shop.pk})["shop"] == shop
