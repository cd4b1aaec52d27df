"""A gunicorn server on 127.0.0.1 and wrk as the load client, for the HTTP
benchmarks. wrk (C, event loop) keeps the client's own cost negligible next to
the server on a 2-core machine; a Python client would compete for the cores."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import database_url

ROOT = Path(__file__).resolve().parent.parent
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
# gthread: threads overlap the waits on PostgreSQL; 3 processes on 2 cores
# keep both busy while one holds the GIL.
GUNICORN_ARGS = os.environ.get(
    "BENCH_GUNICORN_ARGS", "--workers 3 --threads 4 --worker-class gthread"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    """Production-like settings for the server process."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-not-a-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        # A real broker: the outbox hand-over publishes to Redis as in
        # production (no worker consumes here; the queue is emptied after).
        "CELERY_BROKER_URL": BENCH_REDIS_URL,
        "REDIS_URL": BENCH_REDIS_URL,
        # The per-key throttle still runs (its Redis counter is part of the
        # cost) but must not turn the load into 429s.
        "API_RATE_PER_KEY": "100000000/min",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    return env


def flush_bench_redis() -> None:
    import redis

    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()


def gunicorn_command(port: int) -> list[str]:
    return [
        str(Path(sys.executable).with_name("gunicorn")),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        *shlex.split(GUNICORN_ARGS),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
    ]


@contextmanager
def gunicorn():
    """Start gunicorn against the current database; yield its base URL."""
    port = free_port()
    command = gunicorn_command(port)
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(
        command, cwd=ROOT, env=server_env(), stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError("gunicorn died:\n" + log.read().decode()[-3000:])
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.seek(0)
        tail = log.read().decode()[-1500:]
        if "Traceback" in tail or "Error" in tail:
            print("  gunicorn log (tail):\n" + tail)
        log.close()


def command_text(port_placeholder: str = "PORT") -> str:
    env = server_env()
    shown = " ".join(
        f"{k}={env[k]}"
        for k in (
            "DATABASE_URL",
            "DEBUG",
            "ALLOWED_HOSTS",
            "CELERY_BROKER_URL",
            "REDIS_URL",
            "API_RATE_PER_KEY",
            "LOG_LEVEL",
        )
    )
    cmd = " ".join(gunicorn_command(0)[1:]).replace(
        "127.0.0.1:0", f"127.0.0.1:{port_placeholder}"
    )
    return f"{shown} SECRET_KEY=... .venv/bin/gunicorn {cmd}"


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    output: str


DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50": %d, "p99": %d, '
    .. '"max": %d, "status": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write,
    e.timeout))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str, lua: str, *, connections: int, seconds: int, threads: int = 2
) -> WrkResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua + DONE_LUA)
    try:
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            url,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        Path(script.name).unlink()
    output = result.stdout + result.stderr
    match = re.search(r"WRKJSON (\{.*\})", output)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed:\n{output[-3000:]}")
    data = json.loads(match.group(1))
    seconds_run = data["duration_us"] / 1e6
    return WrkResult(
        requests=data["requests"],
        seconds=seconds_run,
        rps=data["requests"] / seconds_run,
        p50_ms=data["p50"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        non_2xx=data["status"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        output=output,
    )
