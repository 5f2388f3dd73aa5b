"""Memory-cache get-hit and set speed: stratacache beside its peers, in one process.

Run ``python -m benchmarks.speed`` (``--loops`` / ``--repeats`` to change the effort).

Method: 1,000 keys, all present, read (or overwritten) in order, round and round. One
measurement is a plain ``for`` loop of ``loops`` calls (100,000 by default) timed with
``time.perf_counter_ns``; async contenders are awaited one call at a time inside that
loop, and the whole run is a single ``asyncio.run``. Each (op, value, contender) is
measured ``repeats`` times (5 by default), round-robin across contenders so that drift
hits everybody alike, with ``gc.collect()`` before every measurement; the best run is
reported. The garbage collector stays enabled while timing, as it would be in a service.

Two floors bound what any cache can do:

* the sync floor: a bare ``dict``, ``.get`` and ``__setitem__`` called directly;
* the async floor: ``await`` of a coroutine doing ``dict.get`` plus a TTL check against
  ``time.monotonic()`` (for set: storing ``(deadline, value)``). No async cache can beat
  it, so ``vs async floor`` is the overhead of everything else an async cache does.

Every cache gets a one-hour TTL, so the expiry check is on the measured path: per call
for theine, aiocache and cashews (which have no default TTL), per cache for the others.
stratacache keeps values that are not immutable (the ``dict``) encoded and decodes a
fresh copy on every read, so the dict rows include msgpack encoding (set) and decoding
(get); the peers hand back the very object stored (cashews makes a shallow copy on set).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from stratacache import InMemoryCache

__all__ = [
    "AIOCACHE",
    "ASYNC_FLOOR",
    "CACHEBOX",
    "CACHETOOLS",
    "CASHEWS",
    "DICT_FLOOR",
    "STRATACACHE_LRU",
    "STRATACACHE_TINYLFU",
    "THEINE",
    "TIMES",
    "main",
    "render_markdown",
    "run",
]

KEY_COUNT = 1_000
CAPACITY = 10_000
TTL_SECONDS = 3600
KEYS = [f"user:{i:06d}" for i in range(KEY_COUNT)]
STR_VALUE = ("The quick brown fox jumps over the lazy dog. " * 3)[:100]
DICT_VALUE: dict[str, Any] = {
    "id": 1,
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "active": True,
    "score": 9.5,
    "tags": ["a", "b"],
    "created": "2024-01-01T00:00:00",
}
VALUES: dict[str, Any] = {"str": STR_VALUE, "dict": DICT_VALUE}
OPS = ("get-hit", "set")
TIMES = "\u00d7"  # the multiplication sign, spelled out for the linter

DICT_FLOOR = "dict (sync floor)"
ASYNC_FLOOR = "async floor (dict + TTL check)"
STRATACACHE_LRU = "stratacache InMemoryCache (lru)"
STRATACACHE_TINYLFU = "stratacache InMemoryCache (tinylfu)"
CACHETOOLS = "cachetools TTLCache"
THEINE = "theine Cache"
CACHEBOX = "cachebox TTLCache"
AIOCACHE = "aiocache SimpleMemoryCache"
CASHEWS = "cashews mem://"

FLOORS = (DICT_FLOOR, ASYNC_FLOOR)
OURS = (STRATACACHE_LRU, STRATACACHE_TINYLFU)
ORDER = (
    DICT_FLOOR,
    ASYNC_FLOOR,
    STRATACACHE_LRU,
    STRATACACHE_TINYLFU,
    CACHETOOLS,
    THEINE,
    CACHEBOX,
    AIOCACHE,
    CASHEWS,
)

assert len(STR_VALUE) == 100
assert len(DICT_VALUE) == 7


# -- contenders ------------------------------------------------------------------------


@dataclass
class Contender:
    """One cache instance holding one value under every key, and how to call it.

    ``set_extra`` holds extra positional arguments for ``set`` (the TTL, for caches that
    take it per call); ``unwrap`` turns what ``get`` returns into the cached value.
    """

    name: str
    is_async: bool
    get: Callable[..., Any]
    set: Callable[..., Any]
    set_extra: tuple[Any, ...] = ()
    unwrap: Callable[[Any], Any] = lambda found: found
    close: Callable[[], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class AsyncFloor:
    """The least an async cache with a TTL can do: a dict of ``(deadline, value)``."""

    __slots__ = ("_data", "_ttl")

    def __init__(self, ttl: float) -> None:
        self._data: dict[str, tuple[float, Any]] = {}
        self._ttl = ttl

    async def get(self, key: str) -> Any:
        entry = self._data.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    async def set(self, key: str, value: Any) -> None:
        self._data[key] = (time.monotonic() + self._ttl, value)


def _theine_unwrap(found: Any) -> Any:
    value, ok = found
    return value if ok else None


def _build(name: str) -> Contender:
    """A fresh, empty instance of contender ``name`` with default settings."""
    if name == DICT_FLOOR:
        plain: dict[str, Any] = {}
        return Contender(name, False, plain.get, plain.__setitem__)
    if name == ASYNC_FLOOR:
        floor = AsyncFloor(TTL_SECONDS)
        return Contender(name, True, floor.get, floor.set)
    if name in OURS:
        ours = InMemoryCache(
            max_size=CAPACITY,
            default_ttl=TTL_SECONDS,
            eviction="tinylfu" if name == STRATACACHE_TINYLFU else "lru",
        )
        return Contender(name, True, ours.get, ours.set, close=ours.aclose)
    if name == CACHETOOLS:
        import cachetools

        tc: Any = cachetools.TTLCache(maxsize=CAPACITY, ttl=TTL_SECONDS)
        return Contender(name, False, tc.get, tc.__setitem__)
    if name == THEINE:
        import theine

        th: Any = theine.Cache(CAPACITY)
        ttl = timedelta(seconds=TTL_SECONDS)
        return Contender(name, False, th.get, th.set, (ttl,), unwrap=_theine_unwrap, close=th.close)
    if name == CACHEBOX:
        import cachebox

        cb: Any = cachebox.TTLCache(CAPACITY, TTL_SECONDS)
        return Contender(name, False, cb.get, cb.__setitem__)
    if name == AIOCACHE:
        from aiocache import SimpleMemoryCache

        ac = SimpleMemoryCache()
        return Contender(name, True, ac.get, ac.set, (TTL_SECONDS,), close=ac.close)
    if name == CASHEWS:
        from cashews import Cache

        cw = Cache()
        cw.setup("mem://")
        return Contender(name, True, cw.get, cw.set, (TTL_SECONDS,), close=cw.close)
    raise ValueError(f"unknown contender {name!r}")


# -- timed loops: one per call shape, so no contender pays for another's adapter ------------


def _sync_get(fn: Callable[[str], Any], keys: Sequence[str]) -> int:
    start = time.perf_counter_ns()
    for key in keys:
        fn(key)
    return time.perf_counter_ns() - start


def _sync_set(
    fn: Callable[..., Any], keys: Sequence[str], value: Any, extra: tuple[Any, ...]
) -> int:
    if extra:
        (third,) = extra
        start = time.perf_counter_ns()
        for key in keys:
            fn(key, value, third)
        return time.perf_counter_ns() - start
    start = time.perf_counter_ns()
    for key in keys:
        fn(key, value)
    return time.perf_counter_ns() - start


async def _async_get(fn: Callable[[str], Awaitable[Any]], keys: Sequence[str]) -> int:
    start = time.perf_counter_ns()
    for key in keys:
        await fn(key)
    return time.perf_counter_ns() - start


async def _async_set(
    fn: Callable[..., Awaitable[Any]], keys: Sequence[str], value: Any, extra: tuple[Any, ...]
) -> int:
    if extra:
        (third,) = extra
        start = time.perf_counter_ns()
        for key in keys:
            await fn(key, value, third)
        return time.perf_counter_ns() - start
    start = time.perf_counter_ns()
    for key in keys:
        await fn(key, value)
    return time.perf_counter_ns() - start


async def _call(contender: Contender, fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    return await result if contender.is_async else result


async def _populate(contender: Contender, value: Any) -> None:
    for key in KEYS:
        await _call(contender, contender.set, key, value, *contender.set_extra)
    for key in KEYS:
        found = contender.unwrap(await _call(contender, contender.get, key))
        if found != value:
            raise RuntimeError(f"{contender.name}: {key!r} missing after set (got {found!r})")


async def _measure(contender: Contender, op: str, value: Any, keys: Sequence[str]) -> int:
    if op == "get-hit":
        if contender.is_async:
            return await _async_get(contender.get, keys)
        return _sync_get(contender.get, keys)
    if contender.is_async:
        return await _async_set(contender.set, keys, value, contender.set_extra)
    return _sync_set(contender.set, keys, value, contender.set_extra)


async def _run_async(loops: int, repeats: int) -> dict[tuple[str, str, str], float]:
    keys = (KEYS * (loops // KEY_COUNT + 1))[:loops]
    contenders: dict[tuple[str, str], Contender] = {}
    for value_name, value in VALUES.items():
        for name in ORDER:
            contender = _build(name)
            await _populate(contender, value)
            contenders[name, value_name] = contender
    best: dict[tuple[str, str, str], float] = {}
    try:
        for _ in range(repeats):
            for op in OPS:
                for value_name, value in VALUES.items():
                    for name in ORDER:
                        gc.collect()
                        elapsed = await _measure(contenders[name, value_name], op, value, keys)
                        slot = (op, value_name, name)
                        best[slot] = min(best.get(slot, float("inf")), elapsed / loops)
        # Every get must still have hit: nothing was evicted or expired while timing.
        for (name, value_name), contender in contenders.items():
            found = contender.unwrap(await _call(contender, contender.get, KEYS[-1]))
            if found != VALUES[value_name]:
                raise RuntimeError(f"{name} lost {KEYS[-1]!r} during the run")
    finally:
        for contender in contenders.values():
            if contender.close is not None:
                with contextlib.suppress(Exception):
                    await _call(contender, contender.close)
    return best


@contextlib.contextmanager
def quiet_peers(*names: str) -> Iterator[None]:
    """Silence warnings and these loggers while peers are timed (benchmarks only)."""
    loggers = [logging.getLogger(name) for name in names or ("aiocache", "cashews", "theine")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


# -- public ------------------------------------------------------------------------------


def run(loops: int = 100_000, repeats: int = 5) -> list[dict[str, Any]]:
    """Measure every op x value x contender; one row each.

    Rows: ``op`` (``get-hit`` / ``set``), ``value`` (``str`` / ``dict``), ``contender``,
    ``kind`` (``sync`` / ``async``), ``ns_per_op`` (best of ``repeats``),
    ``vs_async_floor`` (async contenders: ns / async-floor ns, else ``None``),
    ``lru_x_faster`` and ``tinylfu_x_faster`` (peers only: peer ns / stratacache ns).
    """
    if loops < 1 or repeats < 1:
        raise ValueError("loops and repeats must be positive")
    with quiet_peers():
        best = asyncio.run(_run_async(loops, repeats))
    rows: list[dict[str, Any]] = []
    for op in OPS:
        for value_name in VALUES:
            floor = best[op, value_name, ASYNC_FLOOR]
            lru = best[op, value_name, STRATACACHE_LRU]
            tinylfu = best[op, value_name, STRATACACHE_TINYLFU]
            for name in ORDER:
                ns = best[op, value_name, name]
                is_async = name in (ASYNC_FLOOR, *OURS, AIOCACHE, CASHEWS)
                peer = name not in FLOORS and name not in OURS
                rows.append(
                    {
                        "op": op,
                        "value": value_name,
                        "contender": name,
                        "kind": "async" if is_async else "sync",
                        "ns_per_op": ns,
                        "vs_async_floor": ns / floor if is_async else None,
                        "lru_x_faster": ns / lru if peer else None,
                        "tinylfu_x_faster": ns / tinylfu if peer else None,
                    }
                )
    return rows


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}{TIMES}"


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One table per op x value: ns/op, overhead over the async floor, and our speed-up."""
    parts: list[str] = []
    for op in OPS:
        for value_name in VALUES:
            selected = [r for r in rows if r["op"] == op and r["value"] == value_name]
            if not selected:
                continue
            what = "100-char str" if value_name == "str" else "7-field dict"
            parts.append(f"**{op}, {what}**\n")
            parts.append(
                "| contender | kind | ns/op | vs async floor "
                f"| stratacache lru is {TIMES} faster | stratacache tinylfu is {TIMES} faster |"
            )
            parts.append("|---|---|---:|---:|---:|---:|")
            for r in selected:
                parts.append(
                    f"| {r['contender']} | {r['kind']} | {r['ns_per_op']:,.0f} "
                    f"| {_ratio(r['vs_async_floor'])} | {_ratio(r['lru_x_faster'])} "
                    f"| {_ratio(r['tinylfu_x_faster'])} |"
                )
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Memory-cache get-hit and set speed.")
    parser.add_argument("--loops", type=int, default=100_000, help="calls per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="measurements; best is kept")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(render_markdown(run(args.loops, args.repeats)))
    print(f"{args.loops:,} calls x best of {args.repeats}; {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
