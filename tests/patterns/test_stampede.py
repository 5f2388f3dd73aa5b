"""Stampede control beyond one process: the Redis lease, XFetch's statistics, cleanup.

The per-cache behaviour (single flight, stale windows, jitter, loader timeout) is in
tests/contract/test_get_or_set.py and test_loading_policies.py, over every cache.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
from typing import Any

import pytest

from stratacache import (
    ClientOptions,
    Codec,
    GenericRedisCache,
    InMemoryCache,
    RedisCache,
)
from stratacache.testing import FakeClock

ROOMY = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)

# A process that waits for the go signal (a Redis list), then calls get_or_set with a
# lease; its loader counts its runs in Redis and takes 0.3 s, like a slow query.
_PROCESS = """
import asyncio, json, sys
import redis.asyncio as aioredis
from stratacache import ClientOptions, GenericRedisCache

async def main(url, namespace):
    signals = aioredis.Redis.from_url(url)
    options = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)
    async with GenericRedisCache(url, namespace=namespace, options=options) as cache:
        async def load():
            await signals.incr(namespace + "calls")
            await asyncio.sleep(0.3)
            return {"report": [1, 2, 3]}

        await signals.rpush(namespace + "ready", 1)
        if not await signals.blpop([namespace + "go"], timeout=20):
            raise SystemExit("no go signal")
        results = await asyncio.gather(
            *(cache.get_or_set("report", load, 60, lease=5) for _ in range(50))
        )
        print(json.dumps({"results": results, "loading": cache.get_stats()["loading"]}))
    await signals.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.redis
@pytest.mark.slow
async def test_four_processes_with_a_lease_run_the_loader_once_in_total(
    redis_url: str, unique_prefix: str, redis_sync: Any
) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PROCESS,
            redis_url,
            unique_prefix,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for _ in range(4):  # every process is connected and waiting
            assert redis_sync.blpop([unique_prefix + "ready"], timeout=30)
        redis_sync.rpush(unique_prefix + "go", *[1] * 4)
        outputs = [
            json.loads((await asyncio.wait_for(process.communicate(), 30))[0])
            for process in processes
        ]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    calls = int(redis_sync.get(unique_prefix + "calls"))
    redis_sync.delete(*[unique_prefix + name for name in ("calls", "ready", "go", "report")])
    assert calls == 1
    assert [process.returncode for process in processes] == [0] * 4
    assert all(out["results"] == [{"report": [1, 2, 3]}] * 50 for out in outputs)
    assert sum(out["loading"]["loads"] for out in outputs) == 1
    # Every other process waited on the lease (one flight each), unless it woke late
    # enough to find the value already there.
    assert sum(out["loading"]["lease_waits"] for out in outputs) <= 3
    assert all(out["loading"]["lease_timeouts"] == 0 for out in outputs)


@pytest.mark.redis
async def test_a_lease_holder_that_never_finishes_delays_others_by_the_lease_at_most(
    redis_url: str, unique_prefix: str
) -> None:
    # Two caches on one server stand for two processes: each has its own flights.
    async with (
        RedisCache(redis_url, prefix=unique_prefix, options=ROOMY) as stuck,
        RedisCache(redis_url, prefix=unique_prefix, options=ROOMY) as other,
    ):
        started = asyncio.Event()

        async def hang() -> str:
            started.set()
            await asyncio.Event().wait()
            return "never"

        holder = asyncio.create_task(stuck.get_or_set("k", hang, lease=0.3))
        await started.wait()
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await other.get_or_set("k", lambda: "loaded", lease=0.3) == "loaded"
        waited = loop.time() - began
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        loading = other.get_stats()["loading"]
        assert loading["lease_waits"] == 1
        # It either saw the lease expire (and took it) or gave up at its deadline.
        assert 0.2 < waited < 2.0
        assert loading["loads"] == 1


@pytest.mark.redis
async def test_a_failing_lease_holder_lets_the_waiter_load_at_once(
    redis_url: str, unique_prefix: str
) -> None:
    async with (
        RedisCache(redis_url, prefix=unique_prefix, options=ROOMY) as first,
        RedisCache(redis_url, prefix=unique_prefix, options=ROOMY) as second,
    ):
        started, fail = asyncio.Event(), asyncio.Event()

        async def failing() -> str:
            started.set()
            await fail.wait()
            raise LookupError("source down")

        holder = asyncio.create_task(first.get_or_set("k", failing, lease=30))
        await started.wait()
        waiter = asyncio.create_task(second.get_or_set("k", lambda: "loaded", lease=30))
        for _ in range(1000):  # until the waiter has found the lease taken
            if second.get_stats()["loading"]["lease_waits"]:
                break
            await asyncio.sleep(0.001)
        fail.set()
        with pytest.raises(LookupError):
            await holder
        # The holder gave the lease back: the waiter loads long before 30 s.
        assert await asyncio.wait_for(waiter, 5) == "loaded"
        assert second.get_stats()["loading"]["lease_timeouts"] == 0


async def test_with_redis_down_a_lease_is_skipped_and_the_value_loaded() -> None:
    options = ClientOptions(connect_timeout=0.2, operation_timeout=0.2)
    async with RedisCache("redis://127.0.0.1:1/0", options=options) as cache:
        assert await cache.get_or_set("k", lambda: "loaded", lease=5) == "loaded"
        assert cache.get_stats()["loading"]["lease_waits"] == 0


def _trigger_time(beta: float, delta: float, seed: int, rate: float = 10.0) -> float:
    """Seconds before expiry at which XFetch first starts a recomputation.

    One key, loaded by a loader taking ``delta`` seconds, then read ``rate`` times a
    second by a steady load until the first early recomputation (or expiry: 0).
    """
    random.seed(seed)
    clock = FakeClock(1_000.0)

    async def run() -> float:
        async with InMemoryCache(10, 3600, clock=clock) as cache:

            async def load() -> str:
                clock.advance(delta)
                return "v"

            await cache.get_or_set("k", load, 60, beta=beta)
            clock.advance(40)  # 20 s left: far enough for a head start of several delta
            for step in range(int(20 * rate)):
                await cache.get_or_set("k", load, 60, beta=beta)
                if cache.get_stats()["loading"]["early_refreshes"]:
                    return 20 - step / rate
                clock.advance(1 / rate)
            return 0.0

    return asyncio.run(run())


def test_xfetch_recomputes_before_expiry_earlier_for_slow_loaders_and_larger_beta() -> None:
    # Fixed seeds: the same draws every run. The bounds hold for any seed with
    # overwhelming probability (they are from XFetch's exponential head start).
    fast = [_trigger_time(1.0, 0.5, seed) for seed in range(150)]
    slow = [_trigger_time(1.0, 2.0, seed) for seed in range(150)]
    eager = [_trigger_time(3.0, 0.5, seed) for seed in range(150)]
    assert all(t > 0 for t in fast + slow + eager)  # never once left to expire
    # A head start of delta*beta*Exp(1) met by 10 reads a second: the first
    # recomputation comes about delta*beta*ln(10*delta*beta) s before expiry.
    assert 0.3 < statistics.median(fast) < 2.0
    assert statistics.median(slow) > 2 * statistics.median(fast)
    assert statistics.median(eager) > 2 * statistics.median(fast)


async def test_no_flight_or_background_load_outlives_its_work() -> None:
    clock = FakeClock(1_000.0)
    async with InMemoryCache(100, 60, clock=clock) as cache:
        await asyncio.gather(*(cache.get_or_set(f"k{i % 10}", lambda: 1, 10) for i in range(200)))
        await asyncio.gather(
            *(
                cache.get_or_set(f"s{i}", lambda: 1, 10, stale_while_revalidate=30)
                for i in range(50)
            )
        )
        clock.advance(15)
        await asyncio.gather(
            *(
                cache.get_or_set(f"s{i}", lambda: 2, 10, stale_while_revalidate=30)
                for i in range(50)
            )
        )
        for _ in range(1000):
            loading = cache.get_stats()["loading"]
            if loading["background"] == 0:
                break
            await asyncio.sleep(0)
        assert loading["in_flight"] == 0
        assert loading["background"] == 0
        assert loading["stale_served"] == 50
        assert await cache.get_many([f"s{i}" for i in range(50)]) == {f"s{i}": 2 for i in range(50)}


async def test_closing_the_cache_cancels_its_background_loads() -> None:
    clock = FakeClock(1_000.0)
    cache = InMemoryCache(100, 60, clock=clock)
    await cache.get_or_set("k", lambda: 1, 10, stale_while_revalidate=30)
    clock.advance(15)
    started = asyncio.Event()

    async def hang() -> int:
        started.set()
        await asyncio.Event().wait()
        return 2

    assert await cache.get_or_set("k", hang, 10, stale_while_revalidate=30) == 1
    await started.wait()
    await cache.aclose()
    for _ in range(100):
        if cache.get_stats()["loading"]["background"] == 0:
            break
        await asyncio.sleep(0)
    assert cache.get_stats()["loading"]["background"] == 0


async def test_stamps_stay_invisible_with_the_pickle_serializer() -> None:
    codec = Codec(serializer="pickle", pickle_key=b"k" * 32)
    clock = FakeClock(1_000.0)
    async with InMemoryCache(100, 60, codec=codec, clock=clock) as cache:
        value = {"a": [1, 2]}
        await cache.get_or_set("k", lambda: value, 10, stale_if_error=60)
        assert await cache.get("k") == value
        clock.advance(20)
        assert await cache.get_or_set("k", _failing, 10, stale_if_error=60) == value


@pytest.mark.redis
async def test_a_garbled_stamp_is_a_miss_not_a_crash(redis_url: str, unique_prefix: str) -> None:
    import msgpack

    async with RedisCache(redis_url, prefix=unique_prefix, options=ROOMY) as cache:
        body = msgpack.packb(msgpack.ExtType(12, msgpack.packb(["soon", 1, "v"])))
        await cache.client.set(unique_prefix + "k", b"\x01" + body)
        assert await cache.get("k") is None
        assert await cache.get_or_set("k", lambda: "fresh", stale_if_error=5) == "fresh"


@pytest.mark.redis
async def test_another_process_reads_a_stamped_entry_as_its_value(
    redis_url: str, unique_prefix: str
) -> None:
    async with (
        GenericRedisCache(redis_url, namespace=unique_prefix, options=ROOMY) as writer,
        GenericRedisCache(redis_url, namespace=unique_prefix, options=ROOMY) as reader,
    ):
        await writer.get_or_set("k", lambda: ("a", 1), 60, stale_while_revalidate=60)
        assert await reader.get("k") == ("a", 1)
        assert await reader.get("k") == ("a", 1)  # now from its memory tier
        assert await reader.get_or_set("k", _failing, 60, stale_while_revalidate=60) == ("a", 1)


def _failing() -> Any:
    raise LookupError("source down")
