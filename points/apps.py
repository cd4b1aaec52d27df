from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "points"
    verbose_name = _("Points")

    def ready(self):
        from points import events

        events.register()
        from points import registrations

        registrations.register()
        from points.imports import register as register_opening_balances

        register_opening_balances()
