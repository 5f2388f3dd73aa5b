"""The memory-tier hit of a two-tier cache: stratacache beside cashews ``client_side``.

Run ``python -m benchmarks.two_tier`` (``--loops`` / ``--repeats`` to change the effort;
``REDIS_URL`` picks the server, ``redis://127.0.0.1:6379/0`` by default). Keys live under a
prefix unique to the run and are deleted at the end, by name.

Method: 1,000 keys, written once through each contender, then read round and round so
that every read is answered by the contender's memory tier (the first pass warms it).
One measurement is a plain ``for`` loop of ``loops`` awaited ``get`` calls (100,000 by
default) timed with ``time.perf_counter_ns``; each contender is measured ``repeats``
times (5 by default), round-robin, with ``gc.collect()`` before every measurement; the
best run is reported. The value is a 100-character ``str`` with a one-hour TTL.

Contenders: stratacache's ``GenericRedisCache`` (memory in front of Redis, kept coherent
over pub/sub) and cashews' ``client_side=True`` backend (memory in front of Redis, kept
coherent by Redis's client-side-caching invalidations). Two references frame them:
stratacache's ``InMemoryCache`` alone (no Redis behind it: the floor for a memory hit)
and stratacache's ``RedisCache`` (every read a round trip: what the memory tier saves).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stratacache import GenericRedisCache, InMemoryCache, RedisCache

from benchmarks.redis_path import _delete, redis_url, safe_url, server_answers
from benchmarks.speed import quiet_peers

__all__ = [
    "CASHEWS",
    "MEMORY",
    "ORDER",
    "REDIS",
    "STRATACACHE",
    "main",
    "render_markdown",
    "run",
    "targets",
]

KEY_COUNT = 1_000
KEYS = [f"user:{i:06d}" for i in range(KEY_COUNT)]
STR_VALUE = ("The quick brown fox jumps over the lazy dog. " * 3)[:100]
TTL_SECONDS = 3600

STRATACACHE = "stratacache GenericRedisCache (memory hit)"
CASHEWS = "cashews client_side (memory hit)"
MEMORY = "stratacache InMemoryCache (no Redis; reference)"
REDIS = "stratacache RedisCache (a round trip; reference)"
ORDER = (MEMORY, STRATACACHE, CASHEWS, REDIS)
MIN_VS_ROUND_TRIP = 100.0
MIN_VS_CASHEWS = 5.0


@dataclass
class _Contender:
    get: Callable[[str], Awaitable[Any]]
    set: Callable[[str, Any], Awaitable[Any]]
    full: Callable[[str], str]
    close: Callable[[], Awaitable[Any]]
    stored: Callable[[str], str] | None = None  # the key in Redis, to delete it at the end


async def _build(name: str, url: str, prefix: str) -> _Contender:
    if name == STRATACACHE:
        two_tier = GenericRedisCache(
            url, namespace=prefix.rstrip(":"), memory_cache_size=10_000, default_ttl=TTL_SECONDS
        )
        await two_tier.connect()
        return _Contender(
            two_tier.get,
            two_tier.set,
            lambda key: key,
            two_tier.aclose,
            lambda key: f"{prefix}{key}",
        )
    if name == CASHEWS:
        from cashews import Cache

        cashews = Cache()
        cashews.setup(url, client_side=True, client_side_prefix=prefix)
        await cashews.init()

        async def cashews_set(key: str, value: Any) -> Any:
            return await cashews.set(key, value, expire=TTL_SECONDS)

        return _Contender(
            cashews.get, cashews_set, lambda key: prefix + key, cashews.close, lambda key: key
        )
    if name == MEMORY:
        memory = InMemoryCache(10_000, TTL_SECONDS)
        return _Contender(memory.get, memory.set, lambda key: key, memory.aclose)
    if name == REDIS:
        redis = RedisCache(url, prefix=prefix, default_ttl=TTL_SECONDS)
        return _Contender(
            redis.get, redis.set, lambda key: key, redis.aclose, lambda key: prefix + key
        )
    raise ValueError(f"unknown contender {name!r}")


async def _measure(contender: _Contender, keys: Sequence[str], loops: int) -> float:
    get = contender.get
    count = len(keys)
    gc.collect()
    started = time.perf_counter_ns()
    for i in range(loops):
        await get(keys[i % count])
    return (time.perf_counter_ns() - started) / loops


async def _run_async(url: str, loops: int, repeats: int) -> dict[str, float]:
    run_prefix = f"stratacache-bench:{os.getpid()}:{uuid.uuid4().hex[:8]}:"
    contenders: dict[str, _Contender] = {}
    doomed: list[str] = []
    best: dict[str, float] = {}
    try:
        for index, name in enumerate(ORDER):
            contender = await _build(name, url, f"{run_prefix}c{index}:")
            contenders[name] = contender
            for key in KEYS:
                await contender.set(contender.full(key), STR_VALUE)
                if contender.stored is not None:
                    doomed.append(contender.stored(contender.full(key)))
        order = list(ORDER)
        for _ in range(repeats):
            for name in order:
                contender = contenders[name]
                keys = [contender.full(key) for key in KEYS]
                await _measure(contender, keys, KEY_COUNT)  # warm the memory tier
                if await contender.get(keys[0]) != STR_VALUE:
                    raise RuntimeError(f"{name} lost {keys[0]!r} during the run")
                ns = await _measure(contender, keys, loops)
                best[name] = min(best.get(name, ns), ns)
            order = order[1:] + order[:1]  # nobody is always first
    finally:
        for contender in contenders.values():
            with contextlib.suppress(Exception):
                await contender.close()
        await _delete(url, doomed)
    return best


def run(loops: int = 100_000, repeats: int = 5, url: str | None = None) -> list[dict[str, Any]]:
    """One row per contender: ``ns_per_op`` and ``vs_ours`` (contender / stratacache)."""
    if min(loops, repeats) < 1:
        raise ValueError("loops and repeats must be positive")
    url = url or redis_url()
    with quiet_peers("cashews", "stratacache", "redis"):
        best = asyncio.run(_run_async(url, loops, repeats))
    ours = best[STRATACACHE]
    return [
        {"contender": name, "ns_per_op": best[name], "vs_ours": best[name] / ours} for name in ORDER
    ]


def targets(rows: Sequence[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """(target, passed, measured figure) for the memory hit inside the two-tier cache."""
    ns = {row["contender"]: row["ns_per_op"] for row in rows}
    goals = [
        (
            f"two-tier memory hit ≥ {MIN_VS_ROUND_TRIP:g}\u00d7 faster than a Redis round trip",
            REDIS,
            MIN_VS_ROUND_TRIP,
        ),
        (
            f"two-tier memory hit ≥ {MIN_VS_CASHEWS:g}\u00d7 faster than cashews' near-cache hit",
            CASHEWS,
            MIN_VS_CASHEWS,
        ),
    ]
    found = []
    for name, other, minimum in goals:
        if STRATACACHE not in ns or other not in ns:
            found.append((name, False, "not measured"))
            continue
        ratio = ns[other] / ns[STRATACACHE]
        figure = f"{ratio:.1f}\u00d7 ({ns[STRATACACHE]:,.0f} ns vs {ns[other]:,.0f} ns)"
        found.append((name, ratio >= minimum, figure))
    return found


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "**get, answered by the memory tier (100-char str)**",
        "",
        "| contender | ns/op | \u00d7 stratacache's time |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {row['contender']} | {row['ns_per_op']:,.0f} | {row['vs_ours']:.2f}\u00d7 |"
        for row in rows
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    url = redis_url()
    answers, server = server_answers(url)
    if not answers:
        raise SystemExit(f"no Redis answered at {safe_url(url)} ({server})")
    print(render_markdown(run(args.loops, args.repeats, url)))


if __name__ == "__main__":
    main()
