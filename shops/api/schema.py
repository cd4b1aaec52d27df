"""OpenAPI additions: the Api-Key scheme, the Idempotency-Key header and errors.

`RegularsAutoSchema` (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS) documents on every
operation the error responses it can give, each with the one error shape, so
that every response the API sends conforms to the schema (the contract test
checks this for every endpoint).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from shops.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from shops.api.idempotency import MAX_KEY_LENGTH
from shops.api.serializers import ErrorSerializer
from shops.models import Shop
from shops.tenancy import shop_scope

ERROR_DESCRIPTIONS = {
    "400": "The request is not valid (see error.fields), or its JSON is malformed.",
    "401": "No API key, or the key is unknown, revoked or expired.",
    "403": "The API key may not do this (e.g. a read-only key that writes).",
    "404": "Not found (or not this shop's).",
    "413": "The request body is too large.",
    "415": "The request body is not JSON.",
    "422": "The Idempotency-Key was used before with a different request body.",
    "429": "Too many requests for this API key; retry after Retry-After seconds.",
}
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class ShopScopedSchemaGenerator(SchemaGenerator):
    """Generates the schema inside the scope of an unsaved stand-in shop.

    Schema generation builds querysets of tenant models (viewsets'
    get_queryset(), django-filter's `Model.objects.none()`) to learn field
    types, with no key and no shop. It never runs them; the stand-in only lets
    the fail-closed manager build them.
    """

    def get_schema(self, request=None, public=False):
        with shop_scope(Shop(pk=0, name="OpenAPI schema")):
            return super().get_schema(request=request, public=public)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "shops.api.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "A shop's API key, sent as `Authorization: Api-Key <key>`. "
                "Read keys may only use GET."
            ),
        }


class RegularsAutoSchema(AutoSchema):
    def _idempotency(self) -> dict | None:
        action = getattr(self.view, "action", None) or self.method.lower()
        return getattr(getattr(self.view, action, None), "idempotency", None)

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        idempotency = self._idempotency()
        if idempotency is not None:
            parameters.append(
                OpenApiParameter(
                    IDEMPOTENCY_HEADER,
                    type={
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_KEY_LENGTH,
                    },
                    location=OpenApiParameter.HEADER,
                    required=idempotency["required"],
                    description=(
                        "A unique key per write (e.g. a UUID). A retry with the "
                        "same key and body returns the first response again, with "
                        "`Idempotent-Replayed: true`."
                    ),
                )
            )
        return parameters

    def _requires_key(self) -> bool:
        return any(
            cls.__name__ == "ApiKeyAuthentication"
            for cls in self.view.authentication_classes
        )

    def _error_statuses(self) -> list[str]:
        if not self._requires_key():
            return []
        statuses = ["401", "429"]
        has_body = self.method in _BODY_METHODS
        has_query = any(p.get("in") == "query" for p in self._get_parameters() or [])
        if has_body or has_query or self._idempotency() is not None:
            statuses.append("400")
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            statuses.append("403")
        if "{" in self.path:
            statuses.append("404")
        if has_body:
            statuses += ["413", "415"]
        if self._idempotency() is not None:
            statuses.append("422")
        return sorted(statuses)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_statuses():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, ERROR_DESCRIPTIONS[code]), code
                )
        return responses
