"""Prometheus exposition: valid text, exact values, never the global registry by default."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stratacache import InMemoryCache, ValidationError
from stratacache.monitoring import CachePerformanceMonitor, StrataCacheCollector
from stratacache.monitoring._histogram import MIN_EXPONENT, PER_OCTAVE, UPPER_BOUNDS
from stratacache.monitoring._prometheus import DEFAULT_BUCKETS
from stratacache.testing import FakeClock


def scrape(registry: CollectorRegistry) -> dict[str, Any]:
    """Parse the exposition text back: {family name: family} (fails on invalid text)."""
    text = generate_latest(registry).decode("utf-8")
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample_values(family: Any, name: str | None = None) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples
        if name is None or sample.name == name
    }


async def busy_cache(**options: Any) -> InMemoryCache:
    cache = InMemoryCache(max_size=5, **options)
    for i in range(8):
        await cache.set(f"k{i}", "v" * 50)
    for i in range(3, 8):
        await cache.get(f"k{i}")
    for _ in range(3):
        await cache.get("absent")
    await cache.invalidate_pattern("k7*")
    return cache


async def test_exposition_parses_back_with_exact_counts() -> None:
    monitor = CachePerformanceMonitor(sample_every=1)
    cache = await busy_cache(namespace="catalog", performance_monitor=monitor)
    registry = CollectorRegistry()
    StrataCacheCollector(cache, registry=registry)
    families = scrape(registry)
    operations = sample_values(families["stratacache_operations"], "stratacache_operations_total")
    catalog, memory = ("cache", "catalog"), ("tier", "memory")
    assert operations[catalog, ("operation", "get"), ("result", "hit"), memory] == 5
    assert operations[catalog, ("operation", "get"), ("result", "miss"), memory] == 3
    assert operations[catalog, ("operation", "set"), ("result", "ok"), memory] == 8
    hits = sample_values(families["stratacache_cache_hits"], "stratacache_cache_hits_total")
    assert hits == {(("cache", "catalog"), ("tier", "memory")): 5}
    evictions = sample_values(families["stratacache_evictions"], "stratacache_evictions_total")
    assert evictions == {(("cache", "catalog"), ("tier", "memory")): 3}
    entries = sample_values(families["stratacache_entries"])
    assert entries == {(("cache", "catalog"), ("tier", "memory")): 4}
    held = sample_values(families["stratacache_memory_bytes"])
    assert held[catalog, memory] == cache.get_stats()["memory_usage_bytes"]
    invalidated = sample_values(
        families["stratacache_invalidated_keys"], "stratacache_invalidated_keys_total"
    )
    assert invalidated == {(("cache", "catalog"), ("type", "pattern")): 1}
    assert sample_values(families["stratacache_latency_sample_every"]) == {
        (("cache", "catalog"),): 1
    }


async def test_duration_histograms_are_cumulative_and_consistent() -> None:
    monitor = CachePerformanceMonitor(sample_every=1)
    cache = await busy_cache(performance_monitor=monitor)
    registry = CollectorRegistry()
    StrataCacheCollector(cache, registry=registry)
    family = scrape(registry)["stratacache_operation_duration_seconds"]
    assert family.type == "histogram"
    hit_labels = {"cache": "default", "operation": "get", "tier": "memory", "result": "hit"}
    samples = [s for s in family.samples if {k: s.labels[k] for k in hit_labels} == hit_labels]
    buckets = [s for s in samples if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts)  # cumulative
    assert buckets[-1].labels["le"] == "+Inf"
    assert counts[-1] == 5
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    assert count == 5
    assert 0 < total < 1
    assert [float(s.labels["le"]) for s in buckets[:-1]] == list(DEFAULT_BUCKETS)


def test_bucket_counts_are_exact_at_the_exposed_edges() -> None:
    clock = FakeClock()
    monitor = CachePerformanceMonitor(clock=clock)
    for seconds in (1e-6, 2.0**-16, 2.0**-16 * 1.01, 0.2, 0.25, 3.0):
        monitor.record_cache_operation_time("get", seconds, True, tier="redis")
    registry = CollectorRegistry()
    StrataCacheCollector(monitor, registry=registry, buckets=[2.0**-16, 0.2, 4.0])
    family = scrape(registry)["stratacache_operation_duration_seconds"]
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    # 0.2 is not an edge: it moves up to the next one, 2**-2.25; edges are inclusive.
    assert buckets == {
        "1.52587890625e-05": 2.0,
        repr(2.0**-2.25): 4.0,
        "4.0": 6.0,
        "+Inf": 6.0,
    }


def test_monitor_histogram_edges_include_every_default_bucket() -> None:
    for bound in DEFAULT_BUCKETS:
        exponent = round(math.log2(bound))
        assert UPPER_BOUNDS[(exponent - MIN_EXPONENT) * PER_OCTAVE] == bound


async def test_named_caches_and_shared_labels_merge_into_valid_text() -> None:
    first, second = InMemoryCache(), InMemoryCache()
    for cache in (first, second):
        await cache.set("k", 1)
        await cache.get("k")
    registry = CollectorRegistry()
    StrataCacheCollector({"sessions": first, "pages": second}, registry=registry)
    hits = sample_values(scrape(registry)["stratacache_cache_hits"], "stratacache_cache_hits_total")
    assert hits == {
        (("cache", "pages"), ("tier", "memory")): 1,
        (("cache", "sessions"), ("tier", "memory")): 1,
    }
    merged = CollectorRegistry()  # two monitors, one label: summed, not duplicated
    StrataCacheCollector([first.performance_monitor, second], registry=merged)
    hits = sample_values(scrape(merged)["stratacache_cache_hits"], "stratacache_cache_hits_total")
    assert hits == {(("cache", "default"), ("tier", "memory")): 2}


def test_key_generation_and_compression_are_exported() -> None:
    monitor = CachePerformanceMonitor(name="ai")
    monitor.record_key_generation_time(0.002, 500, "summarize")
    monitor.record_compression_ratio(1_000, 300, 0.001)
    registry = CollectorRegistry()
    StrataCacheCollector(monitor, registry=registry)
    families = scrape(registry)
    keys = sample_values(
        families["stratacache_key_generation_duration_seconds"],
        "stratacache_key_generation_duration_seconds_count",
    )
    assert keys == {(("cache", "ai"),): 1}
    compressed = families["stratacache_compression_output_bytes"]
    assert sample_values(compressed, "stratacache_compression_output_bytes_total") == {
        (("cache", "ai"),): 300
    }


def test_nothing_is_registered_globally_unless_asked() -> None:
    before = set(REGISTRY._names_to_collectors)  # private, but the only way to look
    collector = StrataCacheCollector(CachePerformanceMonitor())
    assert set(REGISTRY._names_to_collectors) == before
    registry = CollectorRegistry()
    registry.register(collector)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        StrataCacheCollector(CachePerformanceMonitor(), registry=registry)


def test_bad_sources_and_buckets_are_refused() -> None:
    with pytest.raises(ValidationError):
        StrataCacheCollector(object())
    with pytest.raises(ValidationError):
        StrataCacheCollector({"": CachePerformanceMonitor()})
    with pytest.raises(ValidationError):
        StrataCacheCollector(CachePerformanceMonitor(), buckets=[1e6])
    with pytest.raises(ValidationError):
        StrataCacheCollector(CachePerformanceMonitor(), buckets=[])


def test_a_missing_prometheus_client_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client.core", None)
    with pytest.raises(ImportError, match=r"stratacache\[web\]"):
        StrataCacheCollector(CachePerformanceMonitor())


def test_importing_stratacache_does_not_import_prometheus_client() -> None:
    code = (
        "import sys, stratacache, stratacache.monitoring;"
        "assert 'prometheus_client' not in sys.modules, 'imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
