"""Integrator authentication: `Authorization: Api-Key <key>`, one shop per key.

Keys are hashed at rest by djangorestframework-api-key; the plain key is only
ever hashed and compared by the library, never looked up as text.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from shops.models import ApiKey

KEYWORD = "Api-Key"
# The library's keys are `<8 letters/digits>.<32 letters/digits>`; anything else
# is refused before it reaches the database (a NUL byte would make PostgreSQL fail).
KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{1,16}\.[A-Za-z0-9]{1,128}$")
# Knowing a key was used this minute is enough; a write per request is not.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(BaseAuthentication):
    """Gives `(None, api_key)`: `request.auth` is the `ApiKey`; its shop, the tenant."""

    def authenticate_header(self, request) -> str:
        # A WWW-Authenticate header makes DRF answer 401 instead of 403.
        return KEYWORD

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Send the key as: Authorization: Api-Key <key>.")
            )
        try:
            plain = header[1].decode("ascii")
        except UnicodeDecodeError:
            plain = ""
        if not KEY_FORMAT.match(plain):
            raise exceptions.AuthenticationFailed(_("The API key is not valid."))
        try:
            api_key = ApiKey.unscoped_keyring.get_from_key(plain)
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed(
                _("The API key is not valid or has been revoked.")
            ) from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(_("The API key has expired."))
        if not api_key.shop.is_active:
            raise exceptions.AuthenticationFailed(_("The shop is not active."))
        touch_last_used(api_key)
        return (None, api_key)


def touch_last_used(api_key: ApiKey) -> None:
    """Record use at most once a minute per key, in one conditional UPDATE."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    # Another process may have just written it: the condition makes that a no-op.
    ApiKey.unscoped_keyring.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    api_key.last_used_at = now


class HasShopApiKey(BasePermission):
    """A valid key is required; a read-scope key may only read."""

    message = gettext_lazy("This API key may only read; use a key with write scope.")
    code = "insufficient_scope"

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated()
        if request.method in SAFE_METHODS:
            return True
        return api_key.can_write
