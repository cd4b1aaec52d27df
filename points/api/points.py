"""A member's points: figures, history, lots, adjustments, points as cash and
redemptions.

    GET  /api/v1/members/{id}/points                 balance, pending, expiring
    GET  /api/v1/members/{id}/points/entries         ?kind=&source= (cursor)
    GET  /api/v1/members/{id}/points/lots            open lots (cursor)
    POST /api/v1/members/{id}/points/adjustments     write key, Idempotency-Key
    POST /api/v1/members/{id}/points/quote           what an order may use
    POST /api/v1/members/{id}/points/pay             write key, Idempotency-Key
    GET  /api/v1/members/{id}/redemptions            (cursor)
    POST /api/v1/members/{id}/redemptions            write key, Idempotency-Key
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from members.models import Member
from points.models import (
    EntryKind,
    EntrySource,
    PointsEntry,
    PointsLot,
    Redemption,
    Reward,
)
from points.services import cash, ledger, rewards
from shops.api.idempotency import idempotent
from shops.api.pagination import IdCursorPagination
from shops.api.serializers import ErrorSerializer
from shops.api.views import ShopScopedViewSet
from shops.models import Store

from .errors import refusals_as_errors
from .figures import account_and_member, account_of, balance_data, points_data
from .serializers import (
    AdjustmentSerializer,
    EntryResultSerializer,
    PayInputSerializer,
    PointsAccountSerializer,
    PointsEntrySerializer,
    PointsLotSerializer,
    QuoteInputSerializer,
    QuoteSerializer,
    RedemptionInputSerializer,
    RedemptionResultSerializer,
    RedemptionSerializer,
)


def conflict(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description)


INSUFFICIENT = "`insufficient_points`: the member cannot spend that many points now."


class EntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=EntryKind.choices)
    source = django_filters.ChoiceFilter(choices=EntrySource.choices)

    class Meta:
        model = PointsEntry
        fields: list = []


class OldestFirstPagination(IdCursorPagination):
    ordering = "id"


def _filtered(filterset):
    if not filterset.is_valid():
        raise serializers.ValidationError(filterset.errors)
    return filterset.qs


class MemberPointsViewSet(ShopScopedViewSet):
    """A member's points (积分) and redemptions. Another shop's member is a 404."""

    model = Member
    filter_backends: list = []
    pagination_class = None

    def get_serializer_class(self):
        # Read by DRF outside the handlers (e.g. the browsable API's forms).
        return {
            "adjustments": AdjustmentSerializer,
            "quote": QuoteInputSerializer,
            "pay": PayInputSerializer,
            "redeem": RedemptionInputSerializer,
            "entries": PointsEntrySerializer,
            "lots": PointsLotSerializer,
            "redemptions": RedemptionSerializer,
        }.get(self.action, PointsAccountSerializer)

    def _actor(self) -> str:
        return f"API key {self.api_key.name}"[:100]

    def _member(self, pk) -> Member:
        member = Member.objects.filter(pk=pk).first()
        if member is None:
            raise Http404
        member.shop = self.shop  # the key's shop: no query for it later
        return member

    def _with_account(self, member, data: dict, **kwargs) -> Response:
        """`data` (a written entry or redemption) and the member's points after
        it (the account row, read once)."""
        return Response(
            {**data, "account": balance_data(account_of(member.pk))}, **kwargs
        )

    def _store(self, store_id):
        if store_id is None:
            return None
        store = Store.objects.filter(pk=store_id).first()
        if store is None:
            raise ValidationError({"store": _("No store of this shop has this id.")})
        return store

    # ------------------------------------------------------------- figures

    @extend_schema(
        tags=["points"],
        summary="A member's points: balance, pending, spendable, expiring soon",
        responses={200: PointsAccountSerializer},
    )
    @action(detail=True, methods=["get"], url_path="points")
    def points(self, request, pk=None):
        # Built by hand in the serializer's shape (a POS reads it at every
        # sale): one statement, no serializer run per request.
        return Response(points_data(self.shop, pk))

    @extend_schema(
        tags=["points"],
        summary="A member's points history, newest first",
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=EntryKind.values),
            OpenApiParameter("source", OpenApiTypes.STR, enum=EntrySource.values),
        ],
        responses=PointsEntrySerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="points/entries",
        pagination_class=IdCursorPagination,
    )
    def entries(self, request, pk=None):
        _member, account = account_and_member(pk)
        entries = PointsEntry.objects.none()
        if account is not None:
            entries = PointsEntry.objects.filter(account=account).select_related(
                "acting_user"
            )
        entries = _filtered(EntryFilter(request.query_params, queryset=entries))
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(PointsEntrySerializer(page, many=True).data)

    @extend_schema(
        tags=["points"],
        summary="A member's open lots (points not yet spent or expired), oldest first",
        responses=PointsLotSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="points/lots",
        pagination_class=OldestFirstPagination,
    )
    def lots(self, request, pk=None):
        _member, account = account_and_member(pk)
        lots = PointsLot.objects.none()
        if account is not None:
            lots = PointsLot.objects.filter(account=account, remaining__gt=0)
        page = self.paginate_queryset(lots)
        context = {"now": timezone.now()}
        return self.get_paginated_response(
            PointsLotSerializer(page, many=True, context=context).data
        )

    # ------------------------------------------------------------- writes

    @extend_schema(
        tags=["points"],
        summary="Add or take away points by hand, with a reason",
        description=(
            "A positive `points` adds a lot (it expires by the shop's policy); a "
            "negative one takes spendable points, oldest expiry first."
        ),
        request=AdjustmentSerializer,
        responses={201: EntryResultSerializer, 409: conflict(INSUFFICIENT)},
    )
    @action(detail=True, methods=["post"], url_path="points/adjustments")
    @idempotent(required=True)
    def adjustments(self, request, pk=None):
        member = self._member(pk)
        given = AdjustmentSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        with refusals_as_errors():
            entry = ledger.adjust(
                member=member,
                points=given.validated_data["points"],
                reason=given.validated_data["reason"],
                actor_label=self._actor(),
            )
        data = PointsEntrySerializer(entry).data
        return self._with_account(member, data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["points"],
        summary="How many points an order may use, and what they are worth",
        description=(
            "Nothing is spent. With `points`: whether the member may pay that many "
            "towards this order. A total of 0 or less, or more points than the "
            "order allows, is a 400."
        ),
        request=QuoteInputSerializer,
        responses={200: QuoteSerializer},
    )
    @action(detail=True, methods=["post"], url_path="points/quote")
    def quote(self, request, pk=None):
        member = self._member(pk)
        given = QuoteInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        with refusals_as_errors():
            figures = cash.quote(
                member=member,
                order_total=given.validated_data["order_total"],
                points=given.validated_data.get("points"),
            )
        return Response(QuoteSerializer(figures).data)

    @extend_schema(
        tags=["points"],
        summary="Pay part of an order with points",
        description=(
            "Paying again for the same `external_order_id` with the same figures "
            "returns the first payment (200); with other figures it is a 409. "
            "Cancelling or refunding the purchase with this order number gives "
            "the points back."
        ),
        request=PayInputSerializer,
        responses={
            201: RedemptionResultSerializer,
            200: OpenApiResponse(
                RedemptionResultSerializer, "This order was paid with points before."
            ),
            409: conflict(
                f"{INSUFFICIENT} `idempotency_conflict`: this order was paid "
                "with other figures."
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="points/pay")
    @idempotent(required=True)
    def pay(self, request, pk=None):
        member = self._member(pk)
        given = PayInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        with refusals_as_errors():
            redemption = cash.pay_with_points(
                member=member,
                external_order_id=data["external_order_id"],
                order_total=data["order_total"],
                points=data["points"],
                store=self._store(data.get("store")),
                actor_label=self._actor(),
            )
        return self._redemption_response(member, redemption)

    def _redemption_response(self, member, redemption):
        replayed = getattr(redemption, "replayed", False)
        return self._with_account(
            member,
            RedemptionSerializer(redemption).data,
            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
        )

    # ------------------------------------------------------------- rewards

    @extend_schema(
        tags=["rewards"],
        summary="A member's redemptions (rewards and points paid), newest first",
        responses=RedemptionSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="redemptions",
        pagination_class=IdCursorPagination,
    )
    def redemptions(self, request, pk=None):
        member = self._member(pk)
        redemptions = Redemption.objects.filter(member=member).select_related("reward")
        page = self.paginate_queryset(redemptions)
        return self.get_paginated_response(RedemptionSerializer(page, many=True).data)

    @extend_schema(
        tags=["rewards"],
        summary="Redeem a reward for a member",
        description=(
            "Takes the reward's points times `quantity` (oldest expiry first) and "
            "one from its stock per item. An unknown reward, or another shop's, "
            "is a 404."
        ),
        request=RedemptionInputSerializer,
        responses={
            201: RedemptionResultSerializer,
            409: conflict(
                "`reward_not_available` (inactive, not yet or no longer "
                "redeemable), `out_of_stock`, `tier_not_allowed`, "
                f"`limit_reached` (the most per member), {INSUFFICIENT}"
            ),
        },
    )
    @redemptions.mapping.post
    @idempotent(required=True)
    def redeem(self, request, pk=None):
        member = self._member(pk)
        given = RedemptionInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        reward = Reward.objects.filter(pk=data["reward"]).first()
        if reward is None:
            raise Http404
        with refusals_as_errors():
            redemption = rewards.redeem_reward(
                member=member,
                reward=reward,
                quantity=data["quantity"],
                store=self._store(data.get("store")),
                actor_label=self._actor(),
            )
        return self._redemption_response(member, redemption)
