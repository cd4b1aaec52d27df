"""Webhook endpoints: a shop's URLs that receive the events they subscribe to."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from shops.models import OutboxEvent, Shop, WebhookEndpoint

from .outbox import emit_event
from .registry import ALL_EVENTS, EVENT_TYPES, TEST_TOPIC


def is_refused_host(host: str) -> bool:
    """True when `host` is, or resolves to, an address inside our own network.

    Resolving can only make a URL safe for the moment it is checked (DNS can
    change later), so delivery checks again right before each request.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return True
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            return True
    return False


def clean_webhook_url(url: str) -> str:
    """Return the URL stripped, or raise ValidationError with a plain message."""
    url = (url or "").strip()
    if not url:
        raise ValidationError(_("Enter the address that should receive events."))
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _port = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        raise ValidationError(_("Enter a valid web address.")) from exc
    if parts.scheme not in ("http", "https"):
        raise ValidationError(_("The address must start with https:// or http://."))
    if not host:
        raise ValidationError(_("Enter a valid web address."))
    if parts.username or parts.password:
        raise ValidationError(_("Do not put a user name or password in the address."))
    if not settings.WEBHOOKS_ALLOW_PRIVATE_URLS and is_refused_host(host):
        raise ValidationError(
            _(
                "This address is not reachable from the internet (a local, "
                "private or unknown host). Use a public address."
            )
        )
    return url


def clean_event_list(events) -> list[str]:
    """Return the events as a sorted list without repeats, or raise."""
    if isinstance(events, str):
        events = [events]
    chosen = {str(topic).strip() for topic in (events or []) if str(topic).strip()}
    if not chosen:
        raise ValidationError(_("Choose at least one event to send."))
    if ALL_EVENTS in chosen:
        return [ALL_EVENTS]
    unknown = sorted(chosen - EVENT_TYPES.keys())
    if unknown:
        raise ValidationError(
            _("Unknown event type: %(events)s."),
            params={"events": ", ".join(unknown)},
        )
    return sorted(chosen)


def _validated(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    errors = {}
    for field, clean in (("url", clean_webhook_url), ("events", clean_event_list)):
        try:
            setattr(endpoint, field, clean(getattr(endpoint, field)))
        except ValidationError as exc:
            errors[field] = exc.messages
    try:
        # Field checks (length, URL syntax); the (shop, id) constraint needs no
        # query and would need a shop scope.
        endpoint.full_clean(
            exclude=[*errors, "shop"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return endpoint


@transaction.atomic
def register_webhook_endpoint(
    *,
    shop: Shop,
    url: str,
    events,
    description: str = "",
    acting_user=None,
) -> WebhookEndpoint:
    """Add an endpoint to `shop`; it gets its own signing secret."""
    endpoint = _validated(
        WebhookEndpoint(shop=shop, url=url, events=events, description=description)
    )
    endpoint.save()
    return endpoint


_UNCHANGED = object()


@transaction.atomic
def update_webhook_endpoint(
    *,
    endpoint: WebhookEndpoint,
    url=_UNCHANGED,
    events=_UNCHANGED,
    description=_UNCHANGED,
    is_active=_UNCHANGED,
    acting_user=None,
) -> WebhookEndpoint:
    """Change the given fields of an endpoint; the others stay as they are."""
    changes = {
        "url": url,
        "events": events,
        "description": description,
        "is_active": is_active,
    }
    changed = [field for field, value in changes.items() if value is not _UNCHANGED]
    for field in changed:
        setattr(endpoint, field, changes[field])
    _validated(endpoint)
    if changed:
        endpoint.save(update_fields=changed)
    return endpoint


@transaction.atomic
def deactivate_webhook_endpoint(
    *, endpoint: WebhookEndpoint, acting_user=None
) -> WebhookEndpoint:
    """Stop sending to an endpoint; its deliveries and attempts stay on record."""
    if endpoint.is_active:
        endpoint.is_active = False
        endpoint.save(update_fields=["is_active"])
    return endpoint


@transaction.atomic
def send_test_event(*, endpoint: WebhookEndpoint, acting_user=None) -> OutboxEvent:
    """Emit a `webhook.test` event that goes to this endpoint only."""
    return emit_event(
        shop=endpoint.shop,
        topic=TEST_TOPIC,
        payload={
            "endpoint_id": endpoint.pk,
            "message": "This is a test event from Regulars.",
            "requested_by": acting_user.get_username() if acting_user else None,
        },
    )
