"""Cursor pagination: stable pages over the primary key."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.pagination import CursorPagination


class InvalidCursor(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The cursor is not valid; use the next or previous link.")
    default_code = "invalid_cursor"


class IdCursorPagination(CursorPagination):
    """Stable cursor pages over the primary key; lists never skip or repeat rows.

    `page_size` (1..200) sets the page length; `next`/`previous` carry the cursor.
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise InvalidCursor() from None
        ordering = self.ordering
        first = ordering if isinstance(ordering, str) else ordering[0]
        orders_by_id = first.lstrip("-") in ("id", "pk")
        if orders_by_id and cursor is not None and cursor.position is not None:
            # The position is compared with the id column: anything but a number
            # would make the database refuse the query (a 500).
            position = cursor.position
            if not (position.isascii() and position.isdigit() and len(position) < 19):
                raise InvalidCursor()
        return cursor
