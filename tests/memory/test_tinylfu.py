"""W-TinyLFU eviction, exercised through ``InMemoryCache(eviction="tinylfu")``."""

from __future__ import annotations

import random
from typing import Literal

import pytest

from stratacache import InMemoryCache
from stratacache.testing import FakeClock


async def _read_through(cache: InMemoryCache, key: str) -> bool:
    """One request as an application makes it: read, and store on a miss. True on a hit."""
    if await cache.get(key) is not None:
        return True
    await cache.set(key, key)
    return False


async def test_entry_bound_holds() -> None:
    cache = InMemoryCache(max_size=50, eviction="tinylfu")
    rng = random.Random(1)
    for _ in range(3000):
        await _read_through(cache, f"k{int(rng.paretovariate(1.0))}")
        assert cache.get_stats()["entries"] <= 50
    stats = cache.get_stats()
    assert stats["entries"] == 50
    assert stats["evictions"] == stats["sets"] - 50


@pytest.mark.parametrize(("eviction", "survives"), [("tinylfu", True), ("lru", False)])
async def test_a_frequently_read_key_survives_a_scan(
    eviction: Literal["lru", "tinylfu"], survives: bool
) -> None:
    cache = InMemoryCache(max_size=100, eviction=eviction)
    await cache.set("hot", "value")
    for _ in range(20):
        assert await cache.get("hot") == "value"
    for i in range(1000):  # one-off keys, each read (a miss) and then stored
        assert not await _read_through(cache, f"scan{i}")
    assert (await cache.get("hot") == "value") is survives
    assert cache.get_stats()["entries"] == 100


async def test_max_size_one_keeps_the_latest_key() -> None:
    cache = InMemoryCache(max_size=1, eviction="tinylfu")
    await cache.set("a", 1)
    for _ in range(5):
        assert await cache.get("a") == 1
    await cache.set("b", 2)
    assert await cache.get("b") == 2
    assert await cache.get("a") is None
    for i in range(20):
        await cache.set(f"k{i}", i)
        assert await cache.get(f"k{i}") == i
        assert cache.get_stats()["entries"] == 1


@pytest.mark.parametrize("max_size", [2, 3])
async def test_tiny_caches_hold_their_bound(max_size: int) -> None:
    cache = InMemoryCache(max_size=max_size, eviction="tinylfu")
    for i in range(200):
        await _read_through(cache, f"k{i % 7}")
        assert cache.get_stats()["entries"] <= max_size
    assert cache.get_stats()["entries"] == max_size


@pytest.mark.timeout(30)  # a stale victim() would make the tier's eviction loop spin
async def test_deletes_expiry_and_byte_pressure_keep_the_policy_consistent() -> None:
    clock = FakeClock()
    # ~300 bytes an entry: the byte bound (about 12 entries) bites before the 40-entry one,
    # so evictions go through victim() as well as through admission.
    cache = InMemoryCache(max_size=40, max_bytes=3600, eviction="tinylfu", clock=clock)
    rng = random.Random(7)
    deleted: set[str] = set()
    for step in range(4000):
        key = f"k{rng.randrange(60)}"
        action = rng.random()
        if action < 0.5:
            await _read_through(cache, key)
            deleted.discard(key)
        elif action < 0.7:
            await cache.set(key, "v" * rng.randrange(1, 40), ttl=rng.choice([1, 5, 3600]))
            deleted.discard(key)
        elif action < 0.85:
            await cache.delete(key)
            deleted.add(key)
        elif action < 0.95:
            await cache.expire(key, 1)
        else:
            clock.advance(2)
        stats = cache.get_stats()
        assert stats["entries"] <= 40
        assert stats["memory_usage_bytes"] <= 3600
        if step % 500 == 0:
            assert all([await cache.get(k) is None for k in deleted])
    stats = cache.get_stats()
    assert stats["evictions"] > 0
    assert stats["expirations"] > 0
    live = [k for k in (f"k{i}" for i in range(60)) if await cache.exists(k)]
    assert len(live) == stats["entries"]
    await cache.clear()
    assert cache.get_stats()["entries"] == 0
    for i in range(100):  # the policy starts over cleanly after clear()
        await _read_through(cache, f"again{i % 30}")
    assert 0 < cache.get_stats()["entries"] <= 40


async def test_the_window_grows_when_recency_predicts_reuse() -> None:
    """On a pure-recency trace a fixed 1% window scores ~57%; LRU ~80%.

    The hill climber must move most of the way to LRU by growing the window.
    """
    cache = InMemoryCache(max_size=100, eviction="tinylfu")
    rng = random.Random(3)
    history: list[str] = []
    hits = 0
    for n in range(20_000):
        if history and rng.random() < 0.8:  # re-read a recent key (stack distance ~ 50)
            key = history[-1 - min(int(rng.expovariate(1 / 50)), len(history) - 1)]
        else:
            key = f"new{n}"
        history.append(key)
        hits += await _read_through(cache, key)
    assert hits / 20_000 > 0.65


async def test_a_large_cache_fills_and_evicts() -> None:
    cache = InMemoryCache(max_size=20_000, eviction="tinylfu")  # wide sketch rows
    for i in range(22_000):
        await _read_through(cache, f"k{i}")
    stats = cache.get_stats()
    assert stats["entries"] == 20_000
    assert stats["evictions"] == 2_000
