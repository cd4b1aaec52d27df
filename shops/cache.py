"""Django's Redis cache, keeping its client.

Django's `RedisCacheClient.get_client()` builds a new `redis.Redis` around the
(shared) connection pool for every cache call, and a Redis client fills a
table of some 170 response callbacks when built: about half a millisecond of
Python per call, and every API request makes two (the throttle, the key's
last-used check). A `redis.Redis` is safe to share between threads (each
command borrows a connection from the pool), so one per pool is kept.

Django's `incr` asks whether the key exists, then increments it: two round
trips for the API throttle's counter on every request. Here a small Lua
script does both in one, atomically, with Django's meaning kept (a missing
key is a ValueError, never created).
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

# KEYS[1] incremented by ARGV[1] if it exists; nil (None) if it does not.
_INCR_EXISTING = """
if redis.call('exists', KEYS[1]) == 1 then
    return redis.call('incrby', KEYS[1], ARGV[1])
end
return false
"""


class ReusingRedisCacheClient(RedisCacheClient):
    def incr(self, key, delta):
        client = self.get_client(key, write=True)
        script = self.__dict__.get("_incr_script")
        if script is None:
            script = self._incr_script = client.register_script(_INCR_EXISTING)
        value = script(keys=[key], args=[delta], client=client)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def get_client(self, key=None, *, write=False):
        clients = self.__dict__.setdefault("_clients", {})
        index = self._get_connection_pool_index(write)
        client = clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = clients[index] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
