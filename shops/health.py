"""`/healthz`: is this process able to serve? For load balancers and monitors.

No authentication, no shop, no database writes. 200 when the database answers
and the broker answers (or none is configured: tasks run in-process); 503
otherwise, so that a balancer takes the instance out. The cache is reported but
does not decide the status code.
"""

import logging
import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

logger = logging.getLogger(__name__)

# A monitor calls this often: answer in about this long, even when a service is away.
BROKER_TIMEOUT_SECONDS = 2


def check_database() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.exception("healthz: the database did not answer")
        return "error"
    return "ok"


def check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url:
        return "eager"
    options = {
        **getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
        "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
        "socket_timeout": BROKER_TIMEOUT_SECONDS,
    }
    try:
        with Connection(
            url, connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=options
        ) as connection:
            # No retries: a monitor wants the answer now, not after back-off.
            connection.ensure_connection(max_retries=0)
    except Exception:
        logger.warning("healthz: the broker did not answer", exc_info=True)
        return "error"
    return "ok"


def check_cache() -> str:
    # A key of its own, so that concurrent checks cannot read each other's value.
    token = secrets.token_hex(8)
    key = f"healthz:{token}"
    try:
        cache.set(key, token, timeout=10)
        answered = cache.get(key)
        cache.delete(key)
    except Exception:
        logger.warning("healthz: the cache did not answer", exc_info=True)
        return "error"
    return "ok" if answered == token else "error"


@never_cache
@require_GET
def healthz(request):
    checks = {
        "database": check_database(),
        "broker": check_broker(),
        "cache": check_cache(),
    }
    serving = checks["database"] == "ok" and checks["broker"] in ("ok", "eager")
    healthy = serving and checks["cache"] == "ok"
    body = {"status": "ok" if healthy else "degraded", **checks}
    return JsonResponse(body, status=200 if serving else 503)
