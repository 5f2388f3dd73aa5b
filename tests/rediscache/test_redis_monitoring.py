"""How RedisCache reports to its monitor: exact counts pulled, latency sampled, slow ones exact."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import Codec, RedisCache
from stratacache._codec import UndecodableValue
from stratacache.monitoring import CachePerformanceMonitor

pytestmark = pytest.mark.redis


def _ops(monitor: CachePerformanceMonitor) -> dict[str, Any]:
    ops: dict[str, Any] = monitor.get_performance_stats()["cache_operations"]["by_operation_type"]
    return ops


async def test_every_command_is_counted_and_one_in_sample_every_timed(
    redis_url: str, unique_prefix: str
) -> None:
    monitor = CachePerformanceMonitor(sample_every=4)
    async with RedisCache(redis_url, prefix=unique_prefix, performance_monitor=monitor) as cache:
        for i in range(5):
            await cache.set(f"k{i}", i)
        for i in range(7):
            await cache.get(f"k{i}")
        await cache.get_many(["k0", "nope"])
        ops = _ops(monitor)
        assert (ops["set"]["count"], ops["get"]["hits"], ops["get"]["misses"]) == (5, 5, 2)
        assert ops["get_many"]["count"] == 1
        stats = monitor.get_performance_stats()
        assert stats["by_tier"]["redis"]["operations"] == 14  # and the PING of async with
        assert stats["cache_operations"]["samples"] == 14 // 4
        await cache.delete_many([f"k{i}" for i in range(5)])


async def test_slow_commands_are_counted_exactly_though_latency_is_sampled(
    redis_url: str, unique_prefix: str
) -> None:
    monitor = CachePerformanceMonitor()  # samples one in 256
    monitor.cache_operation_threshold = 0.0  # every command is slow
    async with RedisCache(redis_url, prefix=unique_prefix, performance_monitor=monitor) as cache:
        for _ in range(10):
            await cache.get("absent")
    stats = monitor.get_performance_stats()["cache_operations"]
    assert (stats["slow_operations"], stats["samples"]) == (11, 0)  # the PING too


async def test_a_monitor_that_cannot_attach_is_told_of_every_command(
    redis_url: str, unique_prefix: str
) -> None:
    class PushOnly:
        def __init__(self) -> None:
            self.seen: list[tuple[str, str, str]] = []

        def record_cache_operation_time(self, operation: str, duration: float, **kw: Any) -> None:
            self.seen.append((operation, kw["tier"], kw["result"]))

    monitor = PushOnly()
    async with RedisCache(
        redis_url,
        prefix=unique_prefix,
        performance_monitor=monitor,  # type: ignore[arg-type]  # duck-typed on purpose
    ) as cache:
        await cache.set("a", 1)
        assert await cache.get("a") == 1
        assert await cache.get("b") is None
        await cache.delete("a")
    assert monitor.seen[:4] == [
        ("PING", "redis", "ok"),
        ("set", "redis", "ok"),
        ("get", "redis", "hit"),
        ("get", "redis", "miss"),
    ]


async def test_a_monitor_failing_to_sample_never_fails_a_command(
    redis_url: str, unique_prefix: str
) -> None:
    class Broken(CachePerformanceMonitor):
        def record_sample(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("monitor down")

    monitor = Broken(sample_every=2)
    async with RedisCache(redis_url, prefix=unique_prefix, performance_monitor=monitor) as cache:
        for _ in range(6):
            await cache.set("a", 1)
        assert _ops(monitor)["set"]["count"] == 6  # counting goes on
        await cache.delete("a")


async def test_assigning_a_monitor_moves_the_counting_and_close_reports_the_rest(
    redis_url: str, unique_prefix: str
) -> None:
    first, second = CachePerformanceMonitor(), CachePerformanceMonitor()
    cache = RedisCache(redis_url, prefix=unique_prefix, performance_monitor=first)
    await cache.set("a", 1)
    cache.performance_monitor = second
    assert cache.performance_monitor is second
    await cache.get("a")
    await cache.delete("a")
    await cache.aclose()
    assert first.get_performance_stats()["total_cache_operations"] == 1
    assert second.get_performance_stats()["total_cache_operations"] == 2


def test_decode_many_decodes_and_refuses_exactly_as_decode() -> None:
    codec = Codec()
    stored = [
        codec.encode("é text", "p:a"),
        codec.encode(7, "p:b"),
        None,
        codec.encode({"x": (1, 2)}, "p:d"),
        b"",
        b"\x06\xff",
        b"\x7f",
    ]
    keys = list("abcdefg")
    found, failed = codec.decode_many(keys, stored, "p:")
    assert found == {"a": "é text", "b": 7, "d": {"x": (1, 2)}}
    for key, exc in failed:
        data = stored[keys.index(key)]
        assert data is not None
        with pytest.raises(UndecodableValue, match=str(exc)):
            codec.decode(data, "p:" + key)
    assert [key for key, _ in failed] == ["e", "f", "g"]


def test_decode_many_defers_to_a_subclass_decode() -> None:
    class Upper(Codec):
        def decode(self, data: bytes, key: str) -> Any:
            return str(super().decode(data, key)).upper()

    codec = Upper()
    assert codec.decode_many(["a"], [codec.encode("text", "a")])[0] == {"a": "TEXT"}
