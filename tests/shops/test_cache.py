import uuid

import pytest
from django.conf import settings

from shops.cache import RedisCache


@pytest.mark.broker
def test_the_redis_cache_keeps_one_client_and_still_counts():
    # Given the Redis cache on the broker's Redis
    cache = RedisCache(settings.CELERY_BROKER_URL, {"KEY_PREFIX": "t-cache"})
    key = f"counter-{uuid.uuid4().hex}"

    # When it is written, read and counted several times
    cache.set(key, 1, 60)
    cache.incr(key)
    value = cache.get(key)
    cache.delete(key)

    # Then the values are right and one Redis client served every call
    assert value == 2
    assert cache.get(key) is None
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client


@pytest.mark.broker
def test_counting_is_one_round_trip_and_never_creates_the_counter(monkeypatch):
    cache = RedisCache(settings.CELERY_BROKER_URL, {"KEY_PREFIX": "t-cache"})
    key = f"counter-{uuid.uuid4().hex}"
    client = cache._cache.get_client(write=True)
    assert cache.add(key, 5, 60)
    cache.incr(key, 0)  # the script is loaded on first use
    sent = []
    real = client.execute_command
    monkeypatch.setattr(
        client, "execute_command", lambda *a, **k: sent.append(a[0]) or real(*a, **k)
    )

    assert cache.incr(key) == 6
    assert cache.incr(key, 4) == 10
    assert sent == ["EVALSHA", "EVALSHA"]
    cache.delete(key)
    with pytest.raises(ValueError, match="not found"):
        cache.incr(key)  # as Django's: a missing counter is not created
    assert cache.get(key) is None
