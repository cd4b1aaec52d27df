"""Rate limit per API key (the `api_key` rate in REST_FRAMEWORK settings).

A fixed window counted with the cache's atomic `incr`: one small round trip
per request, correct under concurrency. (DRF's own throttle keeps every
request's timestamp in one cache value and rewrites it each time: neither
atomic nor cheap at thousands of requests a minute.) Counters live in the
default cache: Redis when REDIS_URL is set, so every web process shares them;
local memory otherwise (one process, development).

At a generous rate a process takes its requests from the counter a few at a
time (`BATCH`, at most one hundredth of the rate): one round trip per batch
instead of one per request on a till's busy key. A process never admits more
than it took, and takes only what the rate has left, so together they admit
at most the rate; requests a process took and did not use in the window are
lost to the others (a hundredth of the rate at most per process).
"""

from __future__ import annotations

import threading
import time

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from shops.models import ApiKey

BATCH = 10

# API key prefix -> [window, requests taken from the counter and not yet used]
_taken: dict[str, list[int]] = {}
_taken_lock = threading.Lock()


def _use_taken(prefix: str, window: int) -> bool:
    with _taken_lock:
        entry = _taken.get(prefix)
        if entry is None or entry[0] != window or entry[1] <= 0:
            return False
        entry[1] -= 1
        return True


def _keep_taken(prefix: str, window: int, count: int) -> None:
    with _taken_lock:
        entry = _taken.get(prefix)
        if entry is None or entry[0] != window:
            _taken[prefix] = [window, count]
        else:
            entry[1] += count


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
        self.wait_seconds = (window + 1) * self.duration - now
        prefix = request.auth.prefix
        if _use_taken(prefix, window):
            return True
        batch = max(1, min(BATCH, self.num_requests // 100))
        key = f"throttle:{self.scope}:{prefix}:{window}"
        # One round trip in the common case; the window's first request (or the
        # loser of a race to start it) creates the counter.
        try:
            count = cache.incr(key, batch)
        except ValueError:
            count = batch
            if not cache.add(key, batch, timeout=self.duration + 1):
                count = cache.incr(key, batch)
        # The requests taken that are within the rate: this one and the rest.
        granted = min(count, self.num_requests) - (count - batch)
        if granted <= 0:
            return False
        if granted > 1:
            _keep_taken(prefix, window, granted - 1)
        return True

    def wait(self) -> float:
        return max(self.wait_seconds, 0)
