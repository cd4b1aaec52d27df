import re
import threading

import pytest
from django.core import mail
from django.core.cache import cache

from members.services.verification import (
    MAX_SENDS,
    MAX_TRIES,
    CodeInvalid,
    CodeLocked,
    TooManyCodes,
    check_code,
    send_code,
)

SENT: list[dict] = []


class RecordingSms:
    def send(self, *, shop, to, text):
        SENT.append({"to": to, "text": text})


@pytest.fixture(autouse=True)
def clean(settings):
    settings.SMS_BACKEND = "tests.members.test_verification.RecordingSms"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    SENT.clear()
    yield
    cache.clear()


def last_code() -> str:
    return re.search(r"\b(\d{6})\b", SENT[-1]["text"]).group(1)


def send(shop, target="13800138000"):
    send_code(shop=shop, channel="sms", target=target, purpose="login")
    return last_code()


def check(shop, code, target="13800138000"):
    return check_code(
        shop=shop, channel="sms", target=target, purpose="login", code=code
    )


def test_a_code_arrives_by_sms_and_works_once(shop):
    code = send(shop, "138 0013 8000")

    assert SENT[-1]["to"] == "+8613800138000"
    assert check(shop, code, "+8613800138000") is True
    with pytest.raises(CodeInvalid):
        check(shop, code)


def test_a_code_arrives_by_email(shop):
    send_code(shop=shop, channel="email", target="Li@Example.com", purpose="login")

    assert mail.outbox[-1].to == ["li@example.com"]
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    assert check_code(
        shop=shop, channel="email", target="li@example.com", purpose="login", code=code
    )


def test_the_cache_holds_no_plain_code_or_phone(shop):
    code = send(shop)

    stored = [str(cache.get(key)) for key in _all_keys()]
    assert stored
    assert not any(code in value for value in stored)
    assert not any("13800138000" in key for key in _all_keys())


def _all_keys():
    if isinstance(cache._cache, dict):  # local memory
        raw = list(cache._cache)
    else:  # Redis
        raw = [k.decode() for k in cache._cache.get_client().keys("*")]
    # Strip the cache's "prefix:version:" from each key.
    return [k.split(":", 2)[-1] for k in raw]


def test_an_expired_code_is_refused(shop):
    code = send(shop)
    # Expiry is the cache's timeout: drop the key as the cache would.
    for key in _all_keys():
        if key.startswith("verify:code:"):
            cache.delete(key)

    with pytest.raises(CodeInvalid):
        check(shop, code)


def test_the_code_is_set_to_expire_in_ten_minutes(shop, monkeypatch):
    timeouts = {}
    original = cache.set

    def spy(key, value, timeout=None, **kwargs):
        timeouts[key] = timeout
        return original(key, value, timeout, **kwargs)

    monkeypatch.setattr(cache, "set", spy)
    send(shop)

    assert [t for k, t in timeouts.items() if k.startswith("verify:code:")] == [600]


def test_a_sixth_code_in_an_hour_is_refused(shop):
    for _ in range(MAX_SENDS):
        send(shop)

    with pytest.raises(TooManyCodes):
        send(shop)
    assert len(SENT) == MAX_SENDS


def test_five_wrong_tries_lock_even_the_right_code(shop):
    code = send(shop)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(MAX_TRIES - 1):
        with pytest.raises(CodeInvalid):
            check(shop, wrong)

    with pytest.raises(CodeLocked):
        check(shop, wrong)
    with pytest.raises(CodeLocked):
        check(shop, code)
    with pytest.raises(CodeLocked):
        send(shop)


def test_a_code_for_one_shop_or_purpose_does_not_open_another(shop, other_shop):
    code = send(shop)

    with pytest.raises(CodeInvalid):
        check(other_shop, code)
    with pytest.raises(CodeInvalid):
        check_code(
            shop=shop, channel="sms", target="13800138000", purpose="erase", code=code
        )


def test_parallel_sends_never_pass_the_limit(shop):
    refused = []

    def worker():
        try:
            send_code(shop=shop, channel="sms", target="13800138000", purpose="login")
        except TooManyCodes:
            refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(SENT) == MAX_SENDS
    assert len(refused) == 12 - MAX_SENDS


def test_a_bad_phone_is_a_clear_error(shop):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        send_code(shop=shop, channel="sms", target="12", purpose="login")
