"""Serializers of the shops API: translate JSON, no business rules."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from shops.models import Shop, Store, WebhookEndpoint
from shops.services.events import event_type_choices


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_("Stable, machine-readable error code."))
    message = serializers.CharField(help_text=_("What went wrong, for people."))
    fields = serializers.DictField(
        child=serializers.JSONField(),
        help_text=_("Messages per field of the request, for validation errors."),
    )


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (documented on every error response)."""

    error = ErrorDetailSerializer()


class ShopSerializer(serializers.ModelSerializer):
    logo = serializers.SerializerMethodField()

    class Meta:
        model = Shop
        fields = [
            "id",
            "name",
            "slug",
            "currency",
            "time_zone",
            "country",
            "language",
            "brand_color",
            "logo",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_logo(self, shop: Shop) -> str | None:
        if not shop.logo:
            return None
        request = self.context.get("request")
        url = shop.logo.url
        return request.build_absolute_uri(url) if request else url


class StoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["id", "name", "code", "address", "phone", "is_active", "created_at"]
        read_only_fields = fields


class WebhookEndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "events", "is_active", "created_at"]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    """The create response: the only time the signing secret is shown."""

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=500,
        validators=[
            RegexValidator(
                r"^https?://", _("The address must start with https:// or http://.")
            )
        ],
        help_text=_("The https:// address that receives events."),
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=[]),
        min_length=1,
        max_length=100,
        help_text=_('Event types to send, e.g. member.created; ["*"] for all.'),
    )
    description = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read per instance: apps register their event types when they load.
        self.fields["events"].child.choices = event_type_choices()
