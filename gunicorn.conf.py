"""gunicorn's settings (read from the working directory: `gunicorn config.wsgi`).

The command line and GUNICORN_CMD_ARGS override any of them.
"""

import gc
import os

workers = int(os.environ.get("WEB_WORKERS", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
keepalive = 30
# Django is imported once, in the master, and shared by the workers.
preload_app = True


def when_ready(server):
    """In the master, after the app is loaded and before the first fork."""
    from django.db import connections
    from django.urls import get_resolver

    # Import every view now, not on each worker's first request.
    patterns = get_resolver().url_patterns
    server.log.debug("%d URL patterns loaded", len(patterns))
    # Nothing opened here may be shared with the workers.
    connections.close_all()
    # Everything loaded so far lives as long as the process: keep it out of
    # the garbage collector's full collections (about 130,000 objects, 80 ms
    # a collection, a pause that every request in flight would wait out).
    gc.freeze()
