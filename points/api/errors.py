"""The points services' refusals as the API's one error shape.

The ledger's refusals (`InsufficientPoints`, `IdempotencyConflict`) are
`DomainError`s already and carry their status. The rewards and cash services
refuse with a `ValidationError` whose `code` says why (and `field`, which
value): a request that is well formed but cannot be done in the current state
(no stock, the limit reached, the order already paid) is a 409, like the
purchases API's `refund_too_large`; a bad value is a 400 with that code and
the field's message.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.core.exceptions import ValidationError

from shops.errors import DomainError

CONFLICT_CODES = frozenset(
    {
        "insufficient_points",
        "idempotency_conflict",
        "out_of_stock",
        "limit_reached",
        "tier_not_allowed",
        "reward_not_available",
        "order_paid",
        "order_closed",
    }
)


@contextmanager
def refusals_as_errors():
    """Run a service call; its coded refusal becomes a `DomainError` (409 for
    a state conflict, else 400). Field-by-field validation errors pass on."""
    try:
        yield
    except DomainError:
        raise
    except ValidationError as exc:
        if hasattr(exc, "error_dict") or len(exc.error_list) != 1:
            raise
        code = exc.error_list[0].code
        if not code or code == "invalid":
            raise
        message = " ".join(exc.messages)
        field = getattr(exc, "field", None)
        raise DomainError(
            message,
            code=code,
            status_code=409 if code in CONFLICT_CODES else 400,
            fields={field: [message]} if field else None,
        ) from exc
