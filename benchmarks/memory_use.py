"""Memory held by 1,000 entries of 100-byte values: stratacache beside its peers.

Run ``python -m benchmarks.memory_use``.

Each cache is created empty with room for exactly 1,000 entries and a one-hour TTL, then
filled with 1,000 fresh keys (``"key:000000"``...) and fresh, distinct 100-byte ``bytes``
values. Two figures per cache:

* **tracemalloc**: bytes allocated by Python's allocator and still live, counted from
  just before the cache is created, so keys, values and the cache's own structures are
  all in it. Exact, but blind to memory a native extension gets from ``malloc`` itself:
  theine keeps its policy (sketch, timer wheel, LRU lists) in Rust and cachebox keeps its
  whole table in Rust, so for those two the tracemalloc figure is a lower bound.
* **RSS delta**: growth of the resident set (``/proc/self/statm``; ``resource`` peak RSS
  where ``/proc`` is missing), measured in a fresh interpreter per cache so one
  contender's freed memory cannot hide another's growth. It does see native memory, but
  it moves in 4 KiB pages and the allocator's free lists can absorb part of the growth,
  so read it to a few tens of KB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from stratacache import InMemoryCache

from .speed import TIMES

__all__ = [
    "CACHEBOX",
    "CACHETOOLS",
    "CONTENDERS",
    "PLAIN_DICT",
    "STRATACACHE_LRU",
    "STRATACACHE_TINYLFU",
    "THEINE",
    "main",
    "render_markdown",
    "run",
]

ENTRIES = 1_000
VALUE_BYTES = 100
TTL_SECONDS = 3600

PLAIN_DICT = "plain dict"
STRATACACHE_LRU = "stratacache InMemoryCache (lru)"
STRATACACHE_TINYLFU = "stratacache InMemoryCache (tinylfu)"
CACHETOOLS = "cachetools TTLCache"
THEINE = "theine Cache"
CACHEBOX = "cachebox TTLCache"
CONTENDERS = (PLAIN_DICT, STRATACACHE_LRU, STRATACACHE_TINYLFU, CACHETOOLS, THEINE, CACHEBOX)
NATIVE = {
    THEINE: "policy in Rust: tracemalloc misses it",
    CACHEBOX: "table in Rust: tracemalloc misses it",
}
ROOT = Path(__file__).resolve().parent.parent


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (stratacache's memory ops) without a loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the coroutine suspended; it needs an event loop")


def _value(i: int) -> bytes:
    return i.to_bytes(4, "big") * (VALUE_BYTES // 4)


def _fill(name: str) -> tuple[Any, Callable[[], int]]:
    """Create cache ``name`` and fill it; returns it (keep it alive) and its length."""
    if name == PLAIN_DICT:
        plain: dict[str, bytes] = {}
        for i in range(ENTRIES):
            plain[f"key:{i:06d}"] = _value(i)
        return plain, plain.__len__
    if name in (STRATACACHE_LRU, STRATACACHE_TINYLFU):
        ours = InMemoryCache(
            max_size=ENTRIES,
            default_ttl=TTL_SECONDS,
            eviction="tinylfu" if name == STRATACACHE_TINYLFU else "lru",
        )
        for i in range(ENTRIES):
            _drive(ours.set(f"key:{i:06d}", _value(i)))
        return ours, lambda: int(ours.get_stats()["entries"])
    if name == CACHETOOLS:
        import cachetools

        tc: Any = cachetools.TTLCache(maxsize=ENTRIES, ttl=TTL_SECONDS)
        for i in range(ENTRIES):
            tc[f"key:{i:06d}"] = _value(i)
        return tc, tc.__len__
    if name == THEINE:
        import theine

        th: Any = theine.Cache(ENTRIES)
        ttl = timedelta(seconds=TTL_SECONDS)
        for i in range(ENTRIES):
            th.set(f"key:{i:06d}", _value(i), ttl)
        return th, th.__len__
    if name == CACHEBOX:
        import cachebox

        cb: Any = cachebox.TTLCache(ENTRIES, TTL_SECONDS)
        for i in range(ENTRIES):
            cb[f"key:{i:06d}"] = _value(i)
        return cb, cb.__len__
    raise ValueError(f"unknown contender {name!r}")


def _dispose(cache: Any) -> None:
    close = getattr(cache, "close", None)  # theine: stop its maintenance coroutine
    if callable(close) and not asyncio.iscoroutinefunction(close):
        close()


def _warm_up() -> None:
    """Import every peer and run each code path once, so first-use costs are not counted."""
    for name in CONTENDERS:
        cache, _ = _fill(name)
        _dispose(cache)
    gc.collect()


def measure_tracemalloc(name: str) -> tuple[int, int]:
    """(bytes still allocated after filling ``name``, entries it holds)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache, length = _fill(name)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    entries = length()
    _dispose(cache)
    del cache
    return after - before, entries


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # no /proc: peak RSS is the best there is (KiB on Linux, bytes on macOS)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def _import_peers() -> None:
    import cachebox  # noqa: F401
    import cachetools  # noqa: F401
    import theine  # noqa: F401


def measure_rss_here(name: str) -> int:
    """RSS growth from filling ``name`` in this process (meaningful in a fresh one).

    Only imports come first: a warm-up fill would leave freed memory behind for the
    measured fill to reuse, hiding its growth.
    """
    _import_peers()
    gc.collect()
    before = _rss_bytes()
    cache, _ = _fill(name)
    gc.collect()
    grown = _rss_bytes() - before
    _dispose(cache)
    return grown


def measure_rss(name: str) -> int | None:
    """RSS growth from filling ``name``, in a fresh interpreter; None if that fails."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory_use", "--rss-child", name],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return int(json.loads(done.stdout.strip().splitlines()[-1])["rss_bytes"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError):
        return None


def run(rss: bool = True) -> list[dict[str, Any]]:
    """One row per cache.

    Rows: ``contender``, ``entries`` (held after filling), ``tracemalloc_bytes``,
    ``bytes_per_entry`` (tracemalloc / entries), ``vs_dict`` (tracemalloc / the plain
    dict's), ``rss_bytes`` (fresh-process RSS growth, or ``None``), ``note``.
    """
    _warm_up()
    rows: list[dict[str, Any]] = []
    for name in CONTENDERS:
        used, entries = measure_tracemalloc(name)
        rows.append(
            {
                "contender": name,
                "entries": entries,
                "tracemalloc_bytes": used,
                "bytes_per_entry": used / entries if entries else None,
                "rss_bytes": measure_rss(name) if rss else None,
                "note": NATIVE.get(name, ""),
            }
        )
    baseline = rows[0]["tracemalloc_bytes"]
    for row in rows:
        row["vs_dict"] = row["tracemalloc_bytes"] / baseline
    return rows


def _kb(value: float | None) -> str:
    return "—" if value is None else f"{value / 1000:,.1f} kB"


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One row per cache: tracemalloc total and per entry, ratio to a dict, RSS delta."""
    lines = [
        f"{ENTRIES:,} entries, {VALUE_BYTES}-byte `bytes` values, keys and values included "
        "(1 kB = 1,000 bytes).\n",
        "| contender | entries | tracemalloc | per entry | vs plain dict "
        "| RSS delta (fresh process) | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        per = "—" if r["bytes_per_entry"] is None else f"{r['bytes_per_entry']:,.0f} B"
        lines.append(
            f"| {r['contender']} | {r['entries']:,} | {_kb(r['tracemalloc_bytes'])} | {per} "
            f"| {r['vs_dict']:.2f}{TIMES} | {_kb(r['rss_bytes'])} | {r['note']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Memory held by 1,000 cached entries.")
    parser.add_argument("--no-rss", action="store_true", help="skip the fresh-process RSS runs")
    parser.add_argument("--rss-child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        print(json.dumps({"rss_bytes": measure_rss_here(args.rss_child)}))
        return
    print(render_markdown(run(rss=not args.no_rss)))


if __name__ == "__main__":
    main()
