"""Webhook endpoints: where the shop wants its events sent."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response

from shops.api.idempotency import idempotent
from shops.api.serializers import (
    WebhookEndpointCreatedSerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointSerializer,
)
from shops.api.views import ShopScopedViewSet
from shops.models import WebhookEndpoint
from shops.services.events import (
    deactivate_webhook_endpoint,
    register_webhook_endpoint,
)


@extend_schema(tags=["webhooks"])
class WebhookEndpointViewSet(
    ShopScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin
):
    """Endpoints receive signed JSON events (see the README for the signature)."""

    model = WebhookEndpoint
    serializer_class = WebhookEndpointSerializer
    filterset_fields = ["is_active"]

    @extend_schema(
        summary="Register an endpoint; the response shows its signing secret once",
        request=WebhookEndpointCreateSerializer,
        responses={201: WebhookEndpointCreatedSerializer},
        examples=[
            OpenApiExample(
                "All events",
                value={
                    "url": "https://pos.example.com/regulars-hook",
                    "events": ["*"],
                    "description": "Till system",
                },
                request_only=True,
            )
        ],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        given = WebhookEndpointCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        endpoint = register_webhook_endpoint(shop=self.shop, **given.validated_data)
        return Response(
            WebhookEndpointCreatedSerializer(endpoint).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Stop sending to an endpoint (its delivery history stays)",
        responses={204: None},
    )
    def destroy(self, request, *args, **kwargs):
        deactivate_webhook_endpoint(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
