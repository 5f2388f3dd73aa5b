"""CachePerformanceMonitor: accuracy, retention, bounded memory, failure isolation, advice."""

from __future__ import annotations

import gc
import json
import logging
import math
import random
import threading
import tracemalloc
from typing import Any

import pytest

from stratacache import InMemoryCache, ValidationError
from stratacache.monitoring import CachePerformanceMonitor, CounterReading
from stratacache.monitoring._histogram import PER_OCTAVE, bucket_of
from stratacache.testing import FakeClock

STEP = 2 ** (1 / PER_OCTAVE)


def make_monitor(**options: Any) -> tuple[CachePerformanceMonitor, FakeClock]:
    clock = FakeClock(10_000.0)
    return CachePerformanceMonitor(clock=clock, **options), clock


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


# -- accuracy through a real cache -------------------------------------------------------------


async def test_ten_sets_five_hits_three_misses_are_counted_exactly() -> None:
    cache = InMemoryCache()
    for i in range(10):
        await cache.set(f"key{i}", i)
    for i in range(5):
        assert await cache.get(f"key{i}") == i
    for i in range(3):
        assert await cache.get(f"absent{i}") is None
    stats = cache.performance_monitor.get_performance_stats()
    assert stats["cache_hits"] == 5  # the contract asks >= 5; counts are exact
    assert stats["cache_misses"] == 3
    assert stats["total_cache_operations"] == 18
    assert stats["cache_hit_rate"] == pytest.approx(62.5)
    operations = stats["cache_operations"]["by_operation_type"]
    assert operations["set"]["count"] == 10
    assert (operations["get"]["count"], operations["get"]["hits"]) == (8, 5)
    assert operations["get"]["misses"] == 3
    assert stats["by_tier"]["memory"] == {
        "operations": 18,
        "hits": 5,
        "misses": 3,
        "hit_rate": pytest.approx(62.5),
    }
    for key in ("timestamp", "retention_hours", "sample_every", "lifetime", "memory_usage"):
        assert key in stats
    json.dumps(stats, allow_nan=False)  # JSON-ready: no NaN, no infinity, no objects


@pytest.mark.parametrize("sample_every", [1, 2, 3, 7, 256])
async def test_cache_stats_and_monitor_agree_with_a_model_whatever_the_sampling(
    sample_every: int,
) -> None:
    monitor = CachePerformanceMonitor(sample_every=sample_every)
    cache = InMemoryCache(max_size=50, performance_monitor=monitor)
    rng = random.Random(sample_every)
    hits = misses = sets = 0
    present: set[str] = set()
    for _ in range(2_000):
        key = f"k{rng.randrange(80)}"
        roll = rng.random()
        if roll < 0.3:
            await cache.set(key, [rng.random()] if roll < 0.1 else "v")
            present.add(key)
            sets += 1
            while len(present) > 50:  # LRU evictions: track what the cache keeps
                present = {k for k in present if await cache.exists(k)}
        elif roll < 0.35:
            with pytest.raises(ValidationError):
                await cache.get("")  # a failed get is neither a hit nor a miss
        elif roll < 0.4:
            await cache.delete(key)
            present.discard(key)
        else:
            found = await cache.get(key, None)
            if key in present and found is not None:
                hits += 1
            else:
                present.discard(key)
                misses += 1
    stats = cache.get_stats()
    assert (stats["hits"], stats["misses"], stats["sets"]) == (hits, misses, sets)
    report = monitor.get_performance_stats()
    assert (report["cache_hits"], report["cache_misses"]) == (hits, misses)
    assert report["cache_operations"]["by_operation_type"]["set"]["count"] == sets


async def test_sampled_latencies_are_reported_with_their_sample_count() -> None:
    monitor = CachePerformanceMonitor(sample_every=4)
    cache = InMemoryCache(performance_monitor=monitor)
    await cache.set("k", "v")
    for _ in range(400):
        await cache.get("k")
    for _ in range(100):
        await cache.get("missing")
    get = monitor.get_performance_stats()["cache_operations"]["by_operation_type"]["get"]
    assert (get["count"], get["hits"], get["misses"]) == (500, 400, 100)
    assert get["samples"] == 125  # one get in four was timed
    assert 0 < get["p50_ms"] <= get["p95_ms"] <= get["p99_ms"] <= get["max_ms"] < 1_000
    assert get["estimated_total_duration"] == pytest.approx(get["avg_duration"] * 500)
    assert get["by_tier"]["memory"]["samples"] == 125


async def test_every_operation_is_counted_and_invalidations_are_recorded() -> None:
    cache = InMemoryCache(namespace="shop")
    await cache.set_many({"a": 1, "b": 2})
    await cache.set("user:1", 1, tags=["users"])
    await cache.set("user:2", 2, tags=["users"])
    await cache.get_many(["a", "b", "zz"])
    await cache.exists("a")
    await cache.get_ttl("a")
    await cache.expire("a", 10)
    await cache.incr("n")
    await cache.delete("b")
    await cache.delete_many(["a", "q"])
    assert await cache.invalidate_tags("users") == 2
    await cache.set("page:1", 1)
    assert await cache.invalidate_pattern("page:*") == 1
    await cache.clear()
    stats = cache.performance_monitor.get_performance_stats()
    counts = {op: s["count"] for op, s in stats["cache_operations"]["by_operation_type"].items()}
    assert counts == {
        "clear": 1,
        "delete": 1,
        "delete_many": 1,
        "exists": 1,
        "expire": 1,
        "get": 3,
        "get_many": 1,
        "get_ttl": 1,
        "incr": 1,
        "invalidate_pattern": 1,
        "invalidate_tags": 1,
        "set": 3,
        "set_many": 1,
    }
    invalidation = cache.performance_monitor.get_invalidation_frequency_stats()
    assert invalidation["total_invalidations"] == 3
    assert invalidation["patterns"]["invalidation_types"] == {"clear": 1, "pattern": 1, "tag": 1}
    assert invalidation["patterns"]["most_common_patterns"] == {"*": 1, "page:*": 1, "users": 1}
    assert invalidation["total_keys_invalidated"] == 1 + 2 + 1  # clear found the incr'd key


async def test_the_cache_reports_memory_and_evictions() -> None:
    cache = InMemoryCache(max_size=3)
    for i in range(5):
        await cache.set(f"k{i}", "x" * 100)
    stats = cache.performance_monitor.get_performance_stats()
    assert stats["evictions"] == 2
    current = stats["memory_usage"]["current"]
    assert current["cache_entry_count"] == 3
    assert current["total_cache_size_bytes"] == cache.get_stats()["memory_usage_bytes"] > 0
    assert current["by_tier"]["memory"]["entries"] == 3


async def test_each_cache_owns_a_monitor_unless_given_one() -> None:
    first, second = InMemoryCache(), InMemoryCache()
    assert first.performance_monitor is not second.performance_monitor
    shared = CachePerformanceMonitor()
    users = InMemoryCache(namespace="users", performance_monitor=shared)
    pages = InMemoryCache(namespace="pages", performance_monitor=shared)
    assert users.performance_monitor is pages.performance_monitor is shared
    await users.set("u", 1)
    await users.get("u")
    await pages.get("p")
    stats = shared.get_performance_stats()
    assert (stats["cache_hits"], stats["cache_misses"]) == (1, 1)
    labels = {(s.cache, s.operation, s.result) for s in shared.snapshot().series}
    assert labels == {("users", "set", "ok"), ("users", "get", "hit"), ("pages", "get", "miss")}


async def test_a_closed_cache_keeps_its_figures_and_a_dead_one_is_dropped() -> None:
    shared = CachePerformanceMonitor()
    cache = InMemoryCache(performance_monitor=shared)
    await cache.set("k", 1)
    await cache.get("k")
    await cache.aclose()
    await cache.aclose()  # twice is harmless
    assert shared.get_performance_stats()["cache_hits"] == 1
    other = InMemoryCache(performance_monitor=shared)
    await other.get("k")
    assert shared.get_performance_stats()["monitor"]["sources"] == 1
    del other
    gc.collect()  # the monitor holds the cache weakly
    assert shared.get_performance_stats()["monitor"]["sources"] == 0


def test_hits_and_misses_count_once_across_tiers() -> None:
    monitor, _ = make_monitor()
    for hit in (True,) * 6 + (False,) * 4:  # memory tier: 6 hits, 4 misses
        monitor.record_cache_operation_time("get", 1e-6, hit, tier="memory")
    for hit in (True, True, True, False):  # the 4 misses went on to Redis: 3 hits
        monitor.record_cache_operation_time("get", 1e-3, hit, tier="redis")
    stats = monitor.get_performance_stats()
    assert (stats["cache_hits"], stats["cache_misses"]) == (9, 1)
    assert stats["by_tier"]["memory"]["hits"] == 6
    assert stats["by_tier"]["redis"] == {
        "operations": 4,
        "hits": 3,
        "misses": 1,
        "hit_rate": pytest.approx(75.0),
    }
    monitor.record_cache_operation_time("set", 1e-3, False, tier="redis")  # not a lookup
    assert monitor.get_performance_stats()["cache_misses"] == 1


# -- percentiles ---------------------------------------------------------------------------


def test_percentiles_of_known_durations_are_bucket_accurate() -> None:
    monitor, _ = make_monitor()
    rng = random.Random(42)
    durations = [math.exp(rng.uniform(math.log(1e-6), math.log(1.0))) for _ in range(3_000)]
    for seconds in durations:
        monitor.record_cache_operation_time("get", seconds, cache_hit=True, tier="memory")
    get = monitor.get_performance_stats()["cache_operations"]["by_operation_type"]["get"]
    assert get["samples"] == get["count"] == 3_000
    for name, fraction in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        exact = nearest_rank(durations, fraction)
        reported = get[name] / 1000.0
        assert bucket_of(reported) == bucket_of(exact), name
        assert 1 / STEP <= reported / exact <= STEP, name
    assert get["max_duration"] == max(durations)
    assert get["avg_duration"] == pytest.approx(sum(durations) / len(durations))


def test_slow_operations_are_counted() -> None:
    monitor, _ = make_monitor(cache_operation_threshold=0.01)
    for seconds in (0.001, 0.02, 0.5):
        monitor.record_cache_operation_time("set", seconds)
    operations = monitor.get_performance_stats()["cache_operations"]
    assert operations["slow_operations"] == 2
    assert operations["by_operation_type"]["set"]["slow_operations"] == 2


# -- the retention window ----------------------------------------------------------------


def test_figures_leave_the_window_with_the_fake_clock() -> None:
    monitor, clock = make_monitor(retention_hours=1.0, intervals=12)  # 5-minute slots
    for _ in range(5):
        monitor.record_cache_operation_time("get", 1e-4, cache_hit=True)
    clock.advance(40 * 60)
    for _ in range(3):
        monitor.record_cache_operation_time("get", 1e-4, cache_hit=False)
    stats = monitor.get_performance_stats()
    assert (stats["cache_hits"], stats["cache_misses"]) == (5, 3)
    clock.advance(25 * 60)  # the first five are 65 minutes old now
    stats = monitor.get_performance_stats()
    assert (stats["cache_hits"], stats["cache_misses"]) == (0, 3)
    assert stats["cache_operations"]["by_operation_type"]["get"]["samples"] == 3
    clock.advance(2 * 3600)
    stats = monitor.get_performance_stats()
    assert (stats["total_cache_operations"], stats["cache_operations"]["samples"]) == (0, 0)
    lifetime = stats["lifetime"]
    assert (lifetime["cache_hits"], lifetime["cache_misses"]) == (5, 3)


async def test_a_caches_counts_age_out_on_its_own_clock() -> None:
    clock = FakeClock(500.0)
    monitor = CachePerformanceMonitor(clock=clock, sample_every=1)
    cache = InMemoryCache(default_ttl=0, clock=clock, performance_monitor=monitor)
    await cache.set("k", 1)
    clock.advance(10)  # timed operations read the counters at most every 5 s
    await cache.get("k")
    clock.advance(30 * 60)
    await cache.get("missing")
    assert monitor.get_performance_stats()["cache_hits"] == 1
    clock.advance(45 * 60)  # the hit is 75 minutes old, the miss 45
    stats = monitor.get_performance_stats()
    assert (stats["cache_hits"], stats["cache_misses"]) == (0, 1)
    assert stats["lifetime"]["cache_hits"] == 1


async def test_after_a_quiet_spell_counts_land_where_they_are_read() -> None:
    clock = FakeClock(500.0)
    cache = InMemoryCache(default_ttl=0, clock=clock)  # times one get in 256
    await cache.get("missing")  # not timed: the monitor learns of it when it reads
    clock.advance(50 * 60)  # t = 3500 s, in the 5-minute interval [3300, 3600)
    monitor = cache.performance_monitor
    assert monitor.get_performance_stats()["cache_misses"] == 1  # read now, not lost
    clock.advance(50 * 60)  # t = 6500 s: the window still holds [3300, 3600)
    assert monitor.get_performance_stats()["cache_misses"] == 1
    clock.advance(10 * 60)  # t = 7100 s: it holds [3600, 7200) only
    assert monitor.get_performance_stats()["cache_misses"] == 0


def test_the_memory_trend_follows_readings() -> None:
    monitor, clock = make_monitor(memory_warning_threshold_bytes=1000)
    monitor.record_memory_usage(memory_bytes=100, entries=1)
    clock.advance(30 * 60)
    reading = monitor.record_memory_usage(memory_bytes=600, entries=6)
    assert reading["total_cache_size_bytes"] == 600
    trends = monitor.get_memory_usage_stats()["trends"]
    assert trends["readings"] == 2
    assert trends["growth_rate_mb_per_hour"] == pytest.approx(1000 / 1024 / 1024, rel=0.01)
    assert monitor.get_memory_warnings() == []
    monitor.record_memory_usage(redis_stats={"memory_used_bytes": 500, "keys": 5})
    warnings = monitor.get_memory_warnings()
    assert [w["severity"] for w in warnings] == ["warning"]
    assert monitor.get_memory_usage_stats()["current"]["cache_entry_count"] == 11


# -- bounded memory -------------------------------------------------------------------------


def test_memory_stays_flat_over_a_million_operations() -> None:
    monitor, clock = make_monitor(retention_hours=1.0)
    operations = [f"op{i}" for i in range(100)]  # past the label cap
    caches = [f"cache{i}" for i in range(40)]
    patterns = [f"pattern:{i}:*" for i in range(200)]
    rng = random.Random(1)
    durations = [math.exp(rng.uniform(math.log(1e-7), math.log(10.0))) for _ in range(4096)]

    def run(start: int, stop: int) -> None:
        record = monitor.record_cache_operation_time
        for i in range(start, stop):
            record(operations[i % 100], durations[i % 4096], i % 3 == 0, cache=caches[i % 40])
            if i % 100 == 0:
                monitor.record_invalidation_event(patterns[i % 200], i % 7, 1e-4, "pattern")
                monitor.record_key_generation_time(1e-5, i % 500, f"type{i % 50}")
                monitor.record_compression_ratio(1000, 400, 1e-5)
            if i % 20 == 0:
                clock.advance(1.0)  # 50,000 s in all: the window turns over many times

    tracemalloc.start()
    try:
        run(0, 100_000)
        gc.collect()
        at_100k = tracemalloc.get_traced_memory()[0]
        run(100_000, 1_000_000)
        gc.collect()
        at_1m = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert at_1m - at_100k < 64 * 1024, (at_100k, at_1m)
    stats = monitor.get_performance_stats()
    assert stats["lifetime"]["total_cache_operations"] == 1_000_000
    assert stats["monitor"]["series"] <= 256


def test_label_maps_are_bounded_and_the_rest_is_other(caplog: pytest.LogCaptureFixture) -> None:
    monitor, _ = make_monitor(max_operations=8)
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        for i in range(1_000):
            monitor.record_cache_operation_time(f"operation-{i}", 1e-4)
    by_operation = monitor.get_performance_stats()["cache_operations"]["by_operation_type"]
    assert len(by_operation) == 9
    assert by_operation["other"]["count"] == 992
    assert sum(entry["count"] for entry in by_operation.values()) == 1_000
    overflow_logs = [r for r in caplog.records if "distinct operation labels" in r.message]
    assert len(overflow_logs) == 1
    assert monitor.get_performance_stats()["monitor"]["label_overflows"] == {"operation": 992}
    monitor.record_cache_operation_time("x" * 10_000, 1e-4)  # long labels are cut short


def test_series_are_bounded_too() -> None:
    monitor, _ = make_monitor(max_series=10, max_operations=100)
    for i in range(50):
        monitor.record_cache_operation_time(f"op{i}", 1e-4, cache=f"c{i % 5}")
    series = monitor.snapshot().series
    assert len(series) == 11
    assert sum(s.count for s in series) == 50
    assert ("other", "other", "other", "other") in {
        (s.cache, s.operation, s.tier, s.result) for s in series
    }


# -- failures never reach the cache ----------------------------------------------------------


async def test_a_raising_callback_is_logged_rarely_and_never_propagates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = CachePerformanceMonitor(sample_every=1)
    cache = InMemoryCache(performance_monitor=monitor)
    seen: list[dict[str, Any]] = []

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    monitor.add_callback(seen.append)
    monitor.add_callback(broken)
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        for i in range(12):
            await cache.set(f"k{i}", i)
            assert await cache.get(f"k{i}") == i
    failures = [r for r in caplog.records if "callback" in r.message]
    assert [r.message.split("(")[1].split(" time")[0] for r in failures] == ["1", "10"]
    assert failures[0].exc_info is not None  # the first one carries the traceback
    assert monitor.get_performance_stats()["monitor"]["callback_errors"] == 24
    gets = [e for e in seen if e["event"] == "operation" and e["operation"] == "get"]
    assert len(gets) == 12
    assert gets[0]["result"] == "hit"
    assert gets[0]["sampled"] is True
    assert monitor.remove_callback(broken)
    assert not monitor.remove_callback(broken)


async def test_an_async_callback_is_refused_without_a_never_awaited_warning() -> None:
    monitor, _ = make_monitor()

    async def wrong(event: dict[str, Any]) -> None:
        raise AssertionError("never runs")

    monitor.add_callback(wrong)
    monitor.record_cache_operation_time("get", 1e-4, True)
    assert monitor.callback_errors == 1


class BrokenMonitor(CachePerformanceMonitor):
    def record_sample(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("monitor bug")

    def record_invalidation_event(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("monitor bug")

    def detach(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("monitor bug")


async def test_a_raising_monitor_never_fails_a_cache_operation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = InMemoryCache(performance_monitor=BrokenMonitor(sample_every=1))
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        for i in range(20):
            await cache.set(f"k{i}", i)
            assert await cache.get(f"k{i}") == i
            assert await cache.get("absent") is None
        assert await cache.invalidate_pattern("k1*") == 11
        await cache.clear()
        await cache.aclose()
    assert cache.get_stats()["hits"] == 20
    logged = [r for r in caplog.records if "performance monitor failed" in r.message]
    assert 1 <= len(logged) <= 2  # the 1st and the 10th of ~60 failures


class UnattachableMonitor(CachePerformanceMonitor):
    def attach(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("cannot attach")


async def test_a_monitor_that_cannot_attach_leaves_a_working_unsampled_cache(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        cache = InMemoryCache(performance_monitor=UnattachableMonitor(sample_every=1))
    assert any("cannot attach" in r.message for r in caplog.records)
    await cache.set("k", 1)
    assert await cache.get("k") == 1
    assert await cache.get("nope") is None
    assert (cache.get_stats()["hits"], cache.get_stats()["misses"]) == (1, 1)
    assert cache.performance_monitor.get_performance_stats()["cache_operations"]["samples"] == 0


def test_a_failing_counter_source_is_logged_and_skipped() -> None:
    monitor, _ = make_monitor()
    calls = 0

    def source() -> CounterReading:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("source bug")
        return CounterReading({("get", "hit"): 0})

    monitor.attach(source, cache="flaky")
    stats = monitor.get_performance_stats()
    assert stats["monitor"]["source_errors"] == 1
    assert stats["total_cache_operations"] == 0


def test_concurrent_recorders_lose_no_count() -> None:
    monitor, _ = make_monitor()

    def work() -> None:
        for _ in range(5_000):
            monitor.record_cache_operation_time("get", 1e-5, True)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert monitor.get_performance_stats()["cache_hits"] == 20_000


# -- key generation, compression, advice ---------------------------------------------------


def test_key_generation_and_compression_figures() -> None:
    monitor, _ = make_monitor(key_generation_threshold=0.01)
    for seconds, length in ((0.001, 100), (0.002, 300), (0.05, 2_000)):
        monitor.record_key_generation_time(seconds, length, "summarize")
    monitor.record_compression_ratio(1_000, 250, 0.001)
    monitor.record_compression_ratio(3_000, 1_500, 0.003)
    stats = monitor.get_performance_stats()
    keys = stats["key_generation"]
    assert (keys["total_operations"], keys["slow_operations"], keys["max_text_length"]) == (
        3,
        1,
        2_000,
    )
    assert keys["avg_text_length"] == pytest.approx(800)
    assert keys["by_operation_type"] == {"summarize": 3}
    compression = stats["compression"]
    assert compression["total_bytes_processed"] == 4_000
    assert compression["total_bytes_saved"] == 2_250
    assert compression["avg_compression_ratio"] == pytest.approx(1_750 / 4_000)
    assert compression["best_compression_ratio"] == 0.25
    assert compression["worst_compression_ratio"] == 0.5


def test_frequent_pattern_invalidation_is_advised_against() -> None:
    monitor, clock = make_monitor()
    for _ in range(60):
        monitor.record_invalidation_event("user:*", 3, 1e-3, "pattern")
        clock.advance(50)
    frequency = monitor.get_invalidation_frequency_stats()
    assert frequency["rates"]["last_hour"] == 60
    assert frequency["thresholds"]["current_alert_level"] == "warning"
    advice = monitor.get_invalidation_recommendations()
    messages = [item["message"] for item in advice]
    assert any("'user:*' invalidated 60 times/hour" in m and "tags" in m for m in messages)
    assert advice[0]["severity"] == "warning"
    assert all(set(item) == {"severity", "issue", "message", "suggestions"} for item in advice)
    json.dumps(advice)


def test_a_low_hit_rate_is_advised_on_and_a_healthy_cache_gets_no_advice() -> None:
    monitor, _ = make_monitor()
    for _ in range(90):
        monitor.record_cache_operation_time("get", 1e-5, True)
    for _ in range(10):
        monitor.record_cache_operation_time("get", 1e-5, False)
    assert monitor.get_invalidation_recommendations() == []
    for _ in range(150):
        monitor.record_cache_operation_time("get", 1e-5, False)
    advice = monitor.get_invalidation_recommendations()
    assert [item["issue"] for item in advice] == ["Low hit rate"]
    assert "below 50%" in advice[0]["message"]


def test_invalidations_that_remove_nothing_are_flagged() -> None:
    monitor, _ = make_monitor()
    for i in range(12):
        monitor.record_invalidation_event(f"p{i}", 0, 1e-4, "pattern")
    issues = {item["issue"] for item in monitor.get_invalidation_recommendations()}
    assert "Invalidations find little to remove" in issues


# -- configuration and lifecycle ----------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"retention_hours": 0},
        {"retention_hours": -1},
        {"retention_hours": float("nan")},
        {"sample_every": 0},
        {"sample_every": 2.5},
        {"sample_every": True},
        {"intervals": 0},
        {"max_series": 0},
        {"name": ""},
    ],
)
def test_bad_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CachePerformanceMonitor(**options)


def test_callbacks_are_checked_and_capped() -> None:
    monitor, _ = make_monitor()
    with pytest.raises(ValidationError):
        monitor.add_callback("not callable")  # type: ignore[arg-type]
    for _ in range(32):
        monitor.add_callback(lambda event: None)
    with pytest.raises(ValidationError):
        monitor.add_callback(lambda event: None)


async def test_reset_forgets_everything_and_counting_goes_on() -> None:
    cache = InMemoryCache()
    await cache.set("k", 1)
    await cache.get("k")
    monitor = cache.performance_monitor
    monitor.reset_stats()
    stats = monitor.get_performance_stats()
    assert (stats["total_cache_operations"], stats["lifetime"]["total_cache_operations"]) == (0, 0)
    await cache.get("k")
    assert monitor.get_performance_stats()["cache_hits"] == 1
    exported = monitor.export_metrics()
    assert exported["series"] == [
        {
            "cache": "default",
            "operation": "get",
            "tier": "memory",
            "result": "hit",
            "count": 1,
            "samples": 0,
            "seconds": 0.0,
        }
    ]
    json.dumps(exported, allow_nan=False)


async def test_an_l1_can_leave_invalidation_events_to_its_two_tier_cache() -> None:
    shared = CachePerformanceMonitor()
    l1 = InMemoryCache(performance_monitor=shared)
    l1._records_invalidations = False  # what a two-tier cache does with its L1
    await l1.set("a", 1)
    assert await l1.invalidate_pattern("a*") == 1
    stats = shared.get_performance_stats()
    assert stats["invalidation"]["total_invalidations"] == 0
    assert stats["cache_operations"]["by_operation_type"]["invalidate_pattern"]["count"] == 1
