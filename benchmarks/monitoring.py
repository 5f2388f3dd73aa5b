"""What monitoring costs a memory-cache get-hit: with the monitor and without, one run.

Run ``python -m benchmarks.monitoring`` (``--loops`` / ``--repeats`` to change the effort).

Method: 1,000 keys holding a 100-character ``str`` (the cheapest hit, so the largest
relative overhead), read in order, round and round, as in the speed benchmark: one
measurement is a plain ``for`` loop awaiting ``loops`` gets (100,000 by default),
timed with ``time.perf_counter_ns``, all in one ``asyncio.run``. Contenders are
measured in turn within every repeat (the order rotating each time, so drift and
position hit everybody alike), ``gc.collect()`` before each measurement, ``repeats``
times (7 by default); the best and the median of each are reported, and the overhead
is the ratio of each to the unmonitored one.

Contenders:

* **without monitor** — ``InMemoryCache.get`` as it would be without monitoring:
  compiled from the library's own source with the lines between its
  ``# monitor: begin`` / ``# monitor: end`` markers replaced by the one counter
  increment a get paid before monitoring (``self._hits += 1`` on a hit), so nothing
  else differs;
* **with monitor (default)** — an ``InMemoryCache`` as users get it: its own
  ``CachePerformanceMonitor``, whose countdown both counts the gets and picks one in
  ``sample_every`` to time;
* **with monitor, every get timed** — ``sample_every=1``: what per-call timing
  would cost, for comparison.

The budget is an overhead of at most 15 % for the default.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import statistics
import textwrap
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from stratacache import InMemoryCache
from stratacache.monitoring import CachePerformanceMonitor

__all__ = [
    "BUDGET",
    "EVERY_CALL",
    "WITH_MONITOR",
    "WITHOUT_MONITOR",
    "main",
    "render_markdown",
    "run",
    "unmonitored_get",
]

KEY_COUNT = 1_000
CAPACITY = 10_000
TTL_SECONDS = 3600
KEYS = [f"user:{i:06d}" for i in range(KEY_COUNT)]
VALUE = ("The quick brown fox jumps over the lazy dog. " * 3)[:100]
BUDGET = 1.15
"""The most a monitored get-hit may cost, relative to an unmonitored one."""

WITHOUT_MONITOR = "without monitor"
WITH_MONITOR = "with monitor (default)"
EVERY_CALL = "with monitor, every get timed"
ORDER = (WITHOUT_MONITOR, WITH_MONITOR, EVERY_CALL)

_BEGIN, _END = "# monitor: begin", "# monitor: end"

Get = Callable[..., Awaitable[Any]]


class _Baseline(InMemoryCache):
    """An ``InMemoryCache`` with the counter :func:`unmonitored_get` increments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._baseline_gets = 0


def unmonitored_get() -> Get:
    """``InMemoryCache.get`` compiled without its monitoring lines (in the library's globals).

    The monitoring block becomes ``self._baseline_gets += 1``: the pre-monitoring get
    counted each hit with one such increment, which the countdown now replaces.
    Bind it to a :class:`_Baseline`.
    """
    function: Any = InMemoryCache.get
    lines = textwrap.dedent(inspect.getsource(function)).splitlines()
    begins = [i for i, line in enumerate(lines) if _BEGIN in line]
    ends = [i for i, line in enumerate(lines) if _END in line]
    if len(begins) != 1 or len(ends) != 1 or begins[0] > ends[0]:
        raise RuntimeError(
            f"InMemoryCache.get must hold one {_BEGIN!r} ... {_END!r} block; "
            "the benchmark strips it to measure the unmonitored get"
        )
    indent = lines[begins[0]][: len(lines[begins[0]]) - len(lines[begins[0]].lstrip())]
    kept = [*lines[: begins[0]], f"{indent}self._baseline_gets += 1", *lines[ends[0] + 1 :]]
    namespace: dict[str, Any] = {}
    code = compile("\n".join(kept) + "\n", inspect.getfile(function), "exec")
    exec(code, dict(function.__globals__), namespace)
    stripped: Get = namespace["get"]
    return stripped


def _build(name: str) -> tuple[InMemoryCache, Get]:
    if name == WITHOUT_MONITOR:
        baseline = _Baseline(CAPACITY, TTL_SECONDS)
        return baseline, unmonitored_get().__get__(baseline)
    if name == EVERY_CALL:
        monitor = CachePerformanceMonitor(sample_every=1)
        cache = InMemoryCache(CAPACITY, TTL_SECONDS, performance_monitor=monitor)
        return cache, cache.get
    cache = InMemoryCache(CAPACITY, TTL_SECONDS)
    return cache, cache.get


async def _measure(get: Get, keys: Sequence[str]) -> int:
    start = time.perf_counter_ns()
    for key in keys:
        await get(key)
    return time.perf_counter_ns() - start


async def _run_async(loops: int, repeats: int) -> dict[str, list[float]]:
    keys = (KEYS * (loops // KEY_COUNT + 1))[:loops]
    contenders = {name: _build(name) for name in ORDER}
    for cache, get in contenders.values():
        for key in KEYS:
            await cache.set(key, VALUE)
        for key in KEYS:
            if await get(key) != VALUE:
                raise RuntimeError(f"{key!r} missing after set")
    times: dict[str, list[float]] = {name: [] for name in ORDER}
    for repeat in range(repeats):
        shift = repeat % len(ORDER)
        for name in ORDER[shift:] + ORDER[:shift]:
            gc.collect()
            elapsed = await _measure(contenders[name][1], keys)
            times[name].append(elapsed / loops)
    # Every get hit, and was counted: by the baseline's counter, or the cache and its monitor.
    expected = len(KEYS) + repeats * loops
    for name, (cache, _get) in contenders.items():
        if isinstance(cache, _Baseline):
            counted = {"baseline": cache._baseline_gets}
        else:
            counted = {
                "get_stats": cache.get_stats()["hits"],
                "monitor": cache.performance_monitor.get_performance_stats()["cache_hits"],
            }
        if set(counted.values()) != {expected}:
            raise RuntimeError(f"{name}: expected {expected:,} hits, counted {counted}")
        await cache.aclose()
    return times


def run(loops: int = 100_000, repeats: int = 7) -> list[dict[str, Any]]:
    """Measure every contender; one row each.

    Rows: ``contender``, ``sample_every`` (None without a monitor), ``best_ns`` and
    ``median_ns`` per get, ``best_ratio`` and ``median_ratio`` (each over the
    unmonitored figure), and ``within_budget`` (the best ratio at most :data:`BUDGET`).
    """
    if loops < 1 or repeats < 1:
        raise ValueError("loops and repeats must be positive")
    times = asyncio.run(_run_async(loops, repeats))
    base_best = min(times[WITHOUT_MONITOR])
    base_median = statistics.median(times[WITHOUT_MONITOR])
    rows: list[dict[str, Any]] = []
    for name in ORDER:
        best, median = min(times[name]), statistics.median(times[name])
        every = {WITHOUT_MONITOR: None, WITH_MONITOR: CachePerformanceMonitor().sample_every}
        rows.append(
            {
                "contender": name,
                "sample_every": every.get(name, 1),
                "best_ns": best,
                "median_ns": median,
                "best_ratio": best / base_best,
                "median_ratio": median / base_median,
                "within_budget": best / base_best <= BUDGET,
            }
        )
    return rows


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One table: ns per get-hit (best and median) and the ratio to the unmonitored get."""
    lines = [
        "**get-hit, 100-char str, InMemoryCache (lru)**\n",
        "| contender | sample_every | best ns/op | median ns/op | best ratio | median ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        every = "—" if row["sample_every"] is None else f"{row['sample_every']:,}"
        lines.append(
            f"| {row['contender']} | {every} | {row['best_ns']:,.0f} | {row['median_ns']:,.0f} "
            f"| {row['best_ratio']:.3f}\u00d7 | {row['median_ratio']:.3f}\u00d7 |"
        )
    default = next(row for row in rows if row["contender"] == WITH_MONITOR)
    verdict = "within" if default["within_budget"] else "OVER"
    lines.append("")
    lines.append(
        f"Default monitoring overhead: {100 * (default['best_ratio'] - 1):+.1f} % (best), "
        f"{100 * (default['median_ratio'] - 1):+.1f} % (median) — {verdict} the "
        f"{100 * (BUDGET - 1):.0f} % budget."
    )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="What monitoring costs a memory get-hit.")
    parser.add_argument("--loops", type=int, default=100_000, help="gets per measurement")
    parser.add_argument("--repeats", type=int, default=7, help="measurements per contender")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(render_markdown(run(args.loops, args.repeats)))
    print(f"{args.loops:,} gets x {args.repeats} repeats; {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
