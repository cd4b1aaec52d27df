"""The key's shop and its stores."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.response import Response

from shops.api.serializers import ShopSerializer, StoreSerializer
from shops.api.views import ShopScopedAPIView, ShopScopedViewSet
from shops.models import Store


class ShopView(ShopScopedAPIView):
    """The shop the API key belongs to: its name, currency, time zone, brand."""

    @extend_schema(
        operation_id="shop_retrieve",
        summary="The shop of the API key",
        responses=ShopSerializer,
    )
    def get(self, request):
        return Response(ShopSerializer(self.shop, context={"request": request}).data)


@extend_schema(tags=["stores"])
class StoreViewSet(ShopScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """The shop's stores (branches), newest first."""

    model = Store
    serializer_class = StoreSerializer
    filterset_fields = ["is_active", "code"]
