"""A local HTTP endpoint for webhook tests (127.0.0.1, a random port), and a
switch that runs Celery tasks in-process whatever broker the environment has."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from config.celery import app


class WebhookReceiver:
    """Records every POST; answers with the queued statuses, then `default`."""

    def __init__(self, statuses=(), default: int = 200, delay: float = 0.0):
        self.requests: list[tuple[dict, bytes]] = []
        self.statuses = list(statuses)
        self.default = default
        self.delay = delay
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append((dict(self.headers), body))
                    status = (
                        receiver.statuses.pop(0)
                        if receiver.statuses
                        else receiver.default
                    )
                time.sleep(receiver.delay)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"received" if status < 300 else b"oops")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return True
            time.sleep(0.05)
        return False


@contextmanager
def tasks_in_process():
    """Run `.delay()` in-process, as with no broker, even when CI sets one."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before


@contextmanager
def broker_at(url: str):
    """Point the Celery app (publishing side) at another broker for the block."""
    before = (app.conf.get("broker_write_url"), app.conf.task_always_eager)
    # The write URL, because CELERY_BROKER_URL in the environment outranks
    # broker_url in Celery's configuration.
    app.conf.broker_write_url = url
    app.conf.task_always_eager = False
    _drop_connections()
    try:
        yield
    finally:
        app.conf.broker_write_url, app.conf.task_always_eager = before
        _drop_connections()


def _drop_connections():
    # Forget, not close: kombu keeps the pools in a registry and would hand a
    # closed one back for the same URL.
    app._pool = None
    app.amqp._producer_pool = None
