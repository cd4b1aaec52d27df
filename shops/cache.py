"""Django's Redis cache, keeping its client.

Django's `RedisCacheClient.get_client()` builds a new `redis.Redis` around the
(shared) connection pool for every cache call, and a Redis client fills a
table of some 170 response callbacks when built: about half a millisecond of
Python per call, and every API request makes two (the throttle, the key's
last-used check). A `redis.Redis` is safe to share between threads (each
command borrows a connection from the pool), so one per pool is kept.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
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
