"""Contract: stats, closing, and safety under tasks and threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stratacache import CacheInterface, InfrastructureError

from _support import Subject

REQUIRED_STATS = {
    "hits",
    "misses",
    "sets",
    "deletes",
    "evictions",
    "expirations",
    "hit_rate",
    "entries",
    "max_size",
    "memory_usage_bytes",
}


async def test_stats_have_the_required_keys(cache: CacheInterface) -> None:
    assert set(cache.get_stats()) >= REQUIRED_STATS


async def test_hit_rate_is_a_fraction(cache: CacheInterface) -> None:
    assert cache.get_stats()["hit_rate"] == 0.0
    await cache.set("k", 1)
    await cache.get("k")
    await cache.get("absent")
    stats = cache.get_stats()
    assert (stats["hits"], stats["misses"], stats["sets"]) == (1, 1, 1)
    assert stats["hit_rate"] == 0.5


async def test_cache_stats_report_memory_status(cache: CacheInterface) -> None:
    report = await cache.get_cache_stats()
    assert report["memory"]["status"] in {"active", "disabled"}
    assert report["redis"]["status"] in {"connected", "disconnected", "disabled", "error"}


async def test_a_closed_cache_refuses_work(cache: CacheInterface) -> None:
    await cache.set("k", 1)
    await cache.aclose()
    with pytest.raises(InfrastructureError, match="closed"):
        await cache.get("k")
    with pytest.raises(InfrastructureError, match="closed"):
        await cache.set("k", 2)
    await cache.aclose()  # closing twice is harmless


async def test_thousands_of_tasks_see_their_own_values(cache: CacheInterface) -> None:
    async def worker(n: int) -> bool:
        key = f"task:{n}"
        await cache.set(key, {"n": n})
        await asyncio.sleep(0)
        got = await cache.get(key)
        return bool(got == {"n": n})

    assert all(await asyncio.gather(*(worker(n) for n in range(2000))))


def test_threads_with_their_own_loops_share_one_cache(subject: Subject) -> None:
    cache = subject.cache
    errors: list[BaseException] = []
    wrong: list[int] = []

    async def work(thread: int) -> None:
        for i in range(300):
            key = f"t{thread}:{i % 20}"
            await cache.set(key, [thread, i])
            got = await cache.get(key)
            if got is not None and got[0] != thread:
                wrong.append(thread)
            await cache.get_or_set(f"shared:{i % 10}", lambda n=i: n)  # type: ignore[misc]
            await cache.incr("counter")

    def run(thread: int) -> None:
        try:
            asyncio.run(work(thread))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert wrong == []
    assert asyncio.run(cache.get("counter")) == 1200
