"""Domain errors: business-rule refusals raised by services of every app.

Plain Python, no DRF: services stay usable from the admin, tasks and commands.
The API's exception handler turns a `DomainError` into the JSON error shape
`{"error": {"code", "message", "fields"}}` with its `status_code`; staff pages
show `message`. Bad field values are Django `ValidationError`s instead.

    class InsufficientPoints(DomainError):
        code = "insufficient_points"
        default_message = _("The member does not have enough points.")
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """A request the business rules refuse; subclasses set `code` and a message."""

    code: str = "refused"
    status_code: int = 409
    default_message: Any = _("This cannot be done in the current state.")

    def __init__(
        self,
        message: Any = None,
        *,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.fields = fields or {}
        super().__init__(str(self.message))


class NotFound(DomainError):
    """A referenced object does not exist in this shop (or belongs to another)."""

    code = "not_found"
    status_code = 404
    default_message = _("Not found.")
