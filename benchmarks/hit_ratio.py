"""Hit ratios of the memory tier's eviction policies against cachetools and theine.

Run ``python -m benchmarks.hit_ratio`` (``--requests N`` for a quick run). Every trace is
generated from a fixed seed, so two runs replay the same requests; the only run-to-run
noise is Python's per-process string-hash seed, which the sketches (ours and theine's)
hash with.

Traces, each at capacities 1,000 and 10,000 over a 100,000-key universe:

* ``zipf-0.9`` / ``zipf-1.1``: independent requests (IRM) from a Zipf distribution;
  the ``optimum`` column is the IRM bound, the summed probability of the top-C keys.
* ``shift``: Zipf(0.9) whose second half draws from a disjoint, shuffled key set, so
  everything popular goes cold at once (recency wins; frequency history misleads).
* ``scan``: Zipf(0.9) with a burst of ``5 x capacity`` never-seen keys read once in
  sequence at 40% of the trace (flushes an LRU; a frequency filter should shrug).

The policies are driven through :class:`MemoryTier` exactly as the caches drive it: a
request is ``lookup`` and, on a miss, ``store``.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cachetools
import theine

from stratacache.tiers._memory import Eviction, MemoryTier

__all__ = ["main", "render_markdown", "run"]

KEYS = 100_000
CAPACITIES = (1_000, 10_000)
ZIPF_POLICIES = ("lru", "tinylfu", "cachetools-lru", "theine", "optimum")
ADVERSARIAL_POLICIES = ("lru", "tinylfu", "cachetools-lru", "theine")
COLUMNS = ZIPF_POLICIES

Trace = list[str]
Simulator = Callable[[Sequence[str], int], int]


def _zipf_weights(n: int, s: float) -> list[float]:
    weights = [1.0 / rank**s for rank in range(1, n + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def _zipf_ids(n: int, s: float, k: int, seed: int) -> list[int]:
    """``k`` draws from Zipf(s) over ranks ``0..n-1`` (rank 0 the most popular)."""
    cum = list(itertools.accumulate(_zipf_weights(n, s)))
    return random.Random(seed).choices(range(n), cum_weights=cum, k=k)


def _names(ids: Iterator[int] | list[int], names: list[str]) -> Trace:
    return [names[i] for i in ids]


def zipf_trace(s: float, requests: int, seed: int) -> Trace:
    names = [f"k{i}" for i in range(KEYS)]
    return _names(_zipf_ids(KEYS, s, requests, seed), names)


def shift_trace(requests: int, seed: int) -> Trace:
    """Zipf(0.9); halfway, popularity moves to a disjoint key set in a shuffled order."""
    half = requests // 2
    first = [f"k{i}" for i in range(KEYS)]
    second = [f"s{i}" for i in range(KEYS)]
    random.Random(seed + 1).shuffle(second)
    return _names(_zipf_ids(KEYS, 0.9, half, seed), first) + _names(
        _zipf_ids(KEYS, 0.9, requests - half, seed + 2), second
    )


def scan_trace(requests: int, capacity: int, seed: int) -> Trace:
    """Zipf(0.9) with ``5 * capacity`` one-off keys read in sequence at 40% of the trace."""
    scan = [f"scan{i}" for i in range(min(5 * capacity, requests))]
    names = [f"k{i}" for i in range(KEYS)]
    body = _names(_zipf_ids(KEYS, 0.9, requests - len(scan), seed), names)
    at = int(len(body) * 0.4)
    return body[:at] + scan + body[at:]


def irm_optimum(s: float, capacity: int) -> int:
    """Not a simulator: the IRM bound scaled to hits per million (see ``run``)."""
    return round(sum(sorted(_zipf_weights(KEYS, s), reverse=True)[:capacity]) * 1e6)


# -- simulators: each returns the number of hits ---------------------------------------


def _clock() -> float:
    return 0.0


def _simulate_tier(eviction: Eviction) -> Simulator:
    def simulate(trace: Sequence[str], capacity: int) -> int:
        tier = MemoryTier(capacity, clock=_clock, eviction=eviction)
        lookup, store = tier.lookup, tier.store
        hits = 0
        for key in trace:
            if lookup(key) is None:
                store(key, None, size=1, ttl=0)
            else:
                hits += 1
        return hits

    return simulate


def _simulate_cachetools(trace: Sequence[str], capacity: int) -> int:
    cache: Any = cachetools.LRUCache(capacity)
    get = cache.get
    hits = 0
    for key in trace:
        if get(key) is None:
            cache[key] = 1
        else:
            hits += 1
    return hits


def _simulate_theine(trace: Sequence[str], capacity: int) -> int:
    cache: Any = theine.Cache(capacity, nolock=True)  # W-TinyLFU; one thread, so no locks
    get, put = cache.get, cache.set
    hits = 0
    for key in trace:
        if get(key)[1]:
            hits += 1
        else:
            put(key, 1)
    cache.close()
    return hits


SIMULATORS: dict[str, Simulator] = {
    "lru": _simulate_tier("lru"),
    "tinylfu": _simulate_tier("tinylfu"),
    "cachetools-lru": _simulate_cachetools,
    "theine": _simulate_theine,
}


def run(requests: int = 1_000_000) -> list[dict[str, Any]]:
    """Simulate every trace x capacity x policy; rows of trace, capacity, policy, hit_ratio."""
    rows: list[dict[str, Any]] = []

    def simulate(name: str, trace: Trace, capacity: int, policies: Sequence[str]) -> None:
        for policy in policies:
            if policy == "optimum":
                continue
            hits = SIMULATORS[policy](trace, capacity)
            rows.append(
                {
                    "trace": name,
                    "capacity": capacity,
                    "policy": policy,
                    "hit_ratio": hits / len(trace),
                }
            )

    for s, seed in ((0.9, 9), (1.1, 11)):
        trace = zipf_trace(s, requests, seed)
        for capacity in CAPACITIES:
            simulate(f"zipf-{s}", trace, capacity, ZIPF_POLICIES)
            rows.append(
                {
                    "trace": f"zipf-{s}",
                    "capacity": capacity,
                    "policy": "optimum",
                    "hit_ratio": irm_optimum(s, capacity) / 1e6,
                }
            )
    trace = shift_trace(requests, seed=20)
    for capacity in CAPACITIES:
        simulate("shift", trace, capacity, ADVERSARIAL_POLICIES)
    for capacity in CAPACITIES:
        simulate("scan", scan_trace(requests, capacity, seed=30), capacity, ADVERSARIAL_POLICIES)
    return rows


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One table row per trace x capacity, one column per policy, hit ratios in %."""
    cells: dict[tuple[str, int], dict[str, float]] = {}
    for row in rows:
        cells.setdefault((row["trace"], row["capacity"]), {})[row["policy"]] = row["hit_ratio"]
    columns = [c for c in COLUMNS if any(c in ratios for ratios in cells.values())]
    lines = [
        "| trace | capacity | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for (trace, capacity), ratios in cells.items():
        values = [f"{ratios[c] * 100:.2f}" if c in ratios else "—" for c in columns]
        lines.append(f"| {trace} | {capacity:,} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests per trace")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run(args.requests)
    print(render_markdown(rows))
    print(f"\n{args.requests:,} requests per trace; {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
