"""Prometheus export: a ``prometheus_client`` collector over caches and monitors.

The collector reads each monitor's lifetime figures (:meth:`CachePerformanceMonitor.
snapshot`) at scrape time, so nothing is counted twice and nothing runs between
scrapes. ``prometheus_client`` comes with the ``web`` extra; it is imported when a
collector is built, never when :mod:`stratacache` is.

Exposed (``cache`` is the monitor's label for a cache: its namespace, or the
monitor's ``name``, or the name you give the cache in a mapping):

========================================================  ==========  =============================
name                                                      type        labels
========================================================  ==========  =============================
``stratacache_operations_total``                          counter     cache, operation, tier, result
``stratacache_operation_duration_seconds``                histogram   cache, operation, tier, result
``stratacache_cache_hits_total`` / ``_misses_total``      counter     cache, tier
``stratacache_evictions_total`` / ``_expirations_total``  counter     cache, tier
``stratacache_memory_bytes`` / ``stratacache_entries``    gauge       cache, tier
``stratacache_invalidations_total``                       counter     cache, type
``stratacache_invalidated_keys_total``                    counter     cache, type
``stratacache_compression_input_bytes_total`` /           counter     cache
``..._output_bytes_total``, ``stratacache_compressions_total``
``stratacache_key_generation_duration_seconds``           histogram   cache
``stratacache_latency_sample_every``                      gauge       cache
========================================================  ==========  =============================

Operation counts are exact. A sampling cache times one operation in
``sample_every``, so the duration histograms count timed operations only: their
quantiles and ``_sum / _count`` means are right, and ``operations_total`` gives the
volume. Histogram buckets are edges of the monitor's own log buckets (powers of
four seconds from ~1 µs to 16 s by default), so every bucket count is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ._histogram import UPPER_BOUNDS, bucket_of
from ._monitor import CachePerformanceMonitor

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = ["DEFAULT_BUCKETS", "StrataCacheCollector"]

DEFAULT_BUCKETS: tuple[float, ...] = tuple(2.0**exponent for exponent in range(-20, 5, 2))
"""Upper bounds (seconds) of the exposed histogram buckets: 4**-10 (0.95 µs) to 16 s."""

_INSTALL_HINT = (
    "Prometheus export needs prometheus_client: pip install 'stratacache[web]' "
    "(or pip install prometheus-client)"
)

Labels = tuple[str, ...]


def _prometheus() -> Any:
    """The ``prometheus_client.core`` module, or a clear ImportError."""
    try:
        import prometheus_client.core as core
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ImportError(_INSTALL_HINT) from exc
    return core


def _monitor_of(source: object) -> CachePerformanceMonitor:
    if isinstance(source, CachePerformanceMonitor):
        return source
    monitor = getattr(source, "performance_monitor", None)
    if isinstance(monitor, CachePerformanceMonitor):
        return monitor
    raise ValidationError(
        f"expected a cache with a performance_monitor or a CachePerformanceMonitor, "
        f"got {type(source).__name__}"
    )


def _edge_indices(bounds: Iterable[float]) -> tuple[int, ...]:
    indices = set()
    for bound in bounds:
        if not isinstance(bound, (int, float)) or not 0 < bound < UPPER_BOUNDS[-2]:
            raise ValidationError(f"bucket bounds must be in (0, 256) seconds, got {bound!r}")
        indices.add(bucket_of(float(bound)))  # snapped up to an edge: counts stay exact
    return tuple(sorted(indices))


class _Families:
    """Sums of every exposed value, keyed by label values (duplicates across monitors add)."""

    def __init__(self) -> None:
        self.operations: dict[Labels, float] = {}
        self.durations: dict[Labels, list[Any]] = {}  # [count, seconds, per-bucket counts]
        self.hits: dict[Labels, float] = {}
        self.misses: dict[Labels, float] = {}
        self.counters: dict[str, dict[Labels, float]] = {"evictions": {}, "expirations": {}}
        self.gauges: dict[str, dict[Labels, float]] = {"memory_usage_bytes": {}, "entries": {}}
        self.invalidations: dict[Labels, float] = {}
        self.invalidated_keys: dict[Labels, float] = {}
        self.compressions: dict[Labels, list[int]] = {}
        self.key_generation: dict[Labels, list[Any]] = {}
        self.sample_every: dict[Labels, float] = {}


def _add(into: dict[Labels, float], labels: Labels, value: float) -> None:
    into[labels] = into.get(labels, 0) + value


def _add_histogram(
    into: dict[Labels, list[Any]],
    labels: Labels,
    count: int,
    seconds: float,
    buckets: Sequence[int],
) -> None:
    found = into.get(labels)
    if found is None:
        into[labels] = [count, seconds, list(buckets)]
        return
    found[0] += count
    found[1] += seconds
    found[2] = [a + b for a, b in zip(found[2], buckets, strict=True)]


class StrataCacheCollector:
    """A custom ``prometheus_client`` collector for stratacache caches and monitors.

    Args:
        sources: a cache (anything with a ``performance_monitor``), a
            :class:`CachePerformanceMonitor`, an iterable of those, or a mapping
            ``{name: cache or monitor}`` whose names become the ``cache`` label.
        registry: a ``CollectorRegistry`` to register on. Nothing is registered
            unless you pass one (pass ``prometheus_client.REGISTRY`` for the
            global registry).
        buckets: upper bounds in seconds of the duration histogram buckets, each
            moved up to the nearest edge of the monitor's log buckets.

    Raises ImportError (saying which extra to install) without ``prometheus_client``.
    """

    def __init__(
        self,
        sources: object,
        *,
        registry: CollectorRegistry | None = None,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
    ) -> None:
        self._core = _prometheus()
        self._sources: list[tuple[str | None, CachePerformanceMonitor]] = []
        if isinstance(sources, Mapping):
            for name, source in sources.items():
                if not isinstance(name, str) or not name:
                    raise ValidationError(f"cache names must be non-empty strings, got {name!r}")
                self._sources.append((name, _monitor_of(source)))
        elif isinstance(sources, Iterable) and not hasattr(sources, "performance_monitor"):
            self._sources = [(None, _monitor_of(source)) for source in sources]
        else:
            self._sources = [(None, _monitor_of(sources))]
        self._edges = _edge_indices(buckets)
        if not self._edges:
            raise ValidationError("buckets must hold at least one upper bound")
        from prometheus_client.utils import floatToGoString

        self._les: list[str] = [
            floatToGoString(UPPER_BOUNDS[index])  # type: ignore[no-untyped-call]
            for index in self._edges
        ]
        if registry is not None:
            registry.register(self)

    def __repr__(self) -> str:
        return f"StrataCacheCollector({len(self._sources)} monitor(s))"

    def describe(self) -> Iterator[Metric]:
        """The metric families, without samples (lets a registry spot name clashes)."""
        return iter(self._families(_Families()))

    def collect(self) -> Iterator[Metric]:
        """Every metric, read from the monitors now."""
        families = _Families()
        for name, monitor in self._sources:
            self._gather(families, name, monitor)
        return iter(self._families(families))

    def _gather(self, into: _Families, name: str | None, monitor: CachePerformanceMonitor) -> None:
        snapshot = monitor.snapshot()
        caches: set[str] = set()

        def cache_label(label: str) -> str:
            caches.add(name or label)
            return name or label

        for series in snapshot.series:
            cache = cache_label(series.cache)
            labels = (cache, series.operation, series.tier, series.result)
            if series.count:
                _add(into.operations, labels, series.count)
            if series.samples:
                _add_histogram(
                    into.durations, labels, series.samples, series.seconds, series.buckets
                )
            if series.result == "hit":
                _add(into.hits, (cache, series.tier), series.count)
            elif series.result == "miss":
                _add(into.misses, (cache, series.tier), series.count)
        for (cache, tier, counter), value in snapshot.counters.items():
            if counter in into.counters:
                _add(into.counters[counter], (cache_label(cache), tier), value)
        for (cache, tier), levels in snapshot.gauges.items():
            for gauge, into_gauge in into.gauges.items():
                if gauge in levels:
                    _add(into_gauge, (cache_label(cache), tier), levels[gauge])
        for (cache, kind), (events, keys) in snapshot.invalidations.items():
            _add(into.invalidations, (cache_label(cache), kind), events)
            _add(into.invalidated_keys, (cache_label(cache), kind), keys)
        for cache, (count, original, compressed) in snapshot.compression.items():
            totals = into.compressions.setdefault((cache_label(cache),), [0, 0, 0])
            totals[0] += count
            totals[1] += original
            totals[2] += compressed
        for cache, (count, seconds, buckets) in snapshot.key_generation.items():
            _add_histogram(into.key_generation, (cache_label(cache),), count, seconds, buckets)
        for cache in caches:
            into.sample_every.setdefault((cache,), snapshot.sample_every)

    def _histogram_buckets(self, per_bucket: Sequence[int], count: int) -> list[tuple[str, float]]:
        buckets: list[tuple[str, float]] = []
        running = 0
        start = 0
        for index, le in zip(self._edges, self._les, strict=True):
            running += sum(per_bucket[start : index + 1])
            start = index + 1
            buckets.append((le, running))
        buckets.append(("+Inf", count))
        return buckets

    def _families(self, data: _Families) -> list[Metric]:
        core = self._core
        families: list[Metric] = []

        def counter(name: str, doc: str, labels: list[str], values: Mapping[Labels, float]) -> None:
            family = core.CounterMetricFamily(name, doc, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key), value)
            families.append(family)

        def gauge(name: str, doc: str, labels: list[str], values: Mapping[Labels, float]) -> None:
            family = core.GaugeMetricFamily(name, doc, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key), value)
            families.append(family)

        def histogram(
            name: str, doc: str, labels: list[str], values: Mapping[Labels, list[Any]]
        ) -> None:
            family = core.HistogramMetricFamily(name, doc, labels=labels)
            for key, (count, seconds, per_bucket) in sorted(values.items()):
                family.add_metric(list(key), self._histogram_buckets(per_bucket, count), seconds)
            families.append(family)

        series = ["cache", "operation", "tier", "result"]
        counter(
            "stratacache_operations",
            "Cache operations, per tier and result (exact counts).",
            series,
            data.operations,
        )
        histogram(
            "stratacache_operation_duration_seconds",
            "Duration of timed cache operations (one in stratacache_latency_sample_every).",
            series,
            data.durations,
        )
        counter("stratacache_cache_hits", "Lookups that hit.", ["cache", "tier"], data.hits)
        counter("stratacache_cache_misses", "Lookups that missed.", ["cache", "tier"], data.misses)
        counter(
            "stratacache_evictions",
            "Entries evicted to stay within bounds.",
            ["cache", "tier"],
            data.counters["evictions"],
        )
        counter(
            "stratacache_expirations",
            "Entries removed because their TTL ran out.",
            ["cache", "tier"],
            data.counters["expirations"],
        )
        gauge(
            "stratacache_memory_bytes",
            "Estimated memory held by cached entries.",
            ["cache", "tier"],
            data.gauges["memory_usage_bytes"],
        )
        gauge("stratacache_entries", "Cached entries.", ["cache", "tier"], data.gauges["entries"])
        counter(
            "stratacache_invalidations",
            "Invalidations (by pattern, tag, key, clear ...).",
            ["cache", "type"],
            data.invalidations,
        )
        counter(
            "stratacache_invalidated_keys",
            "Keys removed by invalidations.",
            ["cache", "type"],
            data.invalidated_keys,
        )
        counter(
            "stratacache_compressions",
            "Values compressed.",
            ["cache"],
            {labels: totals[0] for labels, totals in data.compressions.items()},
        )
        counter(
            "stratacache_compression_input_bytes",
            "Bytes given to compression.",
            ["cache"],
            {labels: totals[1] for labels, totals in data.compressions.items()},
        )
        counter(
            "stratacache_compression_output_bytes",
            "Bytes compression produced.",
            ["cache"],
            {labels: totals[2] for labels, totals in data.compressions.items()},
        )
        histogram(
            "stratacache_key_generation_duration_seconds",
            "Time spent building cache keys.",
            ["cache"],
            data.key_generation,
        )
        gauge(
            "stratacache_latency_sample_every",
            "Caches time one operation in this many for the duration histograms.",
            ["cache"],
            data.sample_every,
        )
        return families
