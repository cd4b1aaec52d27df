"""Run every bench/bench_*.py (what `make bench` runs).

Each benchmark module has `main()`, which builds its own data and prints its
figures as ratios against a baseline measured in the same run. Everything runs
in a throw-away database: Django's test database for DATABASE_URL (for
PostgreSQL `test_<name>`, dropped at the end), or in-memory SQLite by default.

    .venv/bin/python bench/run.py            # every benchmark
    .venv/bin/python bench/run.py api_auth   # the ones whose name contains it
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main(argv: list[str]) -> int:
    import django

    django.setup()

    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    wanted = argv[1:]
    names = [
        path.stem
        for path in sorted(HERE.glob("bench_*.py"))
        if not wanted or any(w in path.stem for w in wanted)
    ]
    if not names:
        print(f"No benchmark matches {wanted}.")
        return 1

    # debug=False: Django would otherwise keep every query in memory.
    setup_test_environment(debug=False)
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"Benchmarks on {connection.vendor} (throw-away database)")
    try:
        for name in names:
            started = time.perf_counter()
            print(f"\n=== {name}")
            importlib.import_module(name).main()
            print(f"\n({name} took {time.perf_counter() - started:.1f} s)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
