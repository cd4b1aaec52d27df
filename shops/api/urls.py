"""Routes under /api/ (config/urls.py includes this module at `api/`).

`/api/v1/...` holds the shops app's endpoints plus every app's own: an app
exposes routes by defining `api_urlpatterns` in its `<app>/api.py` (or
`<app>/api/__init__.py`), usually `ApiRouter()` registrations, e.g.

    router = ApiRouter()
    router.register("members", MemberViewSet, basename="member")
    api_urlpatterns = router.urls

URLs have no trailing slash; any other path under /api/ is a JSON 404.
"""

from __future__ import annotations

import importlib
import importlib.util

from django.apps import apps
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from shops.api import schema  # noqa: F401  (registers the Api-Key scheme)
from shops.api.errors import handler404
from shops.api.resources import ShopView, StoreViewSet
from shops.api.webhooks import WebhookEndpointViewSet


class ApiRouter(SimpleRouter):
    """No trailing slash, path converters (ids are `<int:pk>`)."""

    def __init__(self):
        super().__init__(trailing_slash=False, use_regex_path=False)


def _app_api_urlpatterns() -> list:
    patterns = []
    for app_config in apps.get_app_configs():
        if app_config.name == "shops":
            continue
        module_name = f"{app_config.name}.api"
        try:
            found = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            continue
        module = importlib.import_module(module_name)
        patterns += getattr(module, "api_urlpatterns", [])
    return patterns


router = ApiRouter()
router.register("stores", StoreViewSet, basename="store")
router.register(
    "webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint"
)

v1_urlpatterns = [
    path("shop", ShopView.as_view(), name="shop"),
    *router.urls,
    *_app_api_urlpatterns(),
]

# The schema and its docs are public: no key, no throttle.
public = {
    "authentication_classes": [],
    "permission_classes": [],
    "throttle_classes": [],
}


@csrf_exempt  # an unknown API path is a 404 for every method, never a CSRF page
def not_found(request, *args, **kwargs):
    return handler404(request, None)


urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(**public), name="api-schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", **public),
        name="api-docs",
    ),
    path("v1/", include(v1_urlpatterns)),
    # Keeps unknown API paths JSON even with DEBUG on (Django's handler404 is
    # only used with DEBUG off) and stops APPEND_SLASH redirects of API calls.
    re_path(r"^.*$", not_found),
]
