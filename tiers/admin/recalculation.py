"""Whole-shop recalculations: the list, and each one's progress bar (polled by
htmx until it is done)."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display

from shops.admin.base import ShopScopedAdmin
from tiers.models import RecalculationStatus, TierRecalculation

RUNNING = (RecalculationStatus.QUEUED, RecalculationStatus.RUNNING)


@admin.register(TierRecalculation)
class TierRecalculationAdmin(ShopScopedAdmin):
    add_roles = change_roles = delete_roles = frozenset()
    list_display = (
        "created_at",
        "reason",
        "status",
        "steps",
        "members_up",
        "members_down",
        "finished_at",
    )
    list_filter = ("status", "reason")
    ordering = ("-id",)

    @display(description=_("steps"))
    def steps(self, obj):
        return f"{obj.steps_done} / {obj.steps_total}"

    def _recalculation(self, request, object_id) -> TierRecalculation:
        if request.shop is None or not self.has_view_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404
        recalculation = self.get_queryset(request).filter(pk=int(object_id)).first()
        if recalculation is None:
            raise Http404
        return recalculation

    def _page(self, request, template, recalculation):
        return TemplateResponse(
            request,
            f"admin/tiers/recalculation/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": str(recalculation),
                "recalculation": recalculation,
                "running": recalculation.status in RUNNING,
            },
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self._page(request, "page.html", self._recalculation(request, object_id))

    def status_view(self, request, object_id):
        """The progress bar alone, polled by htmx; the whole page once finished."""
        recalculation = self._recalculation(request, object_id)
        response = self._page(request, "progress.html", recalculation)
        if recalculation.status not in RUNNING:
            response["HX-Refresh"] = "true"
        return response

    def get_urls(self):
        return [
            path(
                "<int:object_id>/status/",
                self.admin_site.admin_view(self.status_view),
                name="tiers_tierrecalculation_status",
            ),
            *super().get_urls(),
        ]
