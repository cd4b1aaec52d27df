"""Refusals of points writes: API errors and form errors at once."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from shops.errors import DomainError


class PointsError(DomainError, ValidationError):
    """A points write the rules refuse.

    Both a `DomainError` (the API answers `{"error": {"code": ...}}` with
    `status_code`) and a Django `ValidationError` (forms and the admin show
    `message`; `exc.code` is the error code).
    """

    def __init__(self, message=None, *, fields=None) -> None:
        message = message if message is not None else self.default_message
        ValidationError.__init__(self, message, code=self.code)
        self.message = message
        self.fields = fields or {}

    def __str__(self) -> str:
        return str(self.message)


class InsufficientPoints(PointsError):
    code = "insufficient_points"
    status_code = 409
    default_message = _("The member does not have enough points to spend.")


class IdempotencyConflict(PointsError):
    code = "idempotency_conflict"
    status_code = 422
    default_message = _(
        "This idempotency key was already used for a different points change."
    )
