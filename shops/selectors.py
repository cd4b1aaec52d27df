from django.db.models import QuerySet

from shops.models import Shop, StaffMembership, User


def memberships_for(*, user: User) -> QuerySet[StaffMembership]:
    """A user's active memberships across shops (for the shop switcher).

    Unscoped on purpose: it answers which shops the user may enter.
    """
    return (
        StaffMembership.objects.unscoped()
        .filter(user=user, is_active=True, shop__is_active=True)
        .select_related("shop")
        .order_by("shop__name")
    )


def shops_user_can_enter(*, user: User) -> QuerySet[Shop]:
    if user.is_superuser:
        return Shop.objects.all()
    return Shop.objects.filter(
        staffmembership__user=user,
        staffmembership__is_active=True,
        is_active=True,
    ).distinct()
