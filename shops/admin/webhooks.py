"""Admin for webhooks and the outbox.

Owners manage endpoints (URL, events, signing secret, test button); owners and
managers may read events, deliveries and their attempts, and send a delivery
again. Every write goes through `shops.services.events`.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from shops.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shops.models.events import DeliveryStatus
from shops.services import events as services
from shops.tenancy import shop_scope

from .base import MANAGERS, OWNERS, ShopScopedAdmin, ShopScopedInline, role_allows

RECENT_DELIVERIES = 20


def event_choices():
    return [
        (
            topic,
            topic
            if topic == services.ALL_EVENTS
            else format_lazy("{} ({})", description, topic),
        )
        for topic, description in services.event_type_choices()
    ]


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=event_choices,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_(
            "Which events this address receives. “All events” includes "
            "event types added later."
        ),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "events", "is_active")

    def clean_url(self):
        try:
            return services.clean_webhook_url(self.cleaned_data["url"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc

    def clean_events(self):
        try:
            return services.clean_event_list(self.cleaned_data["events"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc


class ReadOnlyInline(ShopScopedInline):
    view_roles = MANAGERS
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ShopScopedAdmin):
    view_roles = MANAGERS
    add_roles = change_roles = delete_roles = frozenset()


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ShopScopedAdmin):
    form = WebhookEndpointForm
    view_roles = add_roles = change_roles = delete_roles = OWNERS
    list_display = ("url", "event_list", "is_active", "last_delivery")
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    readonly_fields = ("secret", "created_at", "recent_deliveries")
    actions_detail = ("send_test_event",)

    def get_fields(self, request, obj=None):
        fields = ["url", "description", "events", "is_active"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    def get_queryset(self, request):
        # Correlated to each endpoint row, which the outer query already limits
        # to the shop (or, for a superuser's all-shops view, to every shop).
        latest = (
            WebhookDelivery.objects.unscoped()
            .filter(endpoint=OuterRef("pk"))
            .order_by("-id")
            .values("status")[:1]
        )
        return super().get_queryset(request).annotate(last_status=Subquery(latest))

    @display(description=_("Events"))
    def event_list(self, obj):
        return ", ".join(obj.events) if obj.events else "—"

    @display(description=_("Last delivery"))
    def last_delivery(self, obj):
        if not obj.last_status:
            return "—"
        return DeliveryStatus(obj.last_status).label

    @display(description=_("Recent deliveries"))
    def recent_deliveries(self, obj):
        with shop_scope(obj.shop):
            deliveries = list(
                WebhookDelivery.objects.filter(endpoint=obj)
                .select_related("event")
                .prefetch_related("attempts")
                .order_by("-id")[:RECENT_DELIVERIES]
            )
            return render_to_string(
                "admin/shops/webhookendpoint/recent_deliveries.html",
                {"deliveries": deliveries},
            )

    def save_model(self, request, obj, form, change):
        data = {
            "url": obj.url,
            "events": obj.events,
            "description": obj.description,
            "acting_user": request.user,
        }
        if change:
            if obj.shop_id != request.shop.pk:
                raise Http404
            services.update_webhook_endpoint(
                endpoint=obj, is_active=obj.is_active, **data
            )
            return
        created = services.register_webhook_endpoint(shop=request.shop, **data)
        if not obj.is_active:
            services.deactivate_webhook_endpoint(
                endpoint=created, acting_user=request.user
            )
        # The admin goes on with `obj` (its messages, its redirect).
        obj.pk, obj.shop, obj.secret = created.pk, created.shop, created.secret
        obj.created_at, obj._state = created.created_at, created._state

    def has_send_test_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, OWNERS)

    @action(
        description=_("Send test event"),
        permissions=["send_test"],
        url_path="send-test-event",
        icon="send",
    )
    def send_test_event(self, request, object_id):
        endpoint = self.get_object(request, object_id)
        if endpoint is None:
            raise Http404
        if request.method != "POST":
            return TemplateResponse(
                request,
                "admin/shops/webhookendpoint/send_test_event.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "object": endpoint,
                    "title": gettext("Send a test event?"),
                },
            )
        event = services.send_test_event(endpoint=endpoint, acting_user=request.user)
        messages.success(
            request,
            gettext(
                "Test event #%(id)s is on its way to %(url)s. Its delivery "
                "appears below in a moment."
            )
            % {"id": event.pk, "url": endpoint.url},
        )
        return redirect("admin:shops_webhookendpoint_change", endpoint.pk)


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = ("attempted_at", "status_code", "duration_ms", "error", "response_excerpt")
    readonly_fields = fields
    ordering = ("-id",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "event",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status",)
    list_select_related = ("event", "endpoint")
    fields = (
        "event",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    )
    readonly_fields = fields
    inlines = (WebhookAttemptInline,)
    actions = ("retry_now",)

    def has_retry_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, MANAGERS)

    @action(description=_("Retry now"), permissions=["retry"])
    def retry_now(self, request, queryset):
        count = services.retry_webhook_deliveries(
            shop=request.shop, deliveries=queryset, acting_user=request.user
        )
        messages.success(
            request,
            gettext("%(count)d delivery(ies) will be sent again now.")
            % {"count": count},
        )


class WebhookDeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    fields = ("endpoint", "status", "attempt_count", "next_attempt_at", "delivered_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "topic", "created_at", "relayed_at", "processed_at")
    list_filter = ("topic",)
    fields = ("topic", "created_at", "relayed_at", "processed_at", "payload_json")
    readonly_fields = fields
    inlines = (WebhookDeliveryInline,)

    @display(description=_("Payload"))
    def payload_json(self, obj):
        return format_html(
            "<pre class='whitespace-pre-wrap'>{}</pre>",
            json.dumps(obj.payload, indent=2, ensure_ascii=False, default=str),
        )
