from shops.selectors import memberships_for
from shops.tenancy import shop_scope

SESSION_KEY = "active_shop_id"


class StaffShopMiddleware:
    """Set the current shop from the signed-in staff member's active shop.

    The active shop is kept in the session and is always re-checked against
    the user's memberships, so a removed membership takes effect at once.
    Sets `request.shop` (None for a superuser in the all-shops view, or for
    anyone else without a shop), `request.membership` and `request.role`.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.shop = request.membership = request.role = None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)

        wanted = request.session.get(SESSION_KEY)
        memberships = list(memberships_for(user=user))
        membership = next((m for m in memberships if m.shop_id == wanted), None)
        if membership is None and not user.is_superuser and memberships:
            membership = memberships[0]
        if membership is not None:
            request.shop, request.membership, request.role = (
                membership.shop,
                membership,
                membership.role,
            )
        elif user.is_superuser and wanted:
            from shops.models import Shop

            request.shop = Shop.objects.filter(pk=wanted).first()
        request.shops_available = [m.shop for m in memberships]

        if request.shop is None:
            return self.get_response(request)
        with shop_scope(request.shop):
            return self.get_response(request)
