"""Purchases API: record (completed at once or pending), complete, refund, cancel,
list and detail.

`POST /api/v1/purchases` is the POS's hot path (about 300 requests/s asked):
its body is read by hand and checked by the service (which refuses every bad
value with a field message), and responses are built as plain dicts; the
serializers below document the shapes in the schema and are not run per
request.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from members.filters import IsoDateTimeFilter
from members.models import Purchase, PurchaseChannel, PurchaseStatus
from members.selectors.purchases import (
    MEMBER_KEYS,
    member_and_store_for_purchase,
    purchase_with_details,
    refunds_of,
)
from members.services import purchases as purchase_services
from shops.api.idempotency import idempotent
from shops.api.serializers import ErrorSerializer
from shops.api.views import ShopScopedViewSet
from shops.db import MAX_ID

from .purchase_serializers import (
    PurchaseCancelSerializer,
    PurchaseCreateSerializer,
    PurchaseDetailSerializer,
    PurchaseRefundSerializer,
    PurchaseSerializer,
    RefundResultSerializer,
    detail_data,
    purchase_data,
    refund_data,
)

ERROR_CODES = {
    "create": {
        404: "`member_not_found`: no member of this shop has that id, code or "
        "external id.",
        409: "`order_exists`: this order number is recorded with different "
        "content (the same content returns the first purchase with 200); "
        "`member_erased`: the member's data was erased.",
    },
    "complete": {
        409: "`purchase_cancelled` or `purchase_refunded`: it can no longer be "
        "completed.",
    },
    "cancel": {
        409: "`purchase_completed`: a completed purchase is refunded, not "
        "cancelled; `purchase_refunded` likewise.",
    },
    "refund": {
        409: "`refund_too_large`: more than what was paid minus what is already "
        "refunded; `refund_exceeds_quantity`: more of a line than was bought "
        "and not yet refunded; `nothing_to_refund`: already refunded in full; "
        "`purchase_not_completed`: a pending or cancelled purchase.",
    },
}


def _errors(name: str) -> dict:
    return {
        code: OpenApiResponse(ErrorSerializer, description)
        for code, description in ERROR_CODES[name].items()
    }


def _number(value):
    """JSON numbers are welcome too: 12.5 is read as the text "12.5", never
    as a binary float."""
    return repr(value) if isinstance(value, float) else value


def _lines(value):
    if not isinstance(value, list):
        return value
    return [
        {**line, **{k: _number(line.get(k)) for k in ("quantity", "unit_price")}}
        if isinstance(line, dict)
        else line
        for line in value
    ]


class PurchaseFilter(filters.FilterSet):
    member = filters.NumberFilter(
        field_name="member_id", min_value=1, max_value=MAX_ID, decimal_places=0
    )
    member_code = filters.CharFilter(field_name="member__member_code", max_length=16)
    store = filters.NumberFilter(
        field_name="store_id", min_value=1, max_value=MAX_ID, decimal_places=0
    )
    status = filters.ChoiceFilter(choices=PurchaseStatus.choices)
    channel = filters.ChoiceFilter(choices=PurchaseChannel.choices)
    external_order_id = filters.CharFilter(max_length=64)
    occurred_from = IsoDateTimeFilter(
        field_name="occurred_at",
        lookup_expr="gte",
        help_text=_("Purchases at or after this time (ISO 8601)."),
    )
    occurred_to = IsoDateTimeFilter(
        field_name="occurred_at",
        lookup_expr="lt",
        help_text=_("Purchases before this time (ISO 8601)."),
    )

    class Meta:
        model = Purchase
        fields = []


@extend_schema(tags=["purchases"])
@extend_schema_view(
    list=extend_schema(summary="The shop's purchases, newest first"),
    retrieve=extend_schema(
        summary="One purchase, with its lines, refunds and the member's figures",
        responses=PurchaseDetailSerializer,
    ),
)
class PurchaseViewSet(
    ShopScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin
):
    """A member's purchases (消费). A purchase counts in the member's figures
    (`total_spent`, `order_count`, first and last purchase) once completed."""

    model = Purchase
    serializer_class = PurchaseSerializer
    filterset_class = PurchaseFilter
    # The module whose record/complete/cancel/refund_purchase the endpoints
    # call. The points app, at the top of the members <- tiers <- points
    # chain, routes `purchases` to a subclass that settles a purchase (figures,
    # tier, points) in one transaction; this app cannot import it.
    services = purchase_services

    def member_data(self, purchase: Purchase, body: dict) -> dict:
        """The response body; a subclass adds to its `member` section."""
        return body

    def _actor(self) -> str:
        return f"API key {self.api_key.name}"[:100]

    def list(self, request, *args, **kwargs):
        purchases = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(purchases)
        return self.get_paginated_response([purchase_data(p) for p in page])

    def retrieve(self, request, *args, **kwargs):
        purchase = self.get_object()
        return Response(detail_data(purchase))

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            return purchase_with_details(queryset)
        if self.action in ("complete", "cancel", "refund"):
            return queryset.select_related("member")
        return queryset

    @extend_schema(
        summary="Record a purchase, completed at once or left pending",
        description=(
            "Name the member by exactly one of `member_id`, `member_code`, "
            "`member_external_id`. Idempotent by `external_order_id` (the same "
            "content returns the first purchase with 200) and by the "
            "Idempotency-Key header. The response carries the member's new "
            "figures."
        ),
        request=PurchaseCreateSerializer,
        responses={
            201: PurchaseDetailSerializer,
            200: OpenApiResponse(
                PurchaseDetailSerializer, "This order was recorded before."
            ),
            **_errors("create"),
        },
        examples=[
            OpenApiExample(
                "At the till",
                value={
                    "member_code": "3K9D2M7Q",
                    "external_order_id": "POS-20250101-0001",
                    "amount": "128.00",
                    "discount": "12.80",
                    "store_code": "SH01",
                    "lines": [
                        {
                            "sku": "T-100",
                            "name": "Longjing tea 100 g",
                            "quantity": "2",
                            "unit_price": "64.00",
                        }
                    ],
                },
                request_only=True,
            )
        ],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        data = request.data
        if not isinstance(data, dict):
            raise ValidationError(_("Send a JSON object."))
        named = [key for key in MEMBER_KEYS if data.get(key) is not None]
        if len(named) != 1:
            message = _(
                "Give exactly one of member_id, member_code, member_external_id."
            )
            raise ValidationError({key: message for key in MEMBER_KEYS})
        member, store = member_and_store_for_purchase(
            store_id=data.get("store_id"),
            store_code=data.get("store_code"),
            **{named[0]: data[named[0]]},
        )
        occurred_at = data.get("occurred_at")
        if occurred_at is not None:
            parsed = (
                parse_datetime(occurred_at) if isinstance(occurred_at, str) else None
            )
            if parsed is None:
                raise ValidationError(
                    {
                        "occurred_at": _(
                            "Give an ISO 8601 time, e.g. 2025-01-31T14:05:00+08:00."
                        )
                    }
                )
            occurred_at = parsed
        complete = data.get("complete", True)
        if not isinstance(complete, bool):
            raise ValidationError({"complete": _("Send true or false.")})
        purchase = self.services.record_purchase(
            shop=self.shop,
            member=member,
            external_order_id=data.get("external_order_id"),
            amount=_number(data.get("amount")),
            discount=_number(data.get("discount", 0)),
            paid_amount=_number(data.get("paid_amount")),
            currency=data.get("currency"),
            lines=_lines(data.get("lines") or []),
            store=store,
            channel=data.get("channel", PurchaseChannel.STORE),
            occurred_at=occurred_at,
            complete=complete,
            note=data.get("note", ""),
            actor_label=self._actor(),
        )
        replayed = purchase.replayed
        body = detail_data(purchase, refunds=None if replayed else [])
        body = self.member_data(purchase, body)
        return Response(body, status=status.HTTP_200_OK if replayed else 201)

    @extend_schema(
        summary="Complete a pending purchase (it counts from now)",
        request=None,
        responses={200: PurchaseDetailSerializer, **_errors("complete")},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def complete(self, request, *args, **kwargs):
        purchase = self.services.complete_purchase(
            purchase=self.get_object(), actor_label=self._actor()
        )
        return Response(self.member_data(purchase, detail_data(purchase)))

    @extend_schema(
        summary="Cancel a pending purchase",
        request=PurchaseCancelSerializer,
        responses={200: PurchaseDetailSerializer, **_errors("cancel")},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, *args, **kwargs):
        reason = (
            request.data.get("reason", "") if isinstance(request.data, dict) else ""
        )
        if not isinstance(reason, str) or len(reason) > 200 or "\x00" in reason:
            raise ValidationError({"reason": _("The reason is up to 200 characters.")})
        purchase = self.services.cancel_purchase(
            purchase=self.get_object(), reason=reason, actor_label=self._actor()
        )
        return Response(self.member_data(purchase, detail_data(purchase)))

    @extend_schema(
        summary="Refund a completed purchase, in full or in part",
        description=(
            "Without `amount` and `lines`: the rest of what was paid. With "
            "`amount`: that much. With `lines` ({line id: quantity}): those "
            "items, and their share of what was paid unless `amount` is given. "
            "A retry with the same `external_refund_id` returns the first refund."
        ),
        request=PurchaseRefundSerializer,
        responses={201: RefundResultSerializer, **_errors("refund")},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def refund(self, request, *args, **kwargs):
        data = request.data if isinstance(request.data, dict) else {}
        lines = data.get("lines")
        if isinstance(lines, dict):
            lines = {key: _number(value) for key, value in lines.items()}
        amount = data.get("amount")
        refund = self.services.refund_purchase(
            purchase=self.get_object(),
            amount=_number(amount),
            lines=lines,
            reason=data.get("reason", ""),
            external_refund_id=data.get("external_refund_id", ""),
            actor_label=self._actor(),
        )
        purchase = refund.purchase
        body = {
            "refund": refund_data(refund),
            "purchase": self.member_data(
                purchase, detail_data(purchase, refunds=refunds_of(purchase))
            ),
        }
        return Response(body, status=status.HTTP_201_CREATED)
