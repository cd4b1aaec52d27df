"""The members app's API: one module per area, each exporting `api_urlpatterns`.

`purchases` is routed by the points app (see `PurchaseViewSet.services`).
"""

from . import members, tags

api_urlpatterns = [
    *members.api_urlpatterns,
    *tags.api_urlpatterns,
]
