"""What the monitor exchanges with caches (counter readings) and exporters (snapshots).

A cache that counts for itself hands the monitor a *counter source*: a function
returning a :class:`CounterReading` of its cumulative counters. The monitor keeps one
:class:`SourceHandle` per source and turns the differences between readings into
counts. Exporters read a :class:`MonitorSnapshot` of lifetime figures.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "CounterReading",
    "CounterSource",
    "MonitorSnapshot",
    "SeriesSnapshot",
    "SourceHandle",
    "report_monitor_failure",
]

logger = logging.getLogger("stratacache")


def report_monitor_failure(what: str, count: int, exc: BaseException) -> None:
    """Log the ``count``-th failure of ``what``: the 1st with its traceback, then 10th, 100th ..."""
    if count == 1 or (count >= 10 and str(count).rstrip("0") == "1"):
        logger.warning(
            "stratacache: %s failed (%d time%s so far); the cache carries on: %r",
            what,
            count,
            "" if count == 1 else "s",
            exc,
            exc_info=exc if count == 1 else None,
        )


# -- what a counter source returns -----------------------------------------------------


@dataclass(frozen=True)
class CounterReading:
    """A cache's cumulative counters, as a source attached with ``attach`` returns them.

    Attributes:
        operations: ``{(operation, result): count}`` since the cache was built;
            ``result`` is ``"hit"``, ``"miss"``, ``"ok"`` or ``"error"``.
        counters: other cumulative counts (``evictions``, ``expirations`` ...).
        gauges: current levels (``entries``, ``memory_usage_bytes`` ...).
    """

    operations: Mapping[tuple[str, str], int]
    counters: Mapping[str, int] = field(default_factory=dict)
    gauges: Mapping[str, float] = field(default_factory=dict)


CounterSource = Callable[[], CounterReading]


class SourceHandle:
    """An attached counter source: give it back to :meth:`CachePerformanceMonitor.detach`.

    A bound method is held weakly, so a monitor never keeps a cache alive; the
    source is dropped once its object is gone.
    """

    __slots__ = ("_strong", "_weak", "cache", "counters", "gauges", "operations", "tier")

    def __init__(self, source: CounterSource, cache: str, tier: str) -> None:
        self._weak: weakref.WeakMethod[CounterSource] | None = None
        self._strong: CounterSource | None = None
        if inspect.ismethod(source):
            self._weak = weakref.WeakMethod(source)
        else:
            self._strong = source
        self.cache = cache
        self.tier = tier
        self.operations: dict[tuple[str, str], int] = {}
        self.counters: dict[str, int] = {}
        self.gauges: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"SourceHandle(cache={self.cache!r}, tier={self.tier!r})"

    def source(self) -> CounterSource | None:
        """The source, or None once the object it belongs to is gone."""
        return self._weak() if self._weak is not None else self._strong


# -- snapshots (for exporters) -----------------------------------------------------------


@dataclass(frozen=True)
class SeriesSnapshot:
    """Lifetime figures of one (cache, operation, tier, result) series.

    ``count`` is exact; ``samples``, ``seconds`` and ``buckets`` describe the timed
    operations only (one in ``sample_every`` for a sampling cache). ``buckets`` holds
    per-bucket counts for :data:`._histogram.UPPER_BOUNDS`, empty when nothing was timed.
    """

    cache: str
    operation: str
    tier: str
    result: str
    count: int
    samples: int
    seconds: float
    buckets: tuple[int, ...]


@dataclass(frozen=True)
class MonitorSnapshot:
    """Everything an exporter needs, copied under the monitor's lock. All counts are lifetime."""

    name: str
    sample_every: int
    series: tuple[SeriesSnapshot, ...]
    counters: Mapping[tuple[str, str, str], int]
    """``(cache, tier, name) -> count``: evictions, expirations ..."""
    gauges: Mapping[tuple[str, str], Mapping[str, float]]
    """``(cache, tier) -> {name: level}``: entries, memory_usage_bytes ..."""
    invalidations: Mapping[tuple[str, str], tuple[int, int]]
    """``(cache, invalidation type) -> (events, keys removed)``."""
    compression: Mapping[str, tuple[int, int, int]]
    """``cache -> (compressions, bytes before, bytes after)``."""
    key_generation: Mapping[str, tuple[int, float, tuple[int, ...]]]
    """``cache -> (count, seconds, per-bucket counts)`` of key generations."""
