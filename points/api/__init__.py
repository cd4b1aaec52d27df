"""The points app's API. It also routes `purchases`: the members app's
`PurchaseViewSet` with the settling services (figures, tier, points in one
transaction), see `points.services.settlement`."""

from members.api.purchases import PurchaseViewSet
from points.services import settlement
from shops.api.urls import ApiRouter


class SettledPurchaseViewSet(PurchaseViewSet):
    services = settlement


router = ApiRouter()
router.register("purchases", SettledPurchaseViewSet, basename="purchase")
api_urlpatterns = router.urls
