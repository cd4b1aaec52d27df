"""Timing helpers for the benchmarks: figures are ratios against a baseline
measured in the same run, so they compare across machines; never assertions."""

from __future__ import annotations

import gc
import inspect
import os
import re
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connection


@dataclass
class Timing:
    name: str
    samples: list[float]  # seconds, one per call

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)


@contextmanager
def frozen_heap():
    """Time calls as a server worker would run them: what this process holds
    so far (Django, the benchmark's own data) is kept out of the garbage
    collector's full collections, as `gunicorn.conf.py` does with a worker's
    startup objects. Otherwise a full collection, set off by a call's
    allocations, scans the benchmark's data too: about 50 ms added to one call
    in a hundred of the member list."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def measure(name: str, fn: Callable[[], object], *, n: int, warmup: int = 20):
    """Call `fn` n times (after `warmup` calls) and keep each call's duration."""
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter
    with frozen_heap():
        for _ in range(n):
            start = clock()
            fn()
            samples.append(clock() - start)
    return Timing(name, samples)


def measure_interleaved(
    fns: dict[str, Callable[[], object]], *, n: int, warmup: int = 20
) -> list[Timing]:
    """Like `measure`, but alternating the calls, so that a slow moment of the
    machine (another process, a GC pause) hits every contender alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    clock = time.perf_counter
    with frozen_heap():
        for _ in range(n):
            for name, fn in fns.items():
                start = clock()
                fn()
                samples[name].append(clock() - start)
    return [Timing(name, samples[name]) for name in fns]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


def compare(title: str, baseline: Timing, *candidates: Timing) -> None:
    """Print mean/p50/p99 of each and its ratio to the baseline (mean and p50)."""
    print(f"\n{title}  (n={len(baseline.samples)} each)")
    print(f"  {'':44} {'mean':>11} {'p50':>11} {'p99':>11}   ratio")
    for timing in (baseline, *candidates):
        if timing is baseline:
            ratio = "baseline"
        else:
            ratio = (
                f"{timing.mean / baseline.mean:6.2f}x mean, "
                f"{timing.p50 / baseline.p50:.2f}x p50"
            )
        print(
            f"  {timing.name:44} {ms(timing.mean)} {ms(timing.p50)} "
            f"{ms(timing.p99)}   {ratio}"
        )


# --- Options, reproduction, and databases for big generated data -----------

FULL_MEMBERS = 1_000_000
FULL_PURCHASES = 10_000_000
# `make bench` is a casual run: 2% of the sizes. BENCH_SCALE=1 (or
# `bench/run.py --full`) gives the sizes; the full figures are the ones
# that count.
DEFAULT_SCALE = 0.02


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(float(value)) if value else default


def scale() -> float:
    return float(os.environ.get("BENCH_SCALE", "") or DEFAULT_SCALE)


def sizes() -> tuple[int, int]:
    """Members and purchases of the bench shop: BENCH_MEMBERS/BENCH_PURCHASES,
    else the issue's sizes times BENCH_SCALE."""
    factor = scale()
    members = env_int("BENCH_MEMBERS", max(1000, int(FULL_MEMBERS * factor)))
    purchases = env_int("BENCH_PURCHASES", int(FULL_PURCHASES * factor))
    return members, purchases


def keep_data() -> bool:
    return os.environ.get("BENCH_KEEP_DATA", "").lower() in {"1", "true", "yes"}


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def skip_unless_postgres(what: str) -> bool:
    """Print why and return True when the database is not PostgreSQL."""
    if is_postgres():
        return False
    print(
        f"  skipped: {what} needs PostgreSQL (COPY, pgbench, a second process). "
        "Run with DATABASE_URL=postgres://..."
    )
    return True


def reproduce(module: str, *extra: str) -> None:
    """Print the command that reproduces this benchmark with the same sizes."""
    members, purchases = sizes()
    parts = []
    url = os.environ.get("DATABASE_URL", "")
    if url:
        # Never print a password.
        masked = re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)
        parts.append(f"DATABASE_URL={masked}")
    parts += [".venv/bin/python bench/run.py", module]
    parts += [f"--members {members}", f"--purchases {purchases}"]
    if keep_data():
        parts.append("--keep-data")
    parts += list(extra)
    print("  reproduce: " + " ".join(parts))


def database_url() -> str:
    """The current database (the bench's, not the configured one) as a URL, for
    a second process such as gunicorn."""
    s = connection.settings_dict
    user = s.get("USER") or ""
    password = s.get("PASSWORD") or ""
    auth = user + (f":{password}" if password else "") + ("@" if user else "")
    host = s.get("HOST") or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{s['NAME']}"


def libpq_env() -> dict[str, str]:
    """PG* variables pointing at the current database, for psql and pgbench."""
    s = connection.settings_dict
    env = {
        "PGHOST": str(s.get("HOST") or "127.0.0.1"),
        "PGDATABASE": s["NAME"],
    }
    if s.get("PORT"):
        env["PGPORT"] = str(s["PORT"])
    if s.get("USER"):
        env["PGUSER"] = s["USER"]
    if s.get("PASSWORD"):
        env["PGPASSWORD"] = s["PASSWORD"]
    return env


_data_databases: dict[str, bool] = {}  # name -> keep


def create_db_kwargs() -> dict:
    # Django < 6 serializes the whole database into memory unless told not to:
    # with ten million purchases that alone would take minutes.
    params = inspect.signature(connection.creation.create_test_db).parameters
    return {"serialize": False} if params["serialize"].default is True else {}


@contextmanager
def data_database(label: str):
    """Run the body against a database of its own, `<bench db>_<label>`.

    Big generated data (a million members) lives there. With BENCH_KEEP_DATA it
    is kept after the run and reused by the next one (the caller checks its own
    marker); otherwise it is created on first use and dropped at the end of the
    run (`drop_data_databases`). On SQLite the body runs in the bench database.
    """
    if not is_postgres():
        yield
        return
    current = connection.settings_dict["NAME"]
    test_settings = connection.settings_dict.setdefault("TEST", {})
    old_test_name = test_settings.get("NAME")
    # A kept database has its own name, so a casual run never clobbers it.
    name = f"{current}_{label}" + ("_kept" if keep_data() else "")
    test_settings["NAME"] = name
    reuse = keep_data() or name in _data_databases
    try:
        connection.creation.create_test_db(
            verbosity=0, autoclobber=True, keepdb=reuse, **create_db_kwargs()
        )
    finally:
        test_settings["NAME"] = old_test_name
    _data_databases[name] = keep_data()
    try:
        yield
    finally:
        connection.close()
        settings.DATABASES[connection.alias]["NAME"] = current
        connection.settings_dict["NAME"] = current


def drop_data_databases() -> None:
    """Drop the data databases not asked to be kept (run.py calls it last)."""
    current = connection.settings_dict["NAME"]
    for name, keep in _data_databases.items():
        if keep:
            print(f"Kept {name} for the next run (BENCH_KEEP_DATA).")
            continue
        connection.close()
        connection.settings_dict["NAME"] = name
        connection.creation.destroy_test_db(current, verbosity=0)
    _data_databases.clear()


def timed(label: str, fn: Callable[[], object]) -> float:
    """Run fn once, print and return its wall time in seconds."""
    start = time.perf_counter()
    fn()
    took = time.perf_counter() - start
    print(f"  {label:58} {took:9.2f} s")
    return took


def timing_from_ms(name: str, values_ms: list[float]) -> Timing:
    return Timing(name, [v / 1000 for v in values_ms])
