"""One JSON error shape for the whole API, from one exception handler.

    {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}

`fields` maps a field name to its messages (validation errors only). DRF
exceptions, Django's ValidationError / Http404 / PermissionDenied and the
services' `DomainError` all come out this way; anything else is a real bug and
stays a 500 (JSON under /api/, Django's page elsewhere).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.encoding import force_str
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from shops.errors import DomainError

API_PATH_PREFIX = "/api/"

# Codes for DRF exceptions whose default code is not the one we document.
_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, message: Any, fields: dict | None = None) -> dict:
    return {
        "error": {"code": code, "message": force_str(message), "fields": fields or {}}
    }


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(
            error_body(exc.code, exc.message, _plain(exc.fields)),
            status=exc.status_code,
        )
    if isinstance(exc, DjangoValidationError):
        set_rollback()
        return Response(_django_validation_body(exc), status=400)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response.data = _api_exception_body(exc)
    return response


def _api_exception_body(exc: exceptions.APIException) -> dict:
    code = _code_for(exc)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = _plain(
                {k: v for k, v in detail.items() if k != "non_field_errors"}
            )
            general = detail.get("non_field_errors")
            message = (
                " ".join(force_str(m) for m in general)
                if general
                else _("Some fields are not valid.")
            )
            return error_body(code, message, fields)
        messages = detail if isinstance(detail, list) else [detail]
        return error_body(code, " ".join(force_str(m) for m in _flatten(messages)))
    return error_body(code, _message_of(exc.detail))


def _code_for(exc: exceptions.APIException) -> str:
    for exc_class, code in _CODES.items():
        if type(exc) is exc_class:
            return code
    detail_code = getattr(exc.detail, "code", None)
    return str(detail_code or exc.default_code)


def _message_of(detail: Any) -> str:
    if isinstance(detail, dict):
        return " ".join(_message_of(v) for v in detail.values())
    if isinstance(detail, list):
        return " ".join(_message_of(v) for v in detail)
    return force_str(detail)


def _flatten(items: list) -> list:
    flat: list = []
    for item in items:
        if isinstance(item, list | tuple):
            flat.extend(_flatten(list(item)))
        elif isinstance(item, dict):
            flat.extend(_flatten(list(item.values())))
        else:
            flat.append(item)
    return flat


def _plain(value: Any) -> Any:
    """Field messages as plain strings and lists (lazy strings rendered)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return force_str(value)


def _django_validation_body(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        errors = exc.message_dict
        general = errors.pop(NON_FIELD_ERRORS, [])
        message = " ".join(general) if general else _("Some fields are not valid.")
        return error_body("invalid", message, _plain(errors))
    return error_body("invalid", " ".join(exc.messages))


def _is_api(request) -> bool:
    return request.path.startswith(API_PATH_PREFIX)


def handler404(request, exception):
    if _is_api(request):
        return JsonResponse(
            error_body("not_found", _("Not found.")), status=status.HTTP_404_NOT_FOUND
        )
    return defaults.page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return JsonResponse(
            error_body(
                "server_error",
                _("Something went wrong on our side. Please try again later."),
            ),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)
