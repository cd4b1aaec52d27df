"""The points app's API: a member's points, rewards and redemptions (see
`points.api.points` and `points.api.rewards`). It also routes `purchases`: the
members app's `PurchaseViewSet` with the settling services (figures, tier,
points in one transaction), see `points.services.settlement`, whose responses
carry the member's new tier and points."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view

from members.api.purchases import PurchaseViewSet, _errors
from points.services import settlement
from shops.api.urls import ApiRouter

from .figures import account_of, balance_data
from .points import MemberPointsViewSet
from .purchases import (
    SettledPurchaseDetailSerializer,
    SettledRefundResultSerializer,
    entry_data,
    tier_data,
)
from .rewards import RedemptionViewSet, RewardViewSet


@extend_schema_view(
    create=extend_schema(
        responses={
            201: SettledPurchaseDetailSerializer,
            200: OpenApiResponse(
                SettledPurchaseDetailSerializer, "This order was recorded before."
            ),
            **_errors("create"),
        }
    ),
    complete=extend_schema(
        responses={200: SettledPurchaseDetailSerializer, **_errors("complete")}
    ),
    cancel=extend_schema(
        responses={200: SettledPurchaseDetailSerializer, **_errors("cancel")}
    ),
    refund=extend_schema(
        responses={201: SettledRefundResultSerializer, **_errors("refund")}
    ),
)
class SettledPurchaseViewSet(PurchaseViewSet):
    services = settlement

    def member_data(self, purchase, body: dict) -> dict:
        """The member's tier and points after this request, beside their
        figures: the tier from the settlement's `tier_change` (else the
        member's current one), the points entry it wrote, and the account row
        read once."""
        member = purchase.member
        if not member._state.fields_cache.get("shop"):
            member.shop = self.shop  # the key's shop: no query for it
        body["member"]["tier"] = tier_data(purchase)
        account = getattr(purchase, "points_account", None)
        points = balance_data(account or account_of(purchase.member_id))
        points["entry"] = entry_data(getattr(purchase, "points_entry", None))
        body["member"]["points"] = points
        return body


router = ApiRouter()
router.register("purchases", SettledPurchaseViewSet, basename="purchase")
router.register("members", MemberPointsViewSet, basename="member-points")
router.register("rewards", RewardViewSet, basename="reward")
router.register("redemptions", RedemptionViewSet, basename="redemption")
api_urlpatterns = router.urls
