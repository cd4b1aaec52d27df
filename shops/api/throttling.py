"""Rate limit per API key (the `api_key` rate in REST_FRAMEWORK settings).

A fixed window counted with the cache's atomic `incr`: one small round trip
per request, correct under concurrency. (DRF's own throttle keeps every
request's timestamp in one cache value and rewrites it each time: neither
atomic nor cheap at thousands of requests a minute.) Counters live in the
default cache: Redis when REDIS_URL is set, so every web process shares them;
local memory otherwise (one process, development).
"""

from __future__ import annotations

import time

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from shops.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self):
        # Read at request time, not at import, so settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        if self.rate is None or not isinstance(request.auth, ApiKey):
            return True
        now = time.time()
        window = int(now // self.duration)
        key = f"throttle:{self.scope}:{request.auth.prefix}:{window}"
        # One round trip in the common case; the window's first request (or the
        # loser of a race to start it) creates the counter.
        try:
            count = cache.incr(key)
        except ValueError:
            count = 1
            if not cache.add(key, 1, timeout=self.duration + 1):
                count = cache.incr(key)
        self.wait_seconds = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self) -> float:
        return max(self.wait_seconds, 0)
