"""The rewards catalogue and redemptions by id.

GET  /api/v1/rewards                  ?member=<id> marks what they can redeem
GET  /api/v1/rewards/{id}
GET  /api/v1/redemptions/{id}
POST /api/v1/redemptions/{id}/cancel  the points come back (same expiry)
"""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from members.models import Member
from points.models import Redemption, Reward
from points.services import rewards
from shops.api.idempotency import idempotent
from shops.api.serializers import ErrorSerializer
from shops.api.views import ShopScopedViewSet
from shops.db import MAX_ID

from .errors import refusals_as_errors
from .figures import account_of, balance_data
from .serializers import (
    CancelInputSerializer,
    RedemptionResultSerializer,
    RedemptionSerializer,
    RewardSerializer,
)

MEMBER_PARAMETER = OpenApiParameter(
    "member",
    OpenApiTypes.INT,
    description=_(
        "A member's id: each reward then says whether they can redeem one now "
        "(`availability`), and why not."
    ),
)


class _MemberQuery(serializers.Serializer):
    member = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID
    )


@extend_schema(tags=["rewards"])
@extend_schema_view(
    list=extend_schema(
        summary="The rewards members see now, cheapest first",
        parameters=[MEMBER_PARAMETER],
        responses={
            200: RewardSerializer(many=True),
            404: OpenApiResponse(
                ErrorSerializer, "No member of this shop has the id in `member`."
            ),
        },
    ),
    retrieve=extend_schema(
        summary="One reward of the shop's catalogue",
        parameters=[MEMBER_PARAMETER],
        responses=RewardSerializer,
    ),
)
class RewardViewSet(ShopScopedViewSet):
    """The shop's rewards catalogue (积分商城)."""

    model = Reward
    serializer_class = RewardSerializer
    filter_backends: list = []
    pagination_class = None

    def _member(self) -> Member | None:
        query = _MemberQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        member_id = query.validated_data.get("member")
        if member_id is None:
            return None
        member = Member.objects.filter(pk=member_id).first()
        if member is None:
            raise Http404
        member.shop = self.shop
        return member

    def list(self, request):
        member = self._member()
        # The catalogue is a short list, read in a few statements whatever its
        # size; it is sorted by price, so it is one page.
        found = rewards.visible_rewards(shop=self.shop, member=member)
        context = {"request": request}
        return Response(RewardSerializer(found, many=True, context=context).data)

    def retrieve(self, request, pk=None):
        member = self._member()
        reward = Reward.objects.prefetch_related("tiers").filter(pk=pk).first()
        if reward is None:
            raise Http404
        if member is not None:
            reward.availability = rewards.reward_availability(
                member=member, reward=reward
            )
        return Response(RewardSerializer(reward, context={"request": request}).data)


@extend_schema(tags=["rewards"])
@extend_schema_view(
    retrieve=extend_schema(summary="One redemption", responses=RedemptionSerializer)
)
class RedemptionViewSet(ShopScopedViewSet, mixins.RetrieveModelMixin):
    """Redemptions of rewards and payments with points, by id."""

    model = Redemption
    serializer_class = RedemptionSerializer
    filter_backends: list = []
    pagination_class = None

    def get_queryset(self):
        return Redemption.objects.select_related("reward")

    def _actor(self) -> str:
        return f"API key {self.api_key.name}"[:100]

    @extend_schema(
        summary="Cancel a redemption: the points come back with their expiry",
        description=(
            "A reward goes back into stock. Cancelling a cancelled redemption "
            "changes nothing and answers as the first time."
        ),
        request=CancelInputSerializer,
        responses={200: RedemptionResultSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        redemption = self.get_object()
        given = CancelInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        with refusals_as_errors():
            redemption = rewards.cancel_redemption(
                redemption=redemption,
                reason=given.validated_data.get("reason", ""),
                actor_label=self._actor(),
            )
        body = RedemptionSerializer(redemption).data
        body["account"] = balance_data(account_of(redemption.member_id))
        return Response(body)
