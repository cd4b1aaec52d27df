"""The points app's admin. It also re-registers purchases with the settling
services (figures, tier, points in one transaction)."""

from django.contrib import admin

from members.admin.purchases import PurchaseAdmin
from members.models import Purchase
from points.services import settlement


class SettledPurchaseAdmin(PurchaseAdmin):
    services = settlement


admin.site.unregister(Purchase)
admin.site.register(Purchase, SettledPurchaseAdmin)
