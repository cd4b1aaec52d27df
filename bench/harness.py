"""Timing helpers for the benchmarks: figures are ratios against a baseline
measured in the same run, so they compare across machines; never assertions."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


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


def measure(name: str, fn: Callable[[], object], *, n: int, warmup: int = 20):
    """Call `fn` n times (after `warmup` calls) and keep each call's duration."""
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter
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
