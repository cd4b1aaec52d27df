"""Base classes of every integrator endpoint: the shop comes from the API key.

`ShopScopedAPIView` and `ShopScopedViewSet` authenticate the key, then run the
rest of the request (permissions, throttling, the handler, error handling)
inside `shop_scope(request.auth.shop)` and leave it in a `finally`. Tenant
querysets are then the key's shop's rows only, so another shop's object is a
404 exactly like a missing one. Subclasses cannot skip this: defining
`dispatch` or `initial` in a subclass is refused at import.

    class StoreViewSet(ShopScopedViewSet, mixins.ListModelMixin):
        model = Store                 # get_queryset() -> Store.objects.all()
        serializer_class = StoreSerializer
"""

from __future__ import annotations

from contextlib import ExitStack

from rest_framework import exceptions, generics, viewsets
from rest_framework.views import APIView

from shops.models import ApiKey
from shops.tenancy import no_shop_scope, shop_scope


class ShopScopedMixin:
    """Enter the key's shop scope after authentication; reset it after dispatch."""

    _GUARDED = ("dispatch", "initial")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        overridden = [name for name in cls._GUARDED if name in vars(cls)]
        if overridden and not vars(cls).get("_scope_base", False):
            raise TypeError(
                f"{cls.__name__} overrides {', '.join(overridden)}: the shop scope "
                "is set there; override a handler or get_queryset() instead."
            )

    def dispatch(self, request, *args, **kwargs):
        with ExitStack() as scope:
            # Whatever a middleware set does not leak in: no shop until the key
            # says which, and the scope ends with this request, in every case.
            scope.enter_context(no_shop_scope())
            self._shop_scope_stack = scope
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        self.perform_authentication(request)
        if not isinstance(request.auth, ApiKey):
            # Key-only API, whatever permission classes a subclass lists.
            raise exceptions.NotAuthenticated()
        self._shop_scope_stack.enter_context(shop_scope(request.auth.shop))
        super().initial(request, *args, **kwargs)

    @property
    def shop(self):
        return self.request.auth.shop

    @property
    def api_key(self) -> ApiKey:
        return self.request.auth


class ShopScopedAPIView(ShopScopedMixin, APIView):
    """A single endpoint (e.g. `GET /api/v1/shop`)."""

    _scope_base = True


class ShopScopedGenericAPIView(ShopScopedMixin, generics.GenericAPIView):
    _scope_base = True


class ShopScopedViewSet(ShopScopedMixin, viewsets.GenericViewSet):
    """Base of resource viewsets; set `model` (or override `get_queryset`).

    Ids in URLs are integers (`lookup_value_converter`), so `/stores/abc` is a
    404 before any query runs.
    """

    _scope_base = True
    model = None
    lookup_value_converter = "int"

    def get_queryset(self):
        if self.model is None:
            return super().get_queryset()
        # Evaluated per request, inside the key's scope (never at import).
        return self.model.objects.all()
