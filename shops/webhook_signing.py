"""Webhook signatures: pure functions, no Django, mirrored in the README.

Header: `Regulars-Signature: t=<unix seconds>,v1=<hex>` where
`<hex> = HMAC-SHA256(secret, f"{t}." + raw request body)`. A receiver recomputes
it over the raw bytes it received, compares in constant time, and refuses a
timestamp older than a few minutes (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Regulars-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The value of the `Regulars-Signature` header for `body`."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={timestamp},v1={compute_signature(secret, timestamp, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when `header` signs `body` with `secret` within `tolerance` seconds."""
    timestamp = None
    signatures = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = compute_signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, given) for given in signatures)
