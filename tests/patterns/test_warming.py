"""CacheWarmer: loading registered keys with bounded concurrency, timeouts and reports."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from stratacache import InMemoryCache, ValidationError
from stratacache._warming import CacheWarmer
from stratacache.testing import FakeClock


@pytest.fixture
def cache() -> InMemoryCache:
    return InMemoryCache(max_size=1000, default_ttl=300, clock=FakeClock(100.0))


@pytest.fixture
def warmer(cache: InMemoryCache) -> CacheWarmer:
    return CacheWarmer(cache)


async def test_warm_key_loads_and_stores_with_ttl_and_tags(
    warmer: CacheWarmer, cache: InMemoryCache
) -> None:
    warmer.register("config", lambda: {"feature": True}, ttl=60, tags=["config"])
    assert await warmer.warm_key("config") is True
    assert await cache.get("config") == {"feature": True}
    assert await cache.get_ttl("config") == 60
    assert await cache.invalidate_tags("config") == 1


async def test_warming_refreshes_what_is_already_cached(
    warmer: CacheWarmer, cache: InMemoryCache
) -> None:
    await cache.set("k", "stale")
    warmer.register("k", lambda: "fresh")
    assert await warmer.warm_key("k")
    assert await cache.get("k") == "fresh"


async def test_sync_loaders_run_in_a_worker_thread(warmer: CacheWarmer) -> None:
    threads: list[int] = []

    def load() -> str:
        threads.append(threading.get_ident())
        return "v"

    warmer.register("k", load)
    assert await warmer.warm_key("k")
    assert threads
    assert threads != [threading.get_ident()]


async def test_any_callable_may_load(warmer: CacheWarmer, cache: InMemoryCache) -> None:
    async def coroutine() -> str:
        return "from a coroutine"

    warmer.register("partial", lambda: coroutine())  # sync, but returns an awaitable
    warmer.register("builtin", dict)  # a builtin type: no signature to inspect
    assert await warmer.warm_all() == {"partial": True, "builtin": True}
    assert await cache.get_many(["partial", "builtin"]) == {
        "partial": "from a coroutine",
        "builtin": {},
    }


async def test_warmable_registers_the_function_and_returns_it(
    warmer: CacheWarmer, cache: InMemoryCache
) -> None:
    @warmer.warmable("catalog:top", ttl=30)
    async def top_products() -> list[str]:
        return ["a", "b"]

    assert await top_products() == ["a", "b"]  # still callable as before
    assert warmer.keys == ["catalog:top"]
    assert await warmer.warm_all() == {"catalog:top": True}
    assert await cache.get("catalog:top") == ["a", "b"]
    assert await cache.get_ttl("catalog:top") == 30


async def test_a_failing_and_a_slow_loader_do_not_stop_the_rest(
    warmer: CacheWarmer, cache: InMemoryCache, caplog: pytest.LogCaptureFixture
) -> None:
    never = asyncio.Event()

    async def slow() -> str:
        await never.wait()  # hangs until the timeout cancels it
        return "too late"

    def broken() -> str:
        raise LookupError("database down")

    warmer.register("first", lambda: 1)
    warmer.register("slow", slow)
    warmer.register("broken", broken)
    warmer.register("unstorable", lambda: object())
    warmer.register("last", lambda: 2)
    results = await warmer.warm_all(concurrency=2, timeout=0.05)
    assert results == {
        "first": True,
        "slow": False,
        "broken": False,
        "unstorable": False,
        "last": True,
    }
    assert list(results) == warmer.keys  # registration order
    assert await cache.get_many(["first", "slow", "broken", "unstorable", "last"]) == {
        "first": 1,
        "last": 2,
    }
    assert "warming 'slow' timed out after 0.05 s" in caplog.text
    assert "warming 'broken' failed: its loader raised" in caplog.text
    assert "LookupError: database down" in caplog.text
    assert "warming 'unstorable' failed: storing the value raised" in caplog.text


async def test_a_timed_out_sync_loader_is_abandoned(warmer: CacheWarmer) -> None:
    release = threading.Event()
    warmer.register("blocking", lambda: release.wait(10))
    try:
        assert await warmer.warm_key("blocking", timeout=0.05) is False
    finally:
        release.set()  # let the abandoned thread finish


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_concurrency_is_bounded_and_used(cache: InMemoryCache, concurrency: int) -> None:
    warmer = CacheWarmer(cache)
    in_flight = peak = 0

    def make(n: int) -> Any:
        async def load() -> int:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            for _ in range(5):  # stay in flight while the others start
                await asyncio.sleep(0)
            in_flight -= 1
            return n

        return load

    for n in range(20):
        warmer.register(f"k{n}", make(n))
    results = await warmer.warm_all(concurrency=concurrency)
    assert all(results.values())
    assert len(results) == 20
    assert peak == concurrency


async def test_progress_is_reported_after_each_key(warmer: CacheWarmer) -> None:
    warmer.register("a", lambda: 1)
    warmer.register("b", lambda: 1 / 0)
    warmer.register("c", lambda: 3)
    seen: list[tuple[int, int, str, bool]] = []
    await warmer.warm_all(concurrency=1, progress=lambda *report: seen.append(report))
    assert seen == [(1, 3, "a", True), (2, 3, "b", False), (3, 3, "c", True)]


async def test_an_async_progress_callback_is_awaited(warmer: CacheWarmer) -> None:
    warmer.register("a", lambda: 1)
    seen: list[str] = []

    async def progress(done: int, total: int, key: str, ok: bool) -> None:
        seen.append(key)

    await warmer.warm_all(progress=progress)
    assert seen == ["a"]


async def test_a_failing_progress_callback_does_not_stop_warming(
    warmer: CacheWarmer, cache: InMemoryCache, caplog: pytest.LogCaptureFixture
) -> None:
    warmer.register("a", lambda: 1)
    warmer.register("b", lambda: 2)

    def progress(done: int, total: int, key: str, ok: bool) -> None:
        raise RuntimeError("progress bar broke")

    assert await warmer.warm_all(concurrency=1, progress=progress) == {"a": True, "b": True}
    assert await cache.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert caplog.text.count("progress callback raised") == 2


async def test_an_empty_warmer_warms_nothing(warmer: CacheWarmer) -> None:
    assert await warmer.warm_all() == {}


async def test_registration_is_validated(warmer: CacheWarmer) -> None:
    warmer.register("k", lambda: 1)
    with pytest.raises(ValidationError, match="already registered"):
        warmer.register("k", lambda: 2)
    with pytest.raises(ValidationError, match="already registered"):
        warmer.warmable("k")(lambda: 3)
    with pytest.raises(ValidationError, match="empty"):
        warmer.register("", lambda: 1)
    with pytest.raises(ValidationError, match="callable"):
        warmer.register("x", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="non-negative"):
        warmer.register("x", lambda: 1, ttl=-1)
    with pytest.raises(ValidationError, match="tag"):
        warmer.register("x", lambda: 1, tags="single")
    with pytest.raises(ValidationError, match="no arguments, but needs user_id"):
        warmer.register("x", lambda user_id: user_id)  # type: ignore[arg-type, misc]
    assert warmer.keys == ["k"]
    assert warmer.unregister("k") is True
    assert warmer.unregister("k") is False
    warmer.register("k", lambda: 2)  # free again
    with pytest.raises(ValidationError, match="CacheInterface"):
        CacheWarmer({})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": -1}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"concurrency": 1.5}, "concurrency"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"progress": "bar"}, "progress"),
    ],
)
async def test_warm_all_arguments_are_validated(
    warmer: CacheWarmer, options: dict[str, Any], phrase: str
) -> None:
    warmer.register("k", lambda: 1)
    with pytest.raises(ValidationError, match=phrase):
        await warmer.warm_all(**options)


async def test_warming_an_unknown_key_is_an_error(warmer: CacheWarmer) -> None:
    with pytest.raises(ValidationError, match="no loader is registered for 'nope'"):
        await warmer.warm_key("nope")


async def test_cancelling_warm_all_cancels_the_loaders(warmer: CacheWarmer) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    warmer.register("hang", hang)
    task = asyncio.create_task(warmer.warm_all())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(cancelled.wait(), 1)


def test_repr_and_len(warmer: CacheWarmer) -> None:
    warmer.register("k", lambda: 1)
    assert len(warmer) == 1
    assert "keys=1" in repr(warmer)
