"""Database helpers shared by the apps: the largest id, and set-based work
split by id ranges over several connections at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection

# Ids are bigints: anything above is nobody's id (and the end of a last range).
MAX_ID = 2**63 - 1

Part = TypeVar("Part")
Result = TypeVar("Result")


def id_ranges(lows: list[int]) -> list[tuple[int, int]]:
    """[low, high) ranges from the first id of each part, the last open-ended."""
    return list(zip(lows, [*lows[1:], MAX_ID], strict=False))


def on_own_connections(
    work: Callable[[Part], Result], parts: Iterable[Part], *, workers: int
) -> list[Result]:
    """`work(part)` for every part, up to `workers` at once, each in a thread
    with a database connection of its own (Django gives every thread one),
    closed when its part is done. Results in the parts' order; the first
    error is raised once the started parts have finished. The parts must not
    wait for each other's rows (disjoint ids), and each commits on its own:
    the caller must not be inside a transaction it expects them to join."""

    def run(part: Part) -> Result:
        try:
            return work(part)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, parts))
