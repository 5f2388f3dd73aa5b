"""InMemoryCache behaviour beyond the shared contract: bounds, LRU order, settings."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from stratacache import InMemoryCache, LocalCache, ValidationError
from stratacache.testing import FakeClock


async def test_lru_evicts_the_least_recently_read() -> None:
    cache = InMemoryCache(max_size=3, default_ttl=3600)
    for n in (1, 2, 3):
        await cache.set(f"key{n}", f"value{n}")
    for n in (1, 2, 3):
        assert await cache.get(f"key{n}") == f"value{n}"
    await cache.set("key4", "value4")
    assert await cache.get("key1") is None
    assert await cache.get("key4") == "value4"
    assert cache.get_stats()["evictions"] == 1


async def test_reading_a_key_protects_it_from_eviction() -> None:
    cache = InMemoryCache(max_size=2)
    await cache.set("a", 1)
    await cache.set("b", 2)
    await cache.get("a")
    await cache.set("c", 3)
    assert await cache.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}


async def test_exists_does_not_count_as_a_use() -> None:
    cache = InMemoryCache(max_size=2)
    await cache.set("a", 1)
    await cache.set("b", 2)
    assert await cache.exists("a")
    await cache.set("c", 3)
    assert not await cache.exists("a")


async def test_overfilling_keeps_the_most_recent_entries() -> None:
    cache = InMemoryCache(max_size=5, default_ttl=3600)
    for i in range(10):
        await cache.set(f"key_{i}", f"value_{i}")
    assert await cache.get_many([f"key_{i}" for i in range(10)]) == {
        f"key_{i}": f"value_{i}" for i in range(5, 10)
    }


async def test_expired_entries_are_purged_before_live_ones_are_evicted() -> None:
    clock = FakeClock()
    cache = InMemoryCache(max_size=2, clock=clock)
    await cache.set("short", 1, ttl=1)
    await cache.set("long", 2, ttl=100)
    clock.advance(2)
    await cache.set("new", 3)
    assert await cache.get_many(["long", "new"]) == {"long": 2, "new": 3}
    stats = cache.get_stats()
    assert (stats["evictions"], stats["expirations"], stats["entries"]) == (0, 1, 2)


async def test_stats_count_expired_entries_out() -> None:
    clock = FakeClock()
    cache = InMemoryCache(clock=clock)
    await cache.set("k", "v", ttl=1)
    clock.advance(1)
    stats = cache.get_stats()
    assert stats["entries"] == 0
    assert stats["memory_usage_bytes"] == 0


async def test_max_bytes_bounds_memory() -> None:
    cache = InMemoryCache(max_size=1000, max_bytes=5_000)
    for i in range(100):
        await cache.set(f"k{i}", "x" * 200)
        assert cache.get_stats()["memory_usage_bytes"] <= 5_000
    stats = cache.get_stats()
    assert 0 < stats["entries"] < 100
    assert stats["evictions"] == 100 - stats["entries"]
    assert await cache.get("k99") == "x" * 200


async def test_a_value_bigger_than_max_bytes_is_refused_and_the_old_value_dropped() -> None:
    cache = InMemoryCache(max_bytes=2_000)
    await cache.set("k", "small")
    await cache.set("k", "x" * 5_000)
    assert await cache.get("k") is None
    assert cache.get_stats()["rejections"] == 1


async def test_memory_usage_reflects_what_is_held() -> None:
    cache = InMemoryCache()
    await cache.set("k", "x" * 10_000)
    held = cache.get_stats()["memory_usage_bytes"]
    assert 10_000 < held < 11_000
    await cache.delete("k")
    assert cache.get_stats()["memory_usage_bytes"] == 0


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"max_size": 0}, "max_size must be a positive integer"),
        ({"max_size": -1}, "max_size must be a positive integer"),
        ({"max_size": 1.5}, "max_size must be a positive integer"),
        ({"default_ttl": "60"}, "must be an integer"),
        ({"default_ttl": -1}, "must be non-negative"),
        ({"default_ttl": 366 * 24 * 3600}, "must not exceed 365 days"),
        ({"max_bytes": 0}, "max_bytes must be a positive integer"),
        ({"eviction": "fifo"}, "eviction must be 'lru' or 'tinylfu'"),
        ({"namespace": 5}, "namespace must be a str"),
        ({"namespace": "a\x00"}, "NUL"),
    ],
)
def test_constructor_validates_its_arguments(kwargs: dict[str, Any], phrase: str) -> None:
    with pytest.raises(ValidationError, match=phrase):
        InMemoryCache(**kwargs)


def test_public_attributes_and_alias() -> None:
    cache = LocalCache(max_size=7, default_ttl=9)
    assert isinstance(cache, InMemoryCache)
    assert (cache.max_size, cache.default_ttl) == (7, 9)
    assert "max_size=7" in repr(cache)


async def test_default_ttl_zero_means_entries_never_expire() -> None:
    clock = FakeClock()
    cache = InMemoryCache(default_ttl=0, clock=clock)
    await cache.set("k", "v")
    clock.advance(10**9)
    assert await cache.get("k") == "v"


async def test_cache_stats_report() -> None:
    cache = InMemoryCache(namespace="shop", eviction="tinylfu")
    await cache.set("k", 1)
    report = await cache.get_cache_stats()
    assert report["backend"] == "memory"
    assert report["namespace"] == "shop"
    assert report["memory"]["entries"] == 1
    assert report["memory"]["eviction"] == "tinylfu"
    await cache.aclose()
    assert (await cache.get_cache_stats())["memory"]["status"] == "closed"


async def test_async_with_closes_the_cache() -> None:
    async with InMemoryCache() as cache:
        await cache.set("k", 1)
    assert cache.get_stats()["entries"] == 0


async def test_undecodable_values_are_misses_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import dataclass

    from stratacache import Codec

    broken = False

    @dataclass
    class Item:
        name: str

        def __post_init__(self) -> None:
            if broken:  # the class changed since the value was cached
                raise ValueError("schema drift")

    cache = InMemoryCache(codec=Codec(types=[Item]))
    await cache.set("a", Item("x"))
    await cache.set("b", Item("y"))
    broken = True
    with caplog.at_level(logging.DEBUG, logger="stratacache"):
        assert await cache.get("a", "default") == "default"
        assert await cache.get("b") is None
    assert not await cache.exists("a")
    stats = cache.get_stats()
    assert (stats["decode_errors"], stats["misses"], stats["hits"]) == (2, 2, 0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "undecodable" in warnings[0].getMessage()


def test_fake_clock_only_moves_forward() -> None:
    clock = FakeClock(5)
    assert clock() == 5.0
    assert clock.advance(2.5) == 7.5
    assert clock.now == 7.5
    assert "7.5" in repr(clock)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
