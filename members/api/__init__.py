"""The members app's API: one module per area, each exporting `api_urlpatterns`."""

from . import members, purchases, tags

api_urlpatterns = [
    *members.api_urlpatterns,
    *purchases.api_urlpatterns,
    *tags.api_urlpatterns,
]
