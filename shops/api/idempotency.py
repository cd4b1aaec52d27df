"""`Idempotency-Key` for API writes: a retry gets the first response again.

    class MemberViewSet(ShopScopedViewSet, ...):
        @idempotent(required=True)
        def create(self, request, *args, **kwargs): ...

The record is per (shop, key, endpoint "METHOD path") and holds a fingerprint
of the request body. The handler runs and its response is recorded last, in
the same transaction as its writes: one statement on the happy path, the
insert. A key already recorded makes that insert fail (a concurrent request
with the same key waits on the unique index until the first one commits):
the handler's work rolls back and the first response is replayed, or a 422
when the body differs. So a retry runs the handler once more and keeps
nothing of it; handlers queue their tasks after the commit, never before.
A non-2xx response or an exception rolls everything back and, unless the key
was recorded by an earlier request, is answered as it is: a failed request
stores nothing and can be retried with the same key.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import timedelta
from typing import NamedTuple

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from shops import rawsql
from shops.models import IdempotencyRecord
from shops.tenancy import get_current_shop

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class IdempotencyKeyInvalid(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The Idempotency-Key header must be 1 to 255 characters.")
    default_code = "invalid_idempotency_key"


class IdempotencyKeyRequired(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _(
        "This request needs an Idempotency-Key header, so that a retry is safe."
    )
    default_code = "idempotency_key_required"


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = _(
        "This Idempotency-Key was already used with a different request body."
    )
    default_code = "idempotency_key_reused"


def fingerprint_of(data) -> str:
    """SHA-256 of the body as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(
        data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def endpoint_of(request) -> str:
    endpoint = f"{request.method} {request.path}"
    if len(endpoint) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(endpoint.encode()).hexdigest()
        endpoint = f"{request.method} sha256:{digest}"
    return endpoint


def idempotent(handler=None, *, required: bool = False):
    """Decorate a view's POST handler (`create`, `post`, an `@action`).

    Without the header the handler runs normally, unless `required=True`.
    The schema documents the header and the 422 for decorated handlers.
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(view, request, *args, **kwargs):
            key = request.headers.get(HEADER)
            if key is None:
                if required:
                    raise IdempotencyKeyRequired()
                return func(view, request, *args, **kwargs)
            if not 1 <= len(key) <= MAX_KEY_LENGTH or "\x00" in key:
                raise IdempotencyKeyInvalid()
            return _run_once(
                key=key,
                request=request,
                call=lambda: func(view, request, *args, **kwargs),
            )

        wrapper.idempotency = {"required": required}
        return wrapper

    if handler is not None:
        return decorate(handler)
    return decorate


def _run_once(*, key: str, request, call) -> Response:
    shop = get_current_shop()
    endpoint = endpoint_of(request)
    fingerprint = fingerprint_of(request.data)
    try:
        with transaction.atomic():
            response = call()
            if status.is_success(response.status_code):
                # Written last, in the handler's transaction: a concurrent request
                # with the same key waits here on the unique index until this one
                # commits, then fails and replays it (its own work rolled back).
                _record(
                    shop=shop,
                    key=key,
                    endpoint=endpoint,
                    fingerprint=fingerprint,
                    response=response,
                )
            else:
                # Nothing of a refused request is kept.
                transaction.set_rollback(True)
    except Exception:
        # The key recorded (the insert failed), or a retry refused now where the
        # first request went through (its order number taken, the stock gone):
        # answer as the first request was answered.
        existing = _recorded(key=key, endpoint=endpoint)
        if existing is None:
            raise
        return _replay(existing, fingerprint)
    if not status.is_success(response.status_code):
        # Refused because a request with this key got there first (e.g. the
        # same order number)? Then answer as that request did.
        existing = _recorded(key=key, endpoint=endpoint)
        if existing is not None:
            return _replay(existing, fingerprint)
    return response


class _Recorded(NamedTuple):
    fingerprint: str
    status_code: int
    response_body: object


# Both statements run on every API write, so they are written by hand (an ORM
# query costs more to compile than to run). Raw SQL is outside the tenancy
# guard: each one names the current shop's id explicitly.
_SELECT_RECORD = (
    'SELECT "fingerprint", "status_code", "response_body" '
    'FROM "shops_idempotencyrecord" '
    'WHERE "shop_id" = %s AND "key" = %s AND "endpoint" = %s'
)
_INSERT_RECORD = (
    'INSERT INTO "shops_idempotencyrecord" ("shop_id", "key", "endpoint", '
    '"fingerprint", "status_code", "response_body", "created_at") '
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def _recorded(*, key: str, endpoint: str) -> _Recorded | None:
    with connection.cursor() as cursor:
        rawsql.execute(cursor, _SELECT_RECORD, [get_current_shop().pk, key, endpoint])
        row = cursor.fetchone()
    if row is None:
        return None
    field = IdempotencyRecord._meta.get_field("response_body")
    return _Recorded(row[0], row[1], field.from_db_value(row[2], None, connection))


def _record(*, shop, key: str, endpoint: str, fingerprint: str, response) -> None:
    field = IdempotencyRecord._meta.get_field("response_body")
    params = [shop.pk, key, endpoint, fingerprint, response.status_code]
    params.append(field.get_db_prep_save(response.data, connection))
    params.append(connection.ops.adapt_datetimefield_value(timezone.now()))
    with connection.cursor() as cursor:
        rawsql.execute(cursor, _INSERT_RECORD, params)


def _replay(record: _Recorded, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return Response(
        record.response_body,
        status=record.status_code,
        headers={REPLAYED_HEADER: "true"},
    )


def purge_expired_records(*, older_than: timedelta, batch_size: int = 1000) -> int:
    """Delete every shop's records older than `older_than`; returns how many.

    Platform-wide (called by the beat task), hence `unscoped()`; deletes in
    batches so that no statement holds many row locks for long.
    """
    cutoff = timezone.now() - older_than
    # Every shop on purpose: expiry is the same rule for all.
    expired = IdempotencyRecord.objects.unscoped().filter(created_at__lt=cutoff)
    deleted = 0
    while True:
        ids = list(expired.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        count, _per_model = (
            IdempotencyRecord.objects.unscoped().filter(pk__in=ids).delete()
        )
        deleted += count
