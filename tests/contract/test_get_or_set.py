"""Contract: get_or_set loads once per process, shares errors, never leaks state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stratacache import CacheInterface, ValidationError


async def test_sync_and_async_loaders(cache: CacheInterface) -> None:
    async def load_async() -> dict[str, int]:
        return {"a": 1}

    assert await cache.get_or_set("sync", lambda: [1, 2]) == [1, 2]
    assert await cache.get_or_set("async", load_async) == {"a": 1}
    assert await cache.get("sync") == [1, 2]
    assert await cache.get("async") == {"a": 1}


async def test_a_cached_value_skips_the_loader(cache: CacheInterface) -> None:
    await cache.set("k", "cached")
    assert await cache.get_or_set("k", _never_called) == "cached"


async def test_a_loaded_none_is_cached(cache: CacheInterface) -> None:
    calls = 0

    def load() -> None:
        nonlocal calls
        calls += 1

    assert await cache.get_or_set("k", load) is None
    assert await cache.get_or_set("k", load) is None
    assert calls == 1


async def test_500_concurrent_callers_run_the_loader_once(cache: CacheInterface) -> None:
    calls = 0
    release = asyncio.Event()

    async def load() -> dict[str, list[int]]:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"items": [1, 2, 3]}

    tasks = [asyncio.create_task(cache.get_or_set("cold", load)) for _ in range(500)]
    await _until_all_missed(cache, 500)
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert all(result == {"items": [1, 2, 3]} for result in results)
    # Waiters get their own copies: one caller's mutation is invisible to others.
    results[0]["items"].append(4)
    assert results[1] == {"items": [1, 2, 3]}


async def test_a_failing_loader_reaches_every_waiter_and_is_not_cached(
    cache: CacheInterface,
) -> None:
    calls = 0
    release = asyncio.Event()

    async def load() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        raise LookupError("database down")

    tasks = [asyncio.create_task(cache.get_or_set("k", load)) for _ in range(20)]
    await _until_all_missed(cache, 20)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(result, LookupError) for result in results)
    assert not await cache.exists("k")
    assert await cache.get_or_set("k", lambda: "recovered") == "recovered"


async def test_cancelling_the_loading_caller_does_not_fail_the_waiters(
    cache: CacheInterface,
) -> None:
    started = asyncio.Event()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await asyncio.Event().wait()  # hangs until cancelled
        return "value"

    leader = asyncio.create_task(cache.get_or_set("k", load))
    await started.wait()
    waiter = asyncio.create_task(cache.get_or_set("k", load))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await waiter == "value"
    assert calls == 2


async def test_unknown_options_and_bad_loaders_are_refused(cache: CacheInterface) -> None:
    with pytest.raises(ValidationError, match="unknown get_or_set option"):
        await cache.get_or_set("k", lambda: 1, colour="blue")
    with pytest.raises(ValidationError, match="callable"):
        await cache.get_or_set("k", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="non-negative"):
        await cache.get_or_set("k", lambda: 1, ttl=-5)


async def test_get_or_set_honours_ttl(cache: CacheInterface) -> None:
    await cache.get_or_set("k", lambda: 1, ttl=42)
    assert await cache.get_ttl("k") == 42


async def _until_all_missed(cache: CacheInterface, callers: int) -> None:
    """Yield until every caller has missed (and so waits on the one flight)."""
    for _ in range(100_000):
        if cache.get_stats()["misses"] >= callers:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"only {cache.get_stats()['misses']} of {callers} callers missed")


def _never_called() -> Any:
    raise AssertionError("the loader must not run on a hit")


async def test_a_cold_get_or_set_counts_one_miss(cache: CacheInterface) -> None:
    before = cache.get_stats()["misses"]
    assert await cache.get_or_set("cold", lambda: 1) == 1
    assert cache.get_stats()["misses"] - before == 1
