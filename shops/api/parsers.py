"""The API's only parser: JSON, with bad bodies answered as 400, never 500."""

from __future__ import annotations

import json

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.json import strict_constant


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "request_too_large"


class JSONParser(BaseParser):
    """DRF's JSONParser, plus a size limit and the failures it lets through.

    An unknown charset (LookupError) and very deep nesting (RecursionError)
    are the client's mistakes too.
    """

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit else stream.read()
        if limit and len(raw) > limit:
            raise RequestTooLarge()
        try:
            return json.loads(raw.decode(encoding), parse_constant=strict_constant)
        except (ValueError, LookupError, RecursionError) as exc:
            raise ParseError(
                _("The request body is not valid JSON: %(reason)s")
                % {"reason": str(exc)[:200]}
            ) from None
