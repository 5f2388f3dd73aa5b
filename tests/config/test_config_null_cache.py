"""NullCache, the ``disabled`` preset: nothing cached, nothing a real cache refuses allowed."""

from __future__ import annotations

import pytest

from stratacache import InfrastructureError, SerializationError, ValidationError
from stratacache.config import NullCache


async def test_reads_always_miss_and_writes_store_nothing() -> None:
    cache = NullCache(default_ttl=60)
    await cache.set("k", "v")
    await cache.set_many({"a": 1, "b": 2})
    assert await cache.get("k") is None
    assert await cache.get("k", "fallback") == "fallback"
    assert await cache.get_many(["a", "b"]) == {}
    assert await cache.exists("k") is False
    assert await cache.get_ttl("k") is None
    assert await cache.expire("k", 10) is False
    assert await cache.delete("k") is False
    assert await cache.delete_many(["a", "b"]) == 0
    assert await cache.invalidate_pattern("*") == 0
    assert await cache.invalidate_tags("t") == 0
    await cache.clear()
    assert await cache.incr("n") == 1
    assert await cache.incr("n", 5) == 5  # the counter never exists


async def test_get_or_set_runs_the_loader_every_time() -> None:
    cache = NullCache()
    calls: list[int] = []

    async def load() -> int:
        calls.append(1)
        return len(calls)

    assert await cache.get_or_set("k", load) == 1
    assert await cache.get_or_set("k", load) == 2


async def test_it_refuses_what_a_real_cache_refuses() -> None:
    cache = NullCache()
    with pytest.raises(ValidationError):
        await cache.get("")
    with pytest.raises(ValidationError):
        await cache.set("k", 1, ttl=-1)
    with pytest.raises(ValidationError):
        await cache.set("k", 1, tags="single")
    with pytest.raises(SerializationError):
        await cache.set("k", object())
    with pytest.raises(SerializationError):
        await cache.set_many({"k": object()})
    with pytest.raises(ValidationError):
        await cache.incr("k", delta=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await cache.invalidate_pattern("")
    with pytest.raises(ValidationError):
        NullCache(default_ttl=-1)


async def test_stats_say_caching_is_disabled() -> None:
    cache = NullCache()
    await cache.set("k", 1)
    await cache.get("k")
    await cache.get_many(["a", "b"])
    stats = cache.get_stats()
    assert (stats["hits"], stats["misses"], stats["sets"], stats["hit_rate"]) == (0, 3, 1, 0.0)
    assert stats["entries"] == 0
    full = await cache.get_cache_stats()
    assert full["backend"] == "disabled"
    assert full["redis"]["status"] == "disabled"
    assert full["memory"]["status"] == "disabled"


async def test_a_closed_null_cache_raises_like_any_other() -> None:
    async with NullCache() as cache:
        await cache.set("k", 1)
    with pytest.raises(InfrastructureError):
        await cache.get("k")
    with pytest.raises(InfrastructureError):
        await cache.set("k", 1)


async def test_scan_keys_lists_nothing_and_checks_its_arguments() -> None:
    cache = NullCache()
    await cache.set("k", 1)
    assert await cache.scan_keys("*") == ("0", [])
    with pytest.raises(ValidationError):
        await cache.scan_keys("*", cursor="r123")  # never handed out
    with pytest.raises(ValidationError):
        await cache.scan_keys("*", count=0)
