"""Observability: the performance monitor every cache reports to, and Prometheus export.

``CachePerformanceMonitor`` keeps counts, latency percentiles, hit rates, key
generation, compression, invalidation and memory figures over a retention window,
in bounded memory. ``StrataCacheCollector`` exposes one or more monitors to
``prometheus_client`` (the ``web`` extra), imported only when a collector is built.
"""

from ._monitor import (
    DEFAULT_SAMPLE_EVERY,
    CachePerformanceMonitor,
    CounterReading,
    MonitorSnapshot,
    SeriesSnapshot,
    SourceHandle,
)
from ._prometheus import StrataCacheCollector

__all__ = [
    "DEFAULT_SAMPLE_EVERY",
    "CachePerformanceMonitor",
    "CounterReading",
    "MonitorSnapshot",
    "SeriesSnapshot",
    "SourceHandle",
    "StrataCacheCollector",
]
