"""``CachePerformanceMonitor``: what the caches did, in bounded memory.

Two ways in, one set of figures out:

* **Push** — ``record_cache_operation_time(...)``: each call counts one operation
  and times it. A record costs ~2 µs in a tight loop and several times that right
  after an await on a socket (cold CPU caches), so it suits occasional operations
  and monitors the caches cannot attach to, not a cache's every call.
* **Pull and sample** — what both caches do. A memory hit costs ~250 ns, less than a
  record; a Redis GET costs tens of microseconds, but a record per call was about
  40% of what ``RedisCache`` added to redis-py's. A cache counts its operations in
  plain ints (as it does for ``get_stats()``); it
  :meth:`~CachePerformanceMonitor.attach`-es a function reading those counters,
  which the monitor calls whenever figures are asked for and, while it records
  anything, every few seconds; and it times one call in ``sample_every``
  (:meth:`~CachePerformanceMonitor.record_sample`). Counts are then exact; latency
  percentiles come from the sample, and the figures say how many samples they rest
  on. A cache that measures every call anyway (Redis) reports the slow ones with
  :meth:`~CachePerformanceMonitor.record_slow`, so slow counts stay exact too.

Memory is bounded whatever the load. Latencies go into fixed-size log-bucket
histograms (:mod:`._histogram`), never into per-sample lists. The retention window
is a ring of ``intervals`` slots, each holding the counts and histograms of one
``retention_hours / intervals`` stretch of time; a slot is reused when its time has
left the window, so figures cover between ``intervals - 1`` and ``intervals`` slots.
Label values (cache, operation, tier, invalidation pattern ...) are capped per kind,
and distinct series too; values past a cap are counted under ``"other"``.

Thread safety: one re-entrant lock guards every update and every read of the
monitor's state, so concurrent recorders never lose a count. (Uncontended, it costs
tens of nanoseconds — on the sampled path only.) A cache's own counters are plain
ints it increments without a lock, as it always did for ``get_stats()``; the monitor
reads them as they are. Callbacks run outside the lock.

The monitor never raises into a cache operation: a failing callback or counter
source is logged (the first failure with its traceback, then the 10th, 100th ...)
and counted; caches guard their own calls into the monitor as well.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import math
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from .._clock import Clock, monotonic
from ..errors import ValidationError
from ._histogram import Histogram, bucket_of
from ._protocol import (
    CounterReading,
    CounterSource,
    MonitorSnapshot,
    SeriesSnapshot,
    SourceHandle,
    report_monitor_failure,
)
from ._report import (
    OTHER,
    Compression,
    Invalidations,
    KeyGeneration,
    SeriesKey,
    Settings,
    Window,
    invalidation_stats,
    memory_stats,
    memory_warnings,
    performance_stats,
    recommendations,
)
from ._ring import Ring, Slot

__all__ = [
    "DEFAULT_SAMPLE_EVERY",
    "LOOKUP_OPERATIONS",
    "OTHER",
    "CachePerformanceMonitor",
    "CounterReading",
    "MonitorSnapshot",
    "SeriesSnapshot",
    "SourceHandle",
    "report_monitor_failure",
]

logger = logging.getLogger("stratacache")

DEFAULT_SAMPLE_EVERY: Final = 256
"""Caches time one operation in this many (see the benchmark in ``benchmarks.monitoring``)."""
DEFAULT_INTERVALS: Final = 12
LOOKUP_OPERATIONS: Final = frozenset({"get", "get_many", "get_or_set", "get_cached_response"})
"""Operations whose ``cache_hit`` flag counts as a hit or a miss."""
RESULTS: Final = frozenset({"hit", "miss", "ok", "error"})
MAX_CALLBACKS: Final = 32
MAX_LABEL_CHARS: Final = 120
_MAX_ROUTES = 1024
_MB = 1024 * 1024

Callback = Callable[[dict[str, Any]], object]


# -- bounded building blocks ------------------------------------------------------------


class _Labels:
    """Admits up to ``cap`` distinct values of one label kind; the rest read as ``"other"``."""

    __slots__ = ("_cap", "_kind", "_seen", "overflows")

    def __init__(self, kind: str, cap: int) -> None:
        self._kind = kind
        self._cap = cap
        self._seen: set[str] = {OTHER}
        self.overflows = 0

    def __call__(self, value: object) -> str:
        text = value if type(value) is str else str(value)
        if text in self._seen:
            return text
        text = text[:MAX_LABEL_CHARS] or "unknown"
        if text in self._seen:
            return text
        if len(self._seen) > self._cap:  # OTHER is in the set and does not count
            self.overflows += 1
            if self.overflows == 1:
                logger.warning(
                    "stratacache: more than %d distinct %s labels; the rest are counted as %r",
                    self._cap,
                    self._kind,
                    OTHER,
                )
            return OTHER
        self._seen.add(text)
        return text


class _Series:
    """Lifetime figures of one series (exported to Prometheus)."""

    __slots__ = ("count", "latency")

    def __init__(self) -> None:
        self.count = 0
        self.latency: Histogram | None = None


class _Callback:
    __slots__ = ("callback", "failures")

    def __init__(self, callback: Callback) -> None:
        self.callback = callback
        self.failures = 0


def _positive(name: str, value: object, *, integer: bool = False, limit: float = math.inf) -> Any:
    ok_type = type(value) is int if integer else type(value) in (int, float)
    if not ok_type or not 0 < value <= limit:  # type: ignore[operator]
        kind = "an integer" if integer else "a number"
        raise ValidationError(
            f"{name} must be {kind} > 0 and <= {limit:g}, got {value!r}", {name: repr(value)}
        )
    return value


# -- the monitor --------------------------------------------------------------------------


class CachePerformanceMonitor:
    """Operation counts, latency percentiles, hit rates, key generation, compression,
    invalidations and memory of one or more caches, over a retention window.

    Every :class:`~stratacache.InMemoryCache` reports to one — its own unless given
    one — exposed as ``cache.performance_monitor``.

    Args:
        retention_hours: how far back figures reach (the window).
        clock: seconds on a monotonic scale, for the window; inject
            :class:`stratacache.testing.FakeClock` to test expiry without sleeping.
        sample_every: caches that sample time one operation in this many.
        intervals: slots in the window; figures age out one slot at a time.
        name: the ``cache`` label for reports that give none.
        max_measurements: accepted for compatibility and ignored: memory is bounded
            by design here, not by a count of kept measurements.
        memory_warning_threshold_bytes, memory_critical_threshold_bytes: cache
            memory levels that raise warnings.
        key_generation_threshold, cache_operation_threshold: seconds past which a
            key generation or an operation counts as slow.
        invalidation_rate_warning_per_hour, invalidation_rate_critical_per_hour:
            invalidation rates that raise recommendations.
        max_caches, max_operations, max_tiers, max_patterns, max_series: caps on
            distinct label values, and on distinct (cache, operation, tier, result)
            series; what exceeds them is counted under ``"other"``.
        max_sources: counter sources (caches) one monitor accepts.
    """

    def __init__(
        self,
        retention_hours: float = 1.0,
        *,
        clock: Clock | None = None,
        sample_every: int = DEFAULT_SAMPLE_EVERY,
        intervals: int = DEFAULT_INTERVALS,
        name: str = "default",
        max_measurements: int | None = None,
        memory_warning_threshold_bytes: int = 50 * _MB,
        memory_critical_threshold_bytes: int = 100 * _MB,
        key_generation_threshold: float = 0.1,
        cache_operation_threshold: float = 0.05,
        invalidation_rate_warning_per_hour: float = 50,
        invalidation_rate_critical_per_hour: float = 100,
        max_caches: int = 16,
        max_operations: int = 32,
        max_tiers: int = 8,
        max_patterns: int = 64,
        max_series: int = 256,
        max_sources: int = 256,
    ) -> None:
        self.retention_hours = float(_positive("retention_hours", retention_hours, limit=24 * 366))
        self._sample_every: int = _positive("sample_every", sample_every, integer=True, limit=2**30)
        self._intervals: int = _positive("intervals", intervals, integer=True, limit=10_000)
        if max_measurements is not None:
            _positive("max_measurements", max_measurements, integer=True)
        if not isinstance(name, str) or not name:
            raise ValidationError(f"name must be a non-empty string, got {name!r}")
        self.name = name[:MAX_LABEL_CHARS]
        self.memory_warning_threshold_bytes = memory_warning_threshold_bytes
        self.memory_critical_threshold_bytes = memory_critical_threshold_bytes
        self.key_generation_threshold = key_generation_threshold
        self.cache_operation_threshold = cache_operation_threshold
        self.invalidation_rate_warning_per_hour = invalidation_rate_warning_per_hour
        self.invalidation_rate_critical_per_hour = invalidation_rate_critical_per_hour
        self._max_series = _positive("max_series", max_series, integer=True)
        self._max_sources = _positive("max_sources", max_sources, integer=True)
        self._clock: Clock = clock if clock is not None else monotonic
        self._interval = self.retention_hours * 3600.0 / self._intervals
        self._lock = threading.RLock()
        self._caches = _Labels("cache", _positive("max_caches", max_caches, integer=True))
        self._operations = _Labels(
            "operation", _positive("max_operations", max_operations, integer=True)
        )
        self._tiers = _Labels("tier", _positive("max_tiers", max_tiers, integer=True))
        self._patterns = _Labels(
            "invalidation pattern", _positive("max_patterns", max_patterns, integer=True)
        )
        self._kinds = _Labels("kind", 32)  # invalidation types, key-generation types, counters
        self._sources: list[SourceHandle] = []
        self._callbacks: list[_Callback] = []
        self.callback_errors = 0
        self.source_errors = 0
        self._reset_locked()

    def __repr__(self) -> str:
        return (
            f"CachePerformanceMonitor(name={self.name!r}, retention_hours={self.retention_hours}, "
            f"sample_every={self._sample_every})"
        )

    @property
    def sample_every(self) -> int:
        """Caches that sample time one operation in this many (read-only)."""
        return self._sample_every

    # -- state -------------------------------------------------------------------------

    def _reset_locked(self) -> None:
        self._started = self._clock()
        self._ring = Ring(self._interval, self._intervals, self._started)
        self._next_pull = -math.inf
        self._series: dict[SeriesKey, _Series] = {}
        # (cache, operation, tier, result) as given -> its series: spares the sampled
        # path the label caps. Bounded: past _MAX_ROUTES, keys are resolved each time.
        self._routes: dict[tuple[object, ...], tuple[SeriesKey, _Series]] = {}
        self._series_overflows = 0
        self._counters: dict[tuple[str, str, str], int] = {}
        self._invalidation_totals: dict[tuple[str, str], list[int]] = {}
        self._pushed_gauges: dict[tuple[str, str], dict[str, float]] = {}
        self._key_generation: dict[str, Histogram] = {}  # cache -> lifetime timings
        self._compression: dict[str, list[int]] = {}  # cache -> [count, original, compressed]

    def _recording_slot(self) -> Slot:
        """The slot a record goes to, after reading the sources if that is due."""
        now = self._clock()
        slot = self._ring.turn(now)
        if now >= self._next_pull and self._sources:
            self._pull_locked(slot)
        return slot

    def _current_slot(self) -> Slot:
        return self._ring.turn(self._clock())

    def _route(
        self, cache: str | None, operation: object, tier: object, result: str
    ) -> tuple[SeriesKey, _Series]:
        given = (cache, operation, tier, result)
        route = self._routes.get(given)
        if route is None:
            key = self._key(cache, operation, tier, result)
            route = (key, self._series[key])
            if len(self._routes) < _MAX_ROUTES:
                self._routes[given] = route
        return route

    def _key(self, cache: str | None, operation: object, tier: object, result: str) -> SeriesKey:
        key = (
            self.name if cache is None else self._caches(cache),
            self._operations(operation),
            self._tiers(tier),
            result if result in RESULTS else OTHER,
        )
        if key not in self._series:
            if len(self._series) >= self._max_series:
                self._series_overflows += 1
                key = (OTHER, OTHER, OTHER, OTHER)
                if key in self._series:
                    return key
            self._series[key] = _Series()
        return key

    # -- counter sources (pull) --------------------------------------------------------------

    def attach(
        self, source: CounterSource, *, cache: str | None = None, tier: str = "memory"
    ) -> SourceHandle:
        """Read ``source()`` — a cache's cumulative counters — for counts from now on.

        The monitor calls it whenever figures are read and, while it records
        anything, every few seconds (see :meth:`_pull_locked`), under its lock: a
        source must be cheap and must not call the monitor.
        Raises :class:`~stratacache.ValidationError` past ``max_sources`` live sources.
        """
        with self._lock:
            self._sources = [handle for handle in self._sources if handle.source() is not None]
            if len(self._sources) >= self._max_sources:
                raise ValidationError(
                    f"this monitor already reads {self._max_sources} caches (max_sources)",
                    {"max_sources": self._max_sources},
                )
            handle = SourceHandle(
                source,
                self.name if cache is None else self._caches(cache),
                self._tiers(tier),
            )
            reading = self._read(source)
            if reading is not None:  # a baseline: counts before attaching are not ours
                handle.operations = dict(reading.operations)
                handle.counters = dict(reading.counters)
                handle.gauges = dict(reading.gauges)
            self._sources.append(handle)
            return handle

    def detach(self, handle: SourceHandle) -> None:
        """Read ``handle``'s source a last time and stop reading it."""
        with self._lock:
            if handle not in self._sources:
                return
            source = handle.source()
            if source is not None:
                reading = self._read(source)
                if reading is not None:
                    self._apply_locked(handle, reading, self._current_slot())
            self._sources.remove(handle)

    def _read(self, source: CounterSource) -> CounterReading | None:
        try:
            return source()
        except Exception as exc:
            self.source_errors += 1
            report_monitor_failure("reading a cache's counters", self.source_errors, exc)
            return None

    def _pull_locked(self, slot: Slot) -> None:
        """Read every source; their counts since the last reading go to ``slot`` (now's).

        The monitor reads when figures are asked for, and when it records anything
        (a cache's timed operation, say) more than ``interval / 60`` (5 s by default)
        after its last reading. So with traffic, counts land within seconds of when
        they happened; operations followed by a quiet spell (fewer than
        ``sample_every`` operations, no figures read) land where the spell ends.
        """
        self._next_pull = self._clock() + self._interval / 60
        alive: list[SourceHandle] = []
        for handle in self._sources:
            source = handle.source()
            if source is None:
                continue
            alive.append(handle)
            reading = self._read(source)
            if reading is not None:
                self._apply_locked(handle, reading, slot)
        self._sources = alive
        gauges = self._gauges_locked().values()
        slot.memory = sum(levels.get("memory_usage_bytes", 0.0) for levels in gauges)

    def _apply_locked(self, handle: SourceHandle, reading: CounterReading, slot: Slot) -> None:
        for (operation, result), value in reading.operations.items():
            delta = value - handle.operations.get((operation, result), 0)
            if delta < 0:  # the source's counters restarted
                delta = value
            if delta > 0:
                key, series = self._route(handle.cache, operation, handle.tier, result)
                series.count += delta
                slot.counts[key] = slot.counts.get(key, 0) + delta
        handle.operations = dict(reading.operations)
        for name, value in reading.counters.items():
            delta = value - handle.counters.get(name, 0)
            if delta < 0:
                delta = value
            if delta > 0:
                counter = (handle.cache, handle.tier, self._kinds(name))
                self._counters[counter] = self._counters.get(counter, 0) + delta
                slot.counters[counter] = slot.counters.get(counter, 0) + delta
        handle.counters = dict(reading.counters)
        handle.gauges = dict(reading.gauges)

    def _gauges_locked(self) -> dict[tuple[str, str], dict[str, float]]:
        gauges: dict[tuple[str, str], dict[str, float]] = {
            labels: dict(levels) for labels, levels in self._pushed_gauges.items()
        }
        for handle in self._sources:
            levels = gauges.setdefault((handle.cache, handle.tier), {})
            for name, value in handle.gauges.items():
                levels[name] = levels.get(name, 0.0) + value
        return gauges

    # -- recording (push) --------------------------------------------------------------------

    def record_cache_operation_time(
        self,
        operation: str,
        duration: float,
        cache_hit: bool | None = None,
        text_length: int = 0,
        additional_data: Mapping[str, Any] | None = None,
        *,
        tier: str = "unspecified",
        cache: str | None = None,
        result: str | None = None,
    ) -> None:
        """Count one operation that took ``duration`` seconds, and time it.

        ``cache_hit`` makes a lookup (``get``, ``get_many``, ``get_or_set``,
        ``get_cached_response``) a hit or a miss; ``result`` (``"hit"``, ``"miss"``,
        ``"ok"``, ``"error"``) overrides it. ``tier`` is the tier that answered.
        ``text_length`` and ``additional_data`` go to callbacks only (kept data
        stays bounded).
        """
        if result is None:
            if cache_hit is not None and operation in LOOKUP_OPERATIONS:
                result = "hit" if cache_hit else "miss"
            else:
                result = "ok"
        self._record(operation, duration, result, tier, cache, True, text_length, additional_data)

    def record_sample(
        self,
        operation: str,
        duration: float,
        *,
        result: str = "ok",
        tier: str = "memory",
        cache: str | None = None,
    ) -> None:
        """Time one operation whose count an attached source already reports."""
        self._record(operation, duration, result, tier, cache, False, 0, None)

    def record_slow(self, operation: str, duration: float) -> None:
        """Count one slow operation that a sampling cache did not time for latency.

        A cache that times one operation in ``sample_every`` (through
        :meth:`record_sample`) but still measures every one reports here those
        that took longer than ``cache_operation_threshold``, so ``slow_operations``
        stays an exact count while the percentiles rest on the sample. Nothing
        else is recorded (no count, no latency, no callback event).
        """
        seconds = float(duration)
        if not seconds > self.cache_operation_threshold:
            return
        with self._lock:
            slot = self._recording_slot()
            label = self._operations(operation)
            slot.slow[label] = slot.slow.get(label, 0) + 1

    def _record(
        self,
        operation: str,
        duration: float,
        result: str,
        tier: str,
        cache: str | None,
        counted: bool,
        text_length: int,
        additional_data: Mapping[str, Any] | None,
    ) -> None:
        seconds = float(duration)
        if not seconds > 0.0:  # negative, zero or NaN
            seconds = 0.0
        index = bucket_of(seconds)
        with self._lock:
            # The sampled path of every cache comes here: the common cases inline.
            now = self._clock()
            ring = self._ring
            slot = ring.slot if now < ring.ends else ring.turn(now)
            if now >= self._next_pull and self._sources:
                self._pull_locked(slot)
            route = self._routes.get((cache, operation, tier, result))
            key, series = (
                route if route is not None else self._route(cache, operation, tier, result)
            )
            if counted:
                series.count += 1
                slot.counts[key] = slot.counts.get(key, 0) + 1
            if series.latency is None:
                series.latency = Histogram()
            series.latency.add_at(index, seconds)
            labels = (key[1], key[2])
            latency = slot.latency.get(labels)
            if latency is None:
                latency = slot.latency[labels] = Histogram()
            latency.add_at(index, seconds)
            if seconds > self.cache_operation_threshold:
                slot.slow[key[1]] = slot.slow.get(key[1], 0) + 1
        if self._callbacks:
            event: dict[str, Any] = {
                "event": "operation",
                "cache": key[0],
                "operation": key[1],
                "tier": key[2],
                "result": key[3],
                "duration": seconds,
                "sampled": not counted,
            }
            if text_length:
                event["text_length"] = text_length
            if additional_data:
                event["additional_data"] = dict(additional_data)
            self._emit(event)

    def record_key_generation_time(
        self,
        duration: float,
        text_length: int = 0,
        operation_type: str = "",
        additional_data: Mapping[str, Any] | None = None,
        *,
        cache: str | None = None,
    ) -> None:
        """Time one cache-key generation over ``text_length`` characters."""
        seconds = float(duration)
        with self._lock:
            label = self.name if cache is None else self._caches(cache)
            lifetime = self._key_generation.get(label)
            if lifetime is None:
                lifetime = self._key_generation[label] = Histogram()
            lifetime.add(seconds)
            slot = self._recording_slot()
            stats = slot.key_generation
            if stats is None:
                stats = slot.key_generation = KeyGeneration()
            stats.latency.add(seconds)
            stats.text_total += text_length
            stats.text_max = max(stats.text_max, text_length)
            stats.slow += seconds > self.key_generation_threshold
            kind = self._kinds(operation_type or "unspecified")
            stats.by_type[kind] = stats.by_type.get(kind, 0) + 1
        if self._callbacks:
            event: dict[str, Any] = {
                "event": "key_generation",
                "duration": seconds,
                "text_length": text_length,
                "operation_type": kind,
            }
            if additional_data:
                event["additional_data"] = dict(additional_data)
            self._emit(event)

    def record_compression_ratio(
        self,
        original_size: int,
        compressed_size: int,
        compression_time: float,
        operation_type: str = "",
        *,
        cache: str | None = None,
    ) -> None:
        """Record one compression: sizes in bytes before and after, and its time."""
        seconds = float(compression_time)
        with self._lock:
            label = self.name if cache is None else self._caches(cache)
            lifetime = self._compression.setdefault(label, [0, 0, 0])
            lifetime[0] += 1
            lifetime[1] += original_size
            lifetime[2] += compressed_size
            slot = self._recording_slot()
            stats = slot.compression
            if stats is None:
                stats = slot.compression = Compression()
            ratio = stats.add(original_size, compressed_size, seconds)
        if self._callbacks:
            self._emit(
                {
                    "event": "compression",
                    "original_size": original_size,
                    "compressed_size": compressed_size,
                    "compression_ratio": ratio,
                    "duration": seconds,
                    "operation_type": operation_type,
                }
            )

    def record_invalidation_event(
        self,
        pattern: str,
        keys_invalidated: int,
        duration: float,
        invalidation_type: str = "manual",
        operation_context: str = "",
        additional_data: Mapping[str, Any] | None = None,
        *,
        cache: str | None = None,
    ) -> None:
        """Record one invalidation: what it matched (a pattern, tags, a key) and how
        many keys it removed. ``invalidation_type``: ``"pattern"``, ``"tag"``,
        ``"key"``, ``"clear"``, ``"manual"`` ... Patterns past ``max_patterns``
        distinct ones are counted under ``"other"``."""
        seconds = float(duration)
        with self._lock:
            slot = self._recording_slot()
            kind = self._kinds(invalidation_type or "manual")
            label = self._patterns(pattern)
            stats = slot.invalidations.get((kind, label))
            if stats is None:
                stats = slot.invalidations[kind, label] = Invalidations()
            stats.add(keys_invalidated, seconds)
            total = self._invalidation_totals.setdefault(
                (self.name if cache is None else self._caches(cache), kind), [0, 0]
            )
            total[0] += 1
            total[1] += keys_invalidated
        if self._callbacks:
            event: dict[str, Any] = {
                "event": "invalidation",
                "pattern": label,
                "keys_invalidated": keys_invalidated,
                "duration": seconds,
                "invalidation_type": kind,
                "operation_context": operation_context,
            }
            if additional_data:
                event["additional_data"] = dict(additional_data)
            self._emit(event)

    def record_memory_usage(
        self,
        memory_cache: object = None,
        redis_stats: Mapping[str, Any] | None = None,
        additional_data: Mapping[str, Any] | None = None,
        *,
        memory_bytes: float | None = None,
        entries: float | None = None,
        cache: str | None = None,
    ) -> dict[str, Any]:
        """Record memory levels: of a memory tier and, optionally, of Redis.

        ``memory_cache`` may be a cache (its ``get_stats()`` is read) or a mapping
        (its size is estimated); ``memory_bytes`` / ``entries`` give the figures
        directly. ``redis_stats`` may carry ``memory_used_bytes`` and ``keys``.
        Attached caches report their memory on their own. Returns the reading.
        """
        size = memory_bytes
        count = entries
        if memory_cache is not None and (size is None or count is None):
            found_size, found_count = _measure(memory_cache)
            size = found_size if size is None else size
            count = found_count if count is None else count
        reading: dict[str, Any] = {}
        with self._lock:
            slot = self._recording_slot()
            label = self.name if cache is None else self._caches(cache)
            if size is not None or count is not None:
                levels = {"memory_usage_bytes": float(size or 0), "entries": float(count or 0)}
                self._pushed_gauges[label, "memory"] = levels
                reading["memory"] = levels
            if redis_stats:
                levels = {
                    "memory_usage_bytes": float(redis_stats.get("memory_used_bytes", 0) or 0),
                    "entries": float(redis_stats.get("keys", 0) or 0),
                }
                self._pushed_gauges[label, "redis"] = levels
                reading["redis"] = levels
            gauges = self._gauges_locked()
            total = sum(levels.get("memory_usage_bytes", 0.0) for levels in gauges.values())
            slot.memory = total
        reading["total_cache_size_bytes"] = total
        reading["warning_threshold_reached"] = total >= self.memory_warning_threshold_bytes
        if self._callbacks:
            event: dict[str, Any] = {"event": "memory", **reading}
            if additional_data:
                event["additional_data"] = dict(additional_data)
            self._emit(event)
        return reading

    # -- callbacks -------------------------------------------------------------------------

    def add_callback(self, callback: Callback) -> None:
        """Call ``callback(event: dict)`` on every recorded event (synchronously).

        Events: each pushed operation and each sampled one (``"sampled": True``),
        key generation, compression, invalidation and memory readings. Counts a
        cache reports through an attached source are not events. A callback that
        raises is logged and counted, never propagated; keep callbacks quick.
        """
        if not callable(callback):
            raise ValidationError(f"callback must be callable, not {type(callback).__name__}")
        with self._lock:
            if len(self._callbacks) >= MAX_CALLBACKS:
                raise ValidationError(f"a monitor takes at most {MAX_CALLBACKS} callbacks")
            self._callbacks = [*self._callbacks, _Callback(callback)]

    def remove_callback(self, callback: Callback) -> bool:
        """Stop calling ``callback``; False if it was not registered."""
        with self._lock:
            kept = [entry for entry in self._callbacks if entry.callback != callback]
            removed = len(kept) != len(self._callbacks)
            self._callbacks = kept
            return removed

    def _emit(self, event: dict[str, Any]) -> None:
        event["time"] = self._clock()
        for entry in self._callbacks:  # a list replaced, never mutated: safe to iterate
            try:
                outcome = entry.callback(event)
                if inspect.isawaitable(outcome):
                    close = getattr(outcome, "close", None)
                    if close is not None:
                        close()
                    raise TypeError("monitor callbacks must be synchronous functions")
            except Exception as exc:
                with self._lock:
                    entry.failures += 1
                    self.callback_errors += 1
                    failures = entry.failures
                report_monitor_failure(f"monitor callback {entry.callback!r}", failures, exc)

    # -- figures ---------------------------------------------------------------------------

    def _settings(self) -> Settings:
        return Settings(
            retention_hours=self.retention_hours,
            sample_every=self._sample_every,
            cache_operation_threshold=self.cache_operation_threshold,
            key_generation_threshold=self.key_generation_threshold,
            memory_warning_threshold_bytes=self.memory_warning_threshold_bytes,
            memory_critical_threshold_bytes=self.memory_critical_threshold_bytes,
            invalidation_rate_warning_per_hour=self.invalidation_rate_warning_per_hour,
            invalidation_rate_critical_per_hour=self.invalidation_rate_critical_per_hour,
        )

    def _window_locked(self) -> Window:
        """Read every source, then merge the live slots into a :class:`Window` copy."""
        self._pull_locked(self._current_slot())
        window = Window(
            gauges=self._gauges_locked(),
            lifetime={key: series.count for key, series in self._series.items()},
            lifetime_key_generations=sum(h.count for h in self._key_generation.values()),
            uptime_seconds=self._clock() - self._started,
        )
        totals = self._invalidation_totals.values()
        window.lifetime_invalidations = (
            sum(total[0] for total in totals),
            sum(total[1] for total in totals),
        )
        self._ring.merge_into(window)
        return window

    def _monitor_info_locked(self) -> dict[str, Any]:
        overflows = {
            "cache": self._caches.overflows,
            "operation": self._operations.overflows,
            "tier": self._tiers.overflows,
            "pattern": self._patterns.overflows,
            "kind": self._kinds.overflows,
            "series": self._series_overflows,
        }
        return {
            "name": self.name,
            "intervals": self._intervals,
            "interval_seconds": self._interval,
            "series": len(self._series),
            "label_overflows": {kind: count for kind, count in overflows.items() if count},
            "sources": len(self._sources),
            "callbacks": len(self._callbacks),
            "callback_errors": self.callback_errors,
            "source_errors": self.source_errors,
        }

    def get_performance_stats(self) -> dict[str, Any]:
        """Everything over the retention window, as a JSON-ready dict.

        Always present: ``timestamp`` (ISO 8601, UTC), ``retention_hours``,
        ``cache_hit_rate`` (a percentage of lookups, 0-100), ``total_cache_operations``
        (operations of every tier), ``cache_hits``, ``cache_misses``,
        ``sample_every``; then ``cache_operations`` (overall and per operation: exact
        ``count``, ``samples`` timed, ``p50_ms`` / ``p95_ms`` / ``p99_ms`` / ``avg_ms``
        ..., and the same per tier), ``by_tier`` (hits, misses, hit rate),
        ``evictions``, ``expirations``, ``key_generation``, ``compression``,
        ``memory_usage``, ``invalidation``, ``lifetime`` (counts since the monitor
        started or was reset) and ``monitor`` (its own health: label overflows,
        callback and source errors).
        """
        with self._lock:
            window = self._window_locked()
            info = self._monitor_info_locked()
        timestamp = dt.datetime.now(dt.timezone.utc).isoformat()
        return performance_stats(window, self._settings(), info, timestamp)

    def get_memory_usage_stats(self) -> dict[str, Any]:
        """Cache memory now (total and by tier), the thresholds and the trend."""
        with self._lock:
            window = self._window_locked()
        return memory_stats(window, self._settings())

    def get_memory_warnings(self) -> list[dict[str, Any]]:
        """Warnings when cache memory passes the warning or critical threshold."""
        return memory_warnings(self.get_memory_usage_stats(), self._settings())

    def get_invalidation_frequency_stats(self) -> dict[str, Any]:
        """Invalidations over the window: rates, alert level, common patterns, efficiency.

        ``rates.last_hour`` (events in the intervals of the last hour) sets the alert
        level; ``average_per_hour`` spreads the window's events over its length.
        """
        with self._lock:
            window = self._window_locked()
        return invalidation_stats(window, self._settings())

    def get_invalidation_recommendations(self) -> list[dict[str, Any]]:
        """Advice from invalidation patterns, the hit rate and evictions, most severe first.

        Each item: ``severity`` (``critical`` / ``warning`` / ``info``), ``issue``,
        ``message`` and ``suggestions``, e.g. "pattern 'user:*' invalidated 60
        times/hour — consider tags or a longer TTL", "hit rate 32.0% ... is below 50%".
        """
        return recommendations(self.get_performance_stats(), self._settings())

    # -- lifecycle and export --------------------------------------------------------------

    def reset_stats(self) -> None:
        """Forget every figure (window and lifetime); sources keep counting from now."""
        with self._lock:
            self._reset_locked()
            for handle in self._sources:
                source = handle.source()
                reading = self._read(source) if source is not None else None
                if reading is not None:
                    handle.operations = dict(reading.operations)
                    handle.counters = dict(reading.counters)
                    handle.gauges = dict(reading.gauges)
        logger.info("stratacache: performance statistics of %r reset", self.name)

    def snapshot(self) -> MonitorSnapshot:
        """Lifetime figures for exporters (Prometheus), after reading every source."""
        with self._lock:
            self._pull_locked(self._current_slot())
            series = tuple(
                SeriesSnapshot(
                    *key,
                    count=stats.count,
                    samples=stats.latency.count if stats.latency is not None else 0,
                    seconds=stats.latency.total if stats.latency is not None else 0.0,
                    buckets=tuple(stats.latency.counts) if stats.latency is not None else (),
                )
                for key, stats in self._series.items()
            )
            return MonitorSnapshot(
                name=self.name,
                sample_every=self._sample_every,
                series=series,
                counters=dict(self._counters),
                gauges=self._gauges_locked(),
                invalidations={
                    labels: (total[0], total[1])
                    for labels, total in self._invalidation_totals.items()
                },
                compression={
                    label: (total[0], total[1], total[2])
                    for label, total in self._compression.items()
                },
                key_generation={
                    label: (timings.count, timings.total, tuple(timings.counts))
                    for label, timings in self._key_generation.items()
                },
            )

    def export_metrics(self) -> dict[str, Any]:
        """The window's figures and every lifetime series, as one JSON-ready dict."""
        snapshot = self.snapshot()
        return {
            "export_timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
            "performance": self.get_performance_stats(),
            "series": [
                {
                    "cache": s.cache,
                    "operation": s.operation,
                    "tier": s.tier,
                    "result": s.result,
                    "count": s.count,
                    "samples": s.samples,
                    "seconds": s.seconds,
                }
                for s in snapshot.series
            ],
        }


def _measure(memory_cache: object) -> tuple[float | None, float | None]:
    """(bytes, entries) of a cache (via ``get_stats()``) or a mapping (estimated)."""
    get_stats = getattr(memory_cache, "get_stats", None)
    if callable(get_stats):
        stats = get_stats()
        return stats.get("memory_usage_bytes"), stats.get("entries")
    if isinstance(memory_cache, Mapping):
        size = sys.getsizeof(memory_cache)
        for key, value in memory_cache.items():
            size += sys.getsizeof(key) + sys.getsizeof(value)
        return float(size), float(len(memory_cache))
    if isinstance(memory_cache, Iterable):
        return None, float(sum(1 for _ in memory_cache))
    return None, None
