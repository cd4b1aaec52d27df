"""The fail-closed current-shop guard.

Every tenant-owned model's default manager reads the current shop from a
ContextVar and raises `NoShopInScope` when none is set, instead of returning
every shop's rows. The current shop is set in exactly three places, each of
which resets it in a `finally`:

* the request: `shops.middleware.StaffShopMiddleware` (admin and staff pages,
  from the staff member's active shop), the API's base views in
  `shops.api.views` (integrators, from the API key), and `scoped_by_slug`
  (the portal, from the URL slug);
* `shop_task`, the Celery task decorator (from the task's `shop_id`);
* `shop_scope()`, the context manager for commands and tests.

What the guard does not cover, by Django's design: raw SQL, `Model._base_manager`
(used by Django for forward foreign-key access such as `store.shop`, which only
follows a row already read), and `Model.objects.unscoped()`, the loudly named
escape hatch for the few platform-wide jobs (the outbox relay, a superuser's
cross-shop list). Code that uses it must filter by shop itself.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from celery import shared_task
from django.db import models

if TYPE_CHECKING:
    from shops.models import Shop

_current_shop: ContextVar[Shop | None] = ContextVar("current_shop", default=None)


class NoShopInScope(RuntimeError):
    """A tenant-owned table was queried with no current shop set."""


def get_current_shop() -> Shop:
    shop = _current_shop.get()
    if shop is None:
        raise NoShopInScope(
            "No current shop: set one with shop_scope(shop) (commands, tests), "
            "the request middleware, or @shop_task; or use .unscoped() on purpose."
        )
    return shop


def current_shop_or_none() -> Shop | None:
    return _current_shop.get()


@contextmanager
def shop_scope(shop: Shop) -> Iterator[Shop]:
    """Make `shop` the current shop inside the block, whatever was set before."""
    if shop is None:
        raise ValueError("shop_scope() needs a shop.")
    token = _current_shop.set(shop)
    try:
        yield shop
    finally:
        _current_shop.reset(token)


@contextmanager
def no_shop_scope() -> Iterator[None]:
    """Clear the current shop inside the block (a superuser's all-shops view)."""
    token = _current_shop.set(None)
    try:
        yield
    finally:
        _current_shop.reset(token)


class ShopScopedQuerySet(models.QuerySet):
    pass


class ShopScopedManager(models.Manager.from_queryset(ShopScopedQuerySet)):
    """Default manager of tenant-owned models: the current shop's rows, or raise."""

    def get_queryset(self) -> ShopScopedQuerySet:
        return super().get_queryset().filter(shop=get_current_shop())

    def unscoped(self) -> ShopScopedQuerySet:
        """Every shop's rows. Platform-wide jobs only: filter by shop yourself."""
        return super().get_queryset()


def scoped_by_slug(view):
    """Run a view inside the scope of the active shop named by its `shop_slug`.

    The portal's pages (`/m/<shop_slug>/...`) take their shop from the URL; an
    unknown or inactive shop is a 404.
    """

    @functools.wraps(view)
    def wrapper(request, *args, shop_slug: str, **kwargs):
        from django.shortcuts import get_object_or_404

        from shops.models import Shop

        shop = get_object_or_404(Shop, slug=shop_slug, is_active=True)
        request.shop = shop
        with shop_scope(shop):
            return view(request, *args, **kwargs)

    return wrapper


def shop_task(*task_args, **task_options):
    """Declare a Celery task that runs inside the scope of its `shop_id` argument.

    The task is called with `shop_id=...` and the wrapped function receives
    `shop=` instead. A shop that no longer exists makes the task a no-op.
    """

    def decorate(func):
        @functools.wraps(func)
        def run(*args, shop_id: int, **kwargs):
            from shops.models import Shop

            shop = Shop.objects.filter(pk=shop_id).first()
            if shop is None:
                return None
            with shop_scope(shop):
                return func(*args, shop=shop, **kwargs)

        return shared_task(*task_args, **task_options)(run)

    if len(task_args) == 1 and callable(task_args[0]) and not task_options:
        func, task_args = task_args[0], ()
        return decorate(func)
    return decorate
