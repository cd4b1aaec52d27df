import threading

import pytest

from shops.models import Store
from shops.tenancy import (
    NoShopInScope,
    current_shop_or_none,
    get_current_shop,
    shop_scope,
    shop_task,
)
from tests.factories import StoreFactory


def test_a_query_with_no_shop_raises(db):
    with pytest.raises(NoShopInScope):
        list(Store.objects.all())


def test_the_scope_shows_only_the_current_shops_rows(shop, other_shop):
    mine = StoreFactory(shop=shop, code="A1")
    StoreFactory(shop=other_shop, code="B1")

    with shop_scope(shop):
        assert list(Store.objects.all()) == [mine]
        assert not Store.objects.filter(code="B1").exists()


def test_unscoped_sees_every_shop(shop, other_shop):
    StoreFactory(shop=shop)
    StoreFactory(shop=other_shop)

    assert Store.objects.unscoped().count() == 2


def test_the_scope_is_reset_after_the_block_even_on_error(shop):
    with pytest.raises(ZeroDivisionError), shop_scope(shop):
        1 / 0  # noqa: B018

    assert current_shop_or_none() is None


def test_nested_scopes_restore_the_outer_shop(shop, other_shop):
    with shop_scope(shop):
        with shop_scope(other_shop):
            assert get_current_shop() == other_shop
        assert get_current_shop() == shop


def test_the_scope_does_not_leak_into_another_thread(shop):
    seen = []
    with shop_scope(shop):
        thread = threading.Thread(target=lambda: seen.append(current_shop_or_none()))
        thread.start()
        thread.join()

    assert seen == [None]


@shop_task(name="tests.count_stores")
def count_stores(*, shop):
    return shop.pk, Store.objects.count()


def test_a_shop_task_runs_in_its_shops_scope(shop, other_shop):
    StoreFactory(shop=shop)
    StoreFactory(shop=other_shop)
    StoreFactory(shop=other_shop)

    assert count_stores.apply(kwargs={"shop_id": other_shop.pk}).get() == (
        other_shop.pk,
        2,
    )
    assert current_shop_or_none() is None


def test_a_shop_task_for_a_deleted_shop_does_nothing(db):
    assert count_stores.apply(kwargs={"shop_id": 999_999}).get() is None


def test_a_portal_view_runs_in_the_shop_named_by_its_slug(shop, other_shop):
    from django.http import Http404, HttpResponse
    from django.test import RequestFactory

    from shops.tenancy import scoped_by_slug

    StoreFactory(shop=other_shop)

    @scoped_by_slug
    def view(request):
        return HttpResponse(f"{request.shop.slug}:{Store.objects.count()}")

    response = view(RequestFactory().get("/m/other-shop/"), shop_slug="other-shop")

    assert response.content == b"other-shop:1"
    assert current_shop_or_none() is None
    with pytest.raises(Http404):
        view(RequestFactory().get("/m/nope/"), shop_slug="nope")
