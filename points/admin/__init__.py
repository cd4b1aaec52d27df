"""The points app's admin: the ledger's entries and the member page's points
panel (ledger), the liability report, the rules editor (rules), the rewards
catalogue and redemptions (rewards), and points filters of the member list.

It also re-registers purchases with the settling services (figures, tier,
points in one transaction)."""

from django.contrib import admin

from members.admin.purchases import PurchaseAdmin
from members.models import Purchase
from points.services import settlement

from . import ledger, member_filters, rewards, rules  # noqa: F401


class SettledPurchaseAdmin(PurchaseAdmin):
    services = settlement


admin.site.unregister(Purchase)
admin.site.register(Purchase, SettledPurchaseAdmin)
