"""The Redis path: stratacache's RedisCache beside raw redis-py, aiocache and cashews.

Run ``python -m benchmarks.redis_path`` (``--calls`` / ``--repeats`` to change the effort;
``REDIS_URL`` picks the server, ``redis://127.0.0.1:6379/0`` by default). Every key is
written under a prefix unique to the run and deleted at the end, by name.

Method: one process, one ``asyncio.run``, every contender against the same server and
with its default settings, measured round-robin in blocks of 250 calls (the order turning
by one each block) so that drift and bursts of load elsewhere hit everybody alike, with
``gc.collect()`` before every block. The value is a 100-character ``str`` with a one-hour
TTL; raw redis-py stores bytes of the size stratacache stores (103: a codec header and
msgpack framing) with ``SET ... EX 3600`` and reads them back with ``GET``.

* **Latency:** 1,000 keys, all present, read (or overwritten) in order by awaiting one
  call at a time; each call is timed on its own with ``time.perf_counter_ns``, 5,000
  calls per measurement after 500 warm-up calls. ``p50`` is the lowest median of 3
  measurements; ``p99`` is the median of their 99th percentiles (a tail is not picked
  best-of). The row "redis-py, stratacache's client" sends the same plain ``GET`` /
  ``SET`` through the client stratacache builds (a plain pool of 72 connections, 0.25 s
  socket timeouts, one retry): it separates the cost of those settings from the cost of
  stratacache's own layers. stratacache itself does not send through redis-py's
  ``execute_command``: it keeps up to 4 connections of that pool and talks through
  them directly (see ``stratacache._pipelining``), which is why it can beat both rows.
* **get_many:** 100 of those keys per call (10 groups, round and round), 1,000 calls per
  measurement, beside one raw ``MGET`` of the same 100 keys (aiocache ``multi_get``,
  cashews ``get_many``).
* **Throughput:** 200 tasks started at once, each doing 100 operations (a ``set`` then a
  ``get`` of one of its own 5 keys, 50 times), 20,000 operations per round; one warm-up
  round, then the best of 3. "Attempted" counts every call, "completed" only those that
  did not fail; the ratio is of completed ops/s. Errors (raised, or for stratacache
  counted by its fail-safe path) and reads that missed a value just written are summed
  over all 4 rounds. redis-py's default client has a non-blocking pool of 100
  connections: calls beyond it fail at once with ``MaxConnectionsError``, so its
  attempted rate flatters it. stratacache pipelines the commands that find 4 already
  in flight (``ClientOptions.pipeline_after``), at its default settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from stratacache import RedisCache

from benchmarks.speed import quiet_peers

__all__ = [
    "AIOCACHE",
    "CASHEWS",
    "DEFAULT_URL",
    "RAW",
    "RAW_OUR_CLIENT",
    "STRATACACHE",
    "main",
    "redis_url",
    "render_markdown",
    "run",
    "safe_url",
    "server_answers",
    "targets",
]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
TTL_SECONDS = 3600
KEY_COUNT = 1_000
KEYS = [f"user:{i:06d}" for i in range(KEY_COUNT)]
STR_VALUE = ("The quick brown fox jumps over the lazy dog. " * 3)[:100]
WARMUP_CALLS = 500
BLOCK = 250
MANY_SIZE = 100
MANY_GROUPS = [KEYS[i : i + MANY_SIZE] for i in range(0, KEY_COUNT, MANY_SIZE)]
TASKS = 200
OPS_PER_TASK = 100
KEYS_PER_TASK = 5
OPS = ("get-hit", "set")
TIMES = "\u00d7"

MAX_LATENCY_RATIO = 1.10
MAX_MANY_RATIO = 1.2
MIN_THROUGHPUT_RATIO = 1.0

STRATACACHE = "stratacache RedisCache"
RAW = "redis-py asyncio.Redis (raw)"
RAW_OUR_CLIENT = "redis-py, stratacache's client (raw)"
AIOCACHE = "aiocache RedisCache"
CASHEWS = "cashews redis://"
LATENCY_ORDER = (RAW, RAW_OUR_CLIENT, STRATACACHE, AIOCACHE, CASHEWS)
THROUGHPUT_ORDER = (RAW, RAW_OUR_CLIENT, STRATACACHE)
PEERS = (AIOCACHE, CASHEWS)

assert len(STR_VALUE) == 100


def redis_url() -> str:
    """``REDIS_URL`` from the environment, or the local default."""
    return os.environ.get("REDIS_URL") or DEFAULT_URL


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def server_answers(url: str, timeout: float = 1.0) -> tuple[bool, str]:
    """(True, "Redis <version>") if a Redis answers PING at ``url``, else (False, why not)."""

    async def ping() -> str:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            await client.ping()
            info = await client.info("server")
            return f"Redis {info.get('redis_version', '(version unknown)')}"
        finally:
            await client.aclose()

    try:
        return True, asyncio.run(ping())
    except Exception as exc:  # anything at all means: no usable Redis there
        return False, f"{type(exc).__name__}: {exc}"


# -- contenders ------------------------------------------------------------------------


@dataclass
class Contender:
    """One client under its own key prefix, and how to call it.

    ``get(full_key)``, ``set(full_key, *set_args, **set_kwargs)`` and
    ``get_many(*many_args[i])`` are the calls timed; ``full(key)`` is the key as the
    contender is called with it, ``stored(key)`` the key as it lands in Redis.
    """

    name: str
    get: Callable[..., Awaitable[Any]]
    set: Callable[..., Awaitable[Any]]
    set_args: tuple[Any, ...]
    expected: Any
    full: Callable[[str], str]
    stored: Callable[[str], str]
    get_many: Callable[..., Awaitable[Any]] | None = None
    many_args: list[tuple[Any, ...]] = field(default_factory=list)
    set_kwargs: dict[str, Any] = field(default_factory=dict)
    close: Callable[[], Awaitable[Any]] | None = None
    errors: Callable[[], int] = lambda: 0


def _host_port_db(url: str) -> tuple[str, int, int, str | None]:
    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    return parts.hostname or "127.0.0.1", parts.port or 6379, int(db), parts.password


def _stored_value() -> bytes:
    """The bytes stratacache writes for ``STR_VALUE``: what raw redis-py stores too."""
    from stratacache import Codec

    return Codec().encode(STR_VALUE, "k")


def _build(name: str, url: str, prefix: str, shared: dict[str, Any]) -> Contender:
    """A contender ``name`` with default settings, its keys under ``prefix``."""
    import redis.asyncio as aioredis

    if name == STRATACACHE:
        cache = RedisCache(url, prefix=prefix)
        shared["stratacache"] = cache
        return Contender(
            name,
            cache.get,
            cache.set,
            (STR_VALUE, TTL_SECONDS),
            STR_VALUE,
            full=lambda key: key,
            stored=lambda key: prefix + key,
            get_many=cache.get_many,
            many_args=[(group,) for group in MANY_GROUPS],
            close=cache.aclose,
            errors=lambda: int(cache.get_stats()["errors"]),
        )
    if name in (RAW, RAW_OUR_CLIENT):
        if name == RAW:
            client = aioredis.Redis.from_url(url)
            close: Callable[[], Awaitable[Any]] | None = client.aclose
        else:  # borrowed from the stratacache contender, closed with it
            client = shared["stratacache"].client
            close = None
        data = _stored_value()
        return Contender(
            name,
            client.get,
            client.set,
            (data,),
            data,
            full=lambda key: prefix + key,
            stored=lambda key: prefix + key,
            get_many=client.mget,
            many_args=[([prefix + key for key in group],) for group in MANY_GROUPS],
            set_kwargs={"ex": TTL_SECONDS},
            close=close,
        )
    if name == AIOCACHE:
        from aiocache import RedisCache as AiocacheRedis

        host, port, db, password = _host_port_db(url)
        namespace = prefix.rstrip(":")
        ac = AiocacheRedis(endpoint=host, port=port, db=db, password=password, namespace=namespace)
        return Contender(
            name,
            ac.get,
            ac.set,
            (STR_VALUE, TTL_SECONDS),
            STR_VALUE,
            full=lambda key: key,
            stored=lambda key: f"{namespace}:{key}",
            get_many=ac.multi_get,
            many_args=[(group,) for group in MANY_GROUPS],
            close=ac.close,
        )
    if name == CASHEWS:
        from cashews import Cache

        cw = Cache()
        cw.setup(url)
        return Contender(
            name,
            cw.get,
            cw.set,
            (STR_VALUE, TTL_SECONDS),
            STR_VALUE,
            full=lambda key: prefix + key,
            stored=lambda key: prefix + key,
            get_many=cw.get_many,
            many_args=[tuple(prefix + key for key in group) for group in MANY_GROUPS],
            close=cw.close,
        )
    raise ValueError(f"unknown contender {name!r}")


# -- timed loops ----------------------------------------------------------------------------


async def _time_gets(fn: Callable[[str], Awaitable[Any]], keys: Sequence[str]) -> list[int]:
    clock = time.perf_counter_ns
    times = []
    for key in keys:
        start = clock()
        await fn(key)
        times.append(clock() - start)
    return times


async def _time_sets(
    fn: Callable[..., Awaitable[Any]],
    keys: Sequence[str],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> list[int]:
    clock = time.perf_counter_ns
    times = []
    for key in keys:
        start = clock()
        await fn(key, *args, **kwargs)
        times.append(clock() - start)
    return times


async def _time_many(
    fn: Callable[..., Awaitable[Any]], calls: Sequence[tuple[Any, ...]]
) -> list[int]:
    clock = time.perf_counter_ns
    times = []
    for args in calls:
        start = clock()
        await fn(*args)
        times.append(clock() - start)
    return times


def _percentile(sorted_ns: Sequence[int], fraction: float) -> float:
    """Nearest-rank percentile of already sorted figures."""
    rank = max(0, min(len(sorted_ns) - 1, round(fraction * len(sorted_ns)) - 1))
    return float(sorted_ns[rank])


async def _populate(contender: Contender) -> None:
    for key in KEYS:
        await contender.set(contender.full(key), *contender.set_args, **contender.set_kwargs)
    for key in (KEYS[0], KEYS[-1]):
        found = await contender.get(contender.full(key))
        if found != contender.expected:
            raise RuntimeError(f"{contender.name}: {key!r} missing after set (got {found!r})")
    if contender.get_many is not None:
        many = await contender.get_many(*contender.many_args[-1])
        values = list(many.values()) if isinstance(many, dict) else list(many)
        if values != [contender.expected] * MANY_SIZE:
            raise RuntimeError(f"{contender.name}: get_many did not find all {MANY_SIZE} keys")


async def _measure(contender: Contender, op: str, keys: Sequence[str]) -> list[int]:
    if op == "get-hit":
        return await _time_gets(contender.get, keys)
    if op == "set":
        return await _time_sets(contender.set, keys, contender.set_args, contender.set_kwargs)
    assert contender.get_many is not None
    calls = (contender.many_args * (len(keys) // len(contender.many_args) + 1))[: len(keys)]
    return await _time_many(contender.get_many, calls)


@dataclass
class _Samples:
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)


async def _latencies(
    contenders: dict[str, Contender], calls: int, many_calls: int, repeats: int
) -> dict[tuple[str, str], _Samples]:
    samples: dict[tuple[str, str], _Samples] = {}
    plan = [(op, calls) for op in OPS] + [("get_many", many_calls)]
    for op, _count in plan:  # warm every path up, connections included
        warm = WARMUP_CALLS // 10 if op == "get_many" else WARMUP_CALLS
        for contender in contenders.values():
            await _measure(contender, op, [contender.full(key) for key in KEYS[:warm]])
    for _ in range(repeats):
        for op, count in plan:
            keys = [KEYS[i % KEY_COUNT] for i in range(count)]
            times: dict[str, list[int]] = {name: [] for name in contenders}
            # Round-robin in blocks, so that a burst of load elsewhere on the machine
            # lands on every contender rather than on whichever was being timed.
            names = list(contenders)
            for start in range(0, count, BLOCK):
                block = keys[start : start + BLOCK]
                turn = (start // BLOCK) % len(names)  # nobody is always first
                for name in names[turn:] + names[:turn]:
                    contender = contenders[name]
                    gc.collect()
                    full = [contender.full(key) for key in block]
                    times[name] += await _measure(contender, op, full)
            for name, measured in times.items():
                measured.sort()
                slot = samples.setdefault((op, name), _Samples())
                slot.p50.append(_percentile(measured, 0.50))
                slot.p99.append(_percentile(measured, 0.99))
    return samples


# -- throughput -------------------------------------------------------------------------------


@dataclass
class _Round:
    seconds: float
    errors: Counter[str]
    lost: int

    def completed_per_s(self, ops: int) -> float:
        """Operations that did not fail, per second."""
        return (ops - sum(self.errors.values())) / self.seconds


async def _throughput_round(contender: Contender, tag: str) -> _Round:
    errors: Counter[str] = Counter()
    lost = 0

    async def worker(task: int) -> None:
        nonlocal lost
        keys = [contender.full(f"{tag}:t{task:03d}:{k}") for k in range(KEYS_PER_TASK)]
        for op in range(OPS_PER_TASK // 2):
            key = keys[op % KEYS_PER_TASK]
            try:
                await contender.set(key, *contender.set_args, **contender.set_kwargs)
            except Exception as exc:
                errors[type(exc).__name__] += 1
            try:
                found = await contender.get(key)
            except Exception as exc:
                errors[type(exc).__name__] += 1
                continue
            if found != contender.expected:
                lost += 1

    before = contender.errors()
    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(worker(task) for task in range(TASKS)))
    seconds = time.perf_counter() - start
    counted = contender.errors() - before
    if counted:
        errors["counted by stratacache"] += counted
    return _Round(seconds, errors, lost)


def _throughput_keys(contender: Contender, tag: str) -> list[str]:
    return [
        contender.stored(f"{tag}:t{task:03d}:{k}")
        for task in range(TASKS)
        for k in range(KEYS_PER_TASK)
    ]


async def _throughput(
    url: str, prefix: str, repeats: int, doomed: list[str]
) -> dict[str, list[_Round]]:
    rounds: dict[str, list[_Round]] = {name: [] for name in THROUGHPUT_ORDER}
    contenders: dict[str, Contender] = {}
    try:
        shared: dict[str, Any] = {}
        # stratacache first: the "its client" contender borrows the client it builds.
        for index, name in enumerate((STRATACACHE, RAW, RAW_OUR_CLIENT)):
            contenders[name] = _build(name, url, f"{prefix}tp{index}:", shared)
            doomed.extend(_throughput_keys(contenders[name], "k"))
        order = list(THROUGHPUT_ORDER)
        for _ in range(repeats + 1):  # the first round warms up; its errors count too
            for name in order:
                rounds[name].append(await _throughput_round(contenders[name], "k"))
            order = order[1:] + order[:1]  # nobody is always first
    finally:
        for contender in contenders.values():
            if contender.close is not None:
                with contextlib.suppress(Exception):
                    await contender.close()
    return rounds


# -- the run -------------------------------------------------------------------------------


async def _delete(url: str, keys: Sequence[str]) -> None:
    """UNLINK ``keys`` by name, in batches (never a pattern, never a flush)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        unique = sorted(set(keys))
        for start in range(0, len(unique), 500):
            await client.unlink(*unique[start : start + 500])
    finally:
        await client.aclose()


async def _run_async(
    url: str, calls: int, many_calls: int, repeats: int
) -> tuple[dict[tuple[str, str], _Samples], dict[str, list[_Round]]]:
    prefix = f"stratacache-bench:{os.getpid()}:{uuid.uuid4().hex[:8]}:"
    doomed: list[str] = []
    contenders: dict[str, Contender] = {}
    shared: dict[str, Any] = {}
    try:
        # stratacache first: the "its client" row borrows the client it builds.
        for index, name in enumerate((STRATACACHE, RAW, RAW_OUR_CLIENT, AIOCACHE, CASHEWS)):
            contender = _build(name, url, f"{prefix}c{index}:", shared)
            contenders[name] = contender
            doomed.extend(contender.stored(key) for key in KEYS)
        for contender in contenders.values():
            await _populate(contender)
        ordered = {name: contenders[name] for name in LATENCY_ORDER}
        samples = await _latencies(ordered, calls, many_calls, repeats)
        for name, contender in contenders.items():
            found = await contender.get(contender.full(KEYS[-1]))
            if found != contender.expected:
                raise RuntimeError(f"{name} lost {KEYS[-1]!r} during the run")
    finally:
        for contender in contenders.values():
            if contender.close is not None:
                with contextlib.suppress(Exception):
                    await contender.close()
        await _delete(url, doomed)
        doomed.clear()
    try:
        rounds = await _throughput(url, prefix, repeats, doomed)
    finally:
        await _delete(url, doomed)
    return samples, rounds


def run(
    calls: int = 5_000, many_calls: int = 1_000, repeats: int = 3, url: str | None = None
) -> list[dict[str, Any]]:
    """Measure latency, get_many and throughput; one row per (section, op, contender).

    Rows have ``section`` (``latency`` / ``get_many`` / ``throughput``), ``op`` and
    ``contender``. Latency and get_many rows: ``p50_us``, ``p99_us``, ``vs_raw`` (p50 /
    raw redis-py's p50) and ``ours_x_faster`` (peers only: peer p50 / stratacache p50).
    Throughput rows: ``ops_per_s`` (best round), ``ops``, ``errors`` (all rounds),
    ``errors_by_class``, ``lost`` (reads that missed a value just written), ``vs_raw``.
    """
    if min(calls, many_calls, repeats) < 1:
        raise ValueError("calls, many_calls and repeats must be positive")
    url = url or redis_url()
    with quiet_peers("aiocache", "cashews", "stratacache", "redis"):
        samples, rounds = asyncio.run(_run_async(url, calls, many_calls, repeats))
    rows: list[dict[str, Any]] = []
    for op in (*OPS, "get_many"):
        section = "get_many" if op == "get_many" else "latency"
        best = {name: min(samples[op, name].p50) for name in LATENCY_ORDER}
        for name in LATENCY_ORDER:
            p50 = best[name]
            rows.append(
                {
                    "section": section,
                    "op": f"get_many({MANY_SIZE})" if op == "get_many" else op,
                    "contender": name,
                    "p50_us": p50 / 1000,
                    "p99_us": statistics.median(samples[op, name].p99) / 1000,
                    "vs_raw": p50 / best[RAW],
                    "ours_x_faster": p50 / best[STRATACACHE] if name in PEERS else None,
                    "calls": many_calls if op == "get_many" else calls,
                    "repeats": repeats,
                }
            )
    ops = TASKS * OPS_PER_TASK
    rates = {name: ops / min(r.seconds for r in rounds[name]) for name in THROUGHPUT_ORDER}
    done = {name: max(r.completed_per_s(ops) for r in rounds[name]) for name in THROUGHPUT_ORDER}
    for name in THROUGHPUT_ORDER:
        errors: Counter[str] = Counter()
        for r in rounds[name]:
            errors.update(r.errors)
        rows.append(
            {
                "section": "throughput",
                "op": f"{TASKS} tasks x {OPS_PER_TASK} ops",
                "contender": name,
                "ops_per_s": rates[name],
                "completed_per_s": done[name],
                "ops": ops,
                "rounds": len(rounds[name]),
                "errors": sum(errors.values()),
                "errors_by_class": dict(errors),
                "lost": sum(r.lost for r in rounds[name]),
                "vs_raw": done[name] / done[RAW],
                "vs_raw_attempted": rates[name] / rates[RAW],
            }
        )
    return rows


# -- rendering and targets -------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}{TIMES}"


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Latency tables (get-hit, set, get_many) then the throughput table."""
    parts: list[str] = []
    for op in (*OPS, f"get_many({MANY_SIZE})"):
        selected = [r for r in rows if r["section"] != "throughput" and r["op"] == op]
        if not selected:
            continue
        what = "100 keys per call" if op.startswith("get_many") else "100-char str"
        first = selected[0]
        parts.append(
            f"**{op}, {what}** ({first['calls']:,} sequential calls, best of {first['repeats']})\n"
        )
        parts.append(
            f"| contender | p50 µs | p99 µs | p50 vs raw redis-py | stratacache is {TIMES} faster |"
        )
        parts.append("|---|---:|---:|---:|---:|")
        for r in selected:
            parts.append(
                f"| {r['contender']} | {r['p50_us']:,.1f} | {r['p99_us']:,.1f} "
                f"| {_ratio(r['vs_raw'])} | {_ratio(r['ours_x_faster'])} |"
            )
        parts.append("")
    throughput = [r for r in rows if r["section"] == "throughput"]
    if throughput:
        first = throughput[0]
        parts.append(
            f"**throughput, {TASKS} concurrent tasks x {OPS_PER_TASK} ops (set + get)** "
            f"(best of {first['rounds'] - 1} rounds; errors over all {first['rounds']})\n"
        )
        parts.append(
            "| contender | ops/s attempted | ops/s completed | completed vs raw redis-py "
            "| errors | reads that missed |"
        )
        parts.append("|---|---:|---:|---:|---|---:|")
        for r in throughput:
            by_class = ", ".join(f"{k} {v:,}" for k, v in sorted(r["errors_by_class"].items()))
            errors = f"{r['errors']:,}" + (f" ({by_class})" if by_class else "")
            parts.append(
                f"| {r['contender']} | {r['ops_per_s']:,.0f} | {r['completed_per_s']:,.0f} "
                f"| {_ratio(r['vs_raw'])} | {errors} | {r['lost']:,} |"
            )
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _find(
    rows: Sequence[dict[str, Any]], section: str, contender: str, op: str | None = None
) -> Any:
    for row in rows:
        if (
            row["section"] == section
            and row["contender"] == contender
            and (op is None or row["op"] == op)
        ):
            return row
    return None


def targets(rows: Sequence[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """(target, passed, measured figure) for every Redis-path goal."""
    found: list[tuple[str, bool, str]] = []
    for op in OPS:
        name = f"Redis {op} p50 ≤ {MAX_LATENCY_RATIO:.2f}{TIMES} raw redis-py"
        ours, raw = _find(rows, "latency", STRATACACHE, op), _find(rows, "latency", RAW, op)
        if ours is None or raw is None:
            found.append((name, False, "not measured"))
            continue
        found.append(
            (
                name,
                ours["vs_raw"] <= MAX_LATENCY_RATIO,
                f"{ours['vs_raw']:.2f}{TIMES} ({ours['p50_us']:.1f} µs vs {raw['p50_us']:.1f} µs)",
            )
        )
    name = f"Redis get_many({MANY_SIZE}) p50 ≤ {MAX_MANY_RATIO:g}{TIMES} a raw MGET"
    ours, raw = _find(rows, "get_many", STRATACACHE), _find(rows, "get_many", RAW)
    if ours is None or raw is None:
        found.append((name, False, "not measured"))
    else:
        found.append(
            (
                name,
                ours["vs_raw"] <= MAX_MANY_RATIO,
                f"{ours['vs_raw']:.2f}{TIMES} ({ours['p50_us']:.1f} µs vs {raw['p50_us']:.1f} µs)",
            )
        )
    name = (
        f"Redis throughput, {TASKS} tasks: ≥ {MIN_THROUGHPUT_RATIO:g}{TIMES} raw redis-py's "
        "default client, 0 errors"
    )
    ours, raw = _find(rows, "throughput", STRATACACHE), _find(rows, "throughput", RAW)
    if ours is None or raw is None:
        found.append((name, False, "not measured"))
    else:
        passed = ours["vs_raw"] >= MIN_THROUGHPUT_RATIO and ours["errors"] == 0 and not ours["lost"]
        found.append(
            (
                name,
                passed,
                f"{ours['vs_raw']:.2f}{TIMES} completed ({ours['completed_per_s']:,.0f} vs "
                f"{raw['completed_per_s']:,.0f} ops/s; {ours['vs_raw_attempted']:.2f}{TIMES} "
                f"counting redis-py's failed calls as done); errors: stratacache "
                f"{ours['errors']:,}, redis-py {raw['errors']:,} of {raw['ops'] * raw['rounds']:,}",
            )
        )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="stratacache's Redis path beside its peers.")
    parser.add_argument("--calls", type=int, default=5_000, help="calls per latency measurement")
    parser.add_argument(
        "--many-calls", type=int, default=1_000, help="get_many calls per measurement"
    )
    parser.add_argument("--repeats", type=int, default=3, help="measurements; best p50 is kept")
    args = parser.parse_args(argv)
    url = redis_url()
    ok, server = server_answers(url)
    if not ok:
        print(f"skipped: no Redis answers at {safe_url(url)} ({server})")
        return 1
    started = time.perf_counter()
    rows = run(args.calls, args.many_calls, args.repeats, url)
    print(render_markdown(rows))
    for target, passed, figure in targets(rows):
        print(f"{'PASS' if passed else 'FAIL'}  {target}: {figure}")
    print(f"\n{server} at {safe_url(url)}; {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
