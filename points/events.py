"""The points app's webhook event types, registered when the app is ready.

`points.expired` is one event per account per expiry run (the points that
expired together, as one ledger entry), like the other topics: one event per
ledger entry.
"""

from django.utils.translation import gettext_lazy as _

from shops.services.events import register_event_type

POINTS_EARNED = "points.earned"
POINTS_REDEEMED = "points.redeemed"
POINTS_EXPIRED = "points.expired"
POINTS_REVERSED = "points.reversed"
POINTS_ADJUSTED = "points.adjusted"


def register() -> None:
    register_event_type(POINTS_EARNED, _("A member earned points"))
    register_event_type(POINTS_REDEEMED, _("A member redeemed points"))
    register_event_type(POINTS_EXPIRED, _("A member's points expired"))
    register_event_type(
        POINTS_REVERSED, _("Points were taken back (refund) or given back")
    )
    register_event_type(POINTS_ADJUSTED, _("Staff adjusted a member's points"))


# Registered on import too: the ledger imports this module, so its topics are
# known wherever points are written, whatever the app loading order.
register()
