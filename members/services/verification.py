"""One-time codes that prove a member holds a phone or an email address.

    send_code(shop=shop, channel="sms", target="13800138000", purpose="login")
    check_code(shop=shop, channel="sms", target="13800138000", purpose="login",
               code="123456")   # True, or raises CodeInvalid / CodeLocked

A code is 6 digits, lives 10 minutes, works once, and sits in the cache only
as an HMAC (keyed with SECRET_KEY) so a cache dump reveals no code. Cache keys
carry an HMAC of the target too, not the phone number itself.

Limits are counted with atomic cache counters (`add` then `incr`: INCRBY on
Redis, a lock in local memory), never read-modify-write, so parallel requests
cannot slip past them: at most `MAX_SENDS` codes per target an hour, and
`MAX_TRIES` wrong tries lock the target for `LOCK_SECONDS` (no checks, no new
codes). DRF's throttling is not used for this: its counters are not atomic.

Sending goes through a seam: email with Django's `send_mail` (so any
EMAIL_BACKEND, e.g. anymail), SMS with the class named by the setting
`SMS_BACKEND` (default `ConsoleSmsBackend`, which logs the message).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.utils import translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.validation import normalize_email, normalize_phone
from shops.errors import DomainError
from shops.models import Shop

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
CODE_SECONDS = 10 * 60
MAX_SENDS = 5
SEND_WINDOW_SECONDS = 60 * 60
MAX_TRIES = 5
LOCK_SECONDS = CODE_SECONDS
CHANNELS = ("sms", "email")
DEFAULT_SMS_BACKEND = "members.services.verification.ConsoleSmsBackend"


class TooManyCodes(DomainError):
    code = "too_many_codes"
    status_code = 429
    default_message = _(
        "Too many codes were sent to this address. Try again in an hour."
    )


class CodeLocked(DomainError):
    code = "code_locked"
    status_code = 429
    default_message = _(
        "Too many wrong codes. Wait ten minutes, then ask for a new code."
    )


class CodeInvalid(DomainError):
    code = "code_invalid"
    status_code = 400
    default_message = _("This code is wrong or has expired. Ask for a new one.")


class ConsoleSmsBackend:
    """Writes the message to the log: development, tests, the demo."""

    def send(self, *, shop: Shop, to: str, text: str) -> None:
        logger.info("SMS for shop %s to %s: %s", shop.pk, to, text)


def get_sms_backend():
    path = getattr(settings, "SMS_BACKEND", "") or DEFAULT_SMS_BACKEND
    return import_string(path)()


def normalize_target(*, shop: Shop, channel: str, target: str) -> str:
    if channel == "sms":
        return normalize_phone(target, region=shop.country)
    if channel == "email":
        return normalize_email(target)
    raise ValidationError({"channel": _("Choose sms or email.")})


def _digest(*parts: object) -> str:
    message = "\x1f".join(str(p) for p in parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _keys(*, shop: Shop, channel: str, target: str, purpose: str) -> dict[str, str]:
    who = _digest("target", shop.pk, channel, target)[:32]
    return {
        "code": f"verify:code:{purpose}:{who}",
        "tries": f"verify:tries:{purpose}:{who}",
        # Sends and the lock count per target, whatever the purpose.
        "sends": f"verify:sends:{who}",
        "lock": f"verify:lock:{who}",
    }


def _code_digest(*, shop, channel, target, purpose, code) -> str:
    return _digest("code", shop.pk, channel, target, purpose, code)


def _bump(key: str, timeout: int) -> int:
    """Atomically add one to `key`, creating it with `timeout` if missing."""
    for _attempt in range(3):
        cache.add(key, 0, timeout)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr: start again
            continue
    raise RuntimeError(f"cache counter {key} keeps vanishing")


def _deliver(*, shop: Shop, channel: str, target: str, code: str) -> None:
    with translation.override(shop.language):
        text = gettext(
            "%(shop)s: your code is %(code)s. It expires in 10 minutes. "
            "Do not share it."
        ) % {"shop": shop.name, "code": code}
        if channel == "email":
            subject = gettext("Your code for %(shop)s") % {"shop": shop.name}
            send_mail(subject, text, None, [target])
        else:
            get_sms_backend().send(shop=shop, to=target, text=text)


def send_code(*, shop: Shop, channel: str, target: str, purpose: str) -> str:
    """Send a new code to `target`; returns the normalised target.

    A new code replaces the previous one for the same purpose.
    """
    target = normalize_target(shop=shop, channel=channel, target=target)
    keys = _keys(shop=shop, channel=channel, target=target, purpose=purpose)
    if cache.get(keys["lock"]):
        raise CodeLocked()
    if _bump(keys["sends"], SEND_WINDOW_SECONDS) > MAX_SENDS:
        raise TooManyCodes()
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    digest = _code_digest(
        shop=shop, channel=channel, target=target, purpose=purpose, code=code
    )
    cache.set(keys["code"], digest, CODE_SECONDS)
    _deliver(shop=shop, channel=channel, target=target, code=code)
    return target


def check_code(
    *, shop: Shop, channel: str, target: str, purpose: str, code: str
) -> bool:
    """True once for the right code; otherwise raises and counts the try."""
    target = normalize_target(shop=shop, channel=channel, target=target)
    keys = _keys(shop=shop, channel=channel, target=target, purpose=purpose)
    if cache.get(keys["lock"]):
        raise CodeLocked()
    stored = cache.get(keys["code"])
    given = _code_digest(
        shop=shop,
        channel=channel,
        target=target,
        purpose=purpose,
        code=str(code or "").strip(),
    )
    # delete() tells whether this call removed the code: of two requests
    # with the right code, only one gets True.
    if (
        stored is not None
        and hmac.compare_digest(stored, given)
        and cache.delete(keys["code"])
    ):
        cache.delete(keys["tries"])
        return True
    if stored is None:
        raise CodeInvalid()
    if _bump(keys["tries"], CODE_SECONDS) >= MAX_TRIES:
        cache.set(keys["lock"], 1, LOCK_SECONDS)
        cache.delete_many([keys["code"], keys["tries"]])
        raise CodeLocked()
    raise CodeInvalid()
