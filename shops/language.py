from django.conf import settings
from django.utils import translation


class ShopLanguageMiddleware:
    """A signed-in staff member who has not chosen a language (no language
    cookie) sees the active shop's default language. Goes after
    StaffShopMiddleware, which sets `request.shop`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        shop = getattr(request, "shop", None)
        if shop is not None and settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
            translation.activate(shop.language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
