"""Run every bench/bench_*.py (what `make bench` runs).

Each benchmark module has `main()`, which builds its own data and prints its
figures as ratios against a baseline measured in the same run. Everything runs
in a throw-away database: Django's test database for DATABASE_URL (for
PostgreSQL `test_<name>`, dropped at the end), or in-memory SQLite by default.

    .venv/bin/python bench/run.py            # every benchmark
    .venv/bin/python bench/run.py api_auth   # the ones whose name contains it

Sizes of the members benchmarks (also from the environment, see README.md):
    --full                 the issue's sizes: 1M members, 10M purchases
    --scale F              a fraction of those (BENCH_SCALE, default 0.02)
    --members N, --purchases M   exact sizes (BENCH_MEMBERS, BENCH_PURCHASES)
    --keep-data            keep the generated data for the next run
                           (BENCH_KEEP_DATA=1); reused when sizes match
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def parse(argv: list[str]) -> list[str]:
    """Options become environment variables, which the benchmarks read."""
    parser = argparse.ArgumentParser(prog="bench/run.py")
    parser.add_argument("names", nargs="*")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--scale", type=float)
    parser.add_argument("--members", type=int)
    parser.add_argument("--purchases", type=int)
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args(argv)
    if args.full:
        os.environ["BENCH_SCALE"] = "1"
    if args.scale is not None:
        os.environ["BENCH_SCALE"] = str(args.scale)
    if args.members is not None:
        os.environ["BENCH_MEMBERS"] = str(args.members)
    if args.purchases is not None:
        os.environ["BENCH_PURCHASES"] = str(args.purchases)
    if args.keep_data:
        os.environ["BENCH_KEEP_DATA"] = "1"
    return args.names


def main(argv: list[str]) -> int:
    wanted = parse(argv[1:])
    import django

    django.setup()

    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    # In the order named (a benchmark that writes a million rows slows the
    # ones after it for minutes): `run.py purchases_http points tiers`.
    every = [path.stem for path in sorted(HERE.glob("bench_*.py"))]
    names = []
    for part in wanted or [""]:
        names += [name for name in every if part in name and name not in names]
    if not names:
        print(f"No benchmark matches {wanted}.")
        return 1

    # debug=False: Django would otherwise keep every query in memory.
    setup_test_environment(debug=False)
    old_name = connection.settings_dict["NAME"]
    import harness

    connection.creation.create_test_db(
        verbosity=0, autoclobber=True, **harness.create_db_kwargs()
    )
    print(f"Benchmarks on {connection.vendor} (throw-away database)")
    # Other work on the machine skews every figure: say how busy it was.
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"Load average before the run (1, 5, 15 min): {load}; {os.cpu_count()} CPUs")
    try:
        for name in names:
            started = time.perf_counter()
            print(f"\n=== {name}")
            importlib.import_module(name).main()
            load = os.getloadavg()[0]
            took = time.perf_counter() - started
            print(f"\n({name} took {took:.1f} s; load average now {load:.2f})")
    finally:
        harness.drop_data_databases()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
