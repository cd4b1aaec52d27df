"""Tiers API: the ladder, a member's tier history and the manual tier.

    GET    /api/v1/tiers                          the ladder and the policy
    GET    /api/v1/members/{id}/tier-history      newest first, cursor pages
    PUT    /api/v1/members/{id}/manual-tier       (write key) lock a tier
    DELETE /api/v1/members/{id}/manual-tier       (write key) end the lock

The member resource itself carries the `tier` section (registered in
`tiers.registrations`), and `GET /api/v1/members?tier=<id>` filters by tier.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from members.models import Member
from shops.api.pagination import IdCursorPagination
from shops.api.urls import ApiRouter
from shops.api.views import ShopScopedAPIView, ShopScopedViewSet
from tiers.models import Tier, TierChange
from tiers.services.ladder import entry_tier, ladder_of, policy_of

from .sections import prefetch_member_tiers
from .serializers import (
    LadderSerializer,
    ManualTierSerializer,
    MemberTierSerializer,
    TierChangeSerializer,
)


class LadderView(ShopScopedAPIView):
    """The shop's tiers (等级), lowest rank first, and how members qualify."""

    @extend_schema(
        operation_id="tiers_list",
        tags=["tiers"],
        summary="The tier ladder and the qualification policy",
        responses=LadderSerializer,
    )
    def get(self, request):
        shop = self.shop
        entry = entry_tier(shop)
        context = {
            "request": request,
            "entry_tier_id": entry.pk if entry is not None else None,
        }
        ladder = {"policy": policy_of(shop), "tiers": ladder_of(shop)}
        return Response(LadderSerializer(ladder, context=context).data)


@extend_schema(tags=["members"])
class MemberTierViewSet(ShopScopedViewSet):
    """A member's tier history and manual tier; routed under /members/{id}/."""

    model = Member
    serializer_class = MemberTierSerializer
    filter_backends: list = []
    pagination_class = None

    def _actor(self) -> str:
        return f"API key {self.api_key.name}"[:100]

    def _tier_response(self, member) -> Response:
        member = prefetch_member_tiers(Member.objects.filter(pk=member.pk)).get()
        return Response(
            MemberTierSerializer(member, context={"request": self.request}).data
        )

    @extend_schema(
        summary="The member's tier changes, newest first",
        description=(
            "Every move between tiers: from, to, why (purchase, refund, end of "
            "period, recalculation, rule change, staff), the figures it was "
            "decided on, when and by whom."
        ),
        responses=TierChangeSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="tier-history",
        pagination_class=IdCursorPagination,
    )
    def tier_history(self, request, pk=None):
        member = self.get_object()
        changes = TierChange.objects.filter(shop=self.shop, member=member)
        changes = changes.select_related("from_tier", "to_tier", "acting_user")
        page = self.paginate_queryset(changes)
        return self.get_paginated_response(TierChangeSerializer(page, many=True).data)

    @extend_schema(
        summary="Lock the member's tier (manual tier)",
        description=(
            "`fixed` keeps the member in exactly this tier while locked; "
            "`floor` keeps them at least in it (purchases may still move them "
            "up). Without `until` the lock is for good. The move, if any, is in "
            "the member's tier history with the reason."
        ),
        request=ManualTierSerializer,
        responses=MemberTierSerializer,
        methods=["PUT"],
    )
    @extend_schema(
        summary="End the member's manual tier",
        description=(
            "Normal qualification resumes at once; ending a lock that does not "
            "exist changes nothing."
        ),
        request=None,
        responses={200: MemberTierSerializer},
        methods=["DELETE"],
    )
    @action(detail=True, methods=["put", "delete"], url_path="manual-tier")
    def manual_tier(self, request, pk=None):
        from tiers.services.manual import clear_manual_tier, set_manual_tier

        member = self.get_object()
        if request.method == "DELETE":
            clear_manual_tier(member=member, actor_label=self._actor())
            return self._tier_response(member)
        given = ManualTierSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        # Another shop's tier answers exactly like a missing one.
        tier = Tier.objects.filter(shop=self.shop, pk=data["tier"]).first()
        if tier is None:
            raise ValidationError({"tier": _("No tier of this shop has this id.")})
        set_manual_tier(
            member=member,
            tier=tier,
            mode=data["mode"],
            until=data["until"],
            reason=data["reason"],
            actor_label=self._actor(),
        )
        return self._tier_response(member)


router = ApiRouter()
router.register("members", MemberTierViewSet, basename="member-tier")

api_urlpatterns = [
    path("tiers", LadderView.as_view(), name="tiers"),
    *router.urls,
]
