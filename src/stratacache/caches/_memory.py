"""``InMemoryCache``: the process-local cache, and the memory tier of the two-tier one."""

from __future__ import annotations

import math
import sys
from collections.abc import Coroutine, Iterable, Mapping
from time import perf_counter
from typing import Any, TypeVar

from .._clock import Clock, monotonic
from .._codec import IMMUTABLE_TYPES, Codec, UndecodableValue, report_undecodable
from .._keys import (
    glob_matcher,
    namespace_prefix,
    validate_key,
    validate_keys,
    validate_pattern,
    validate_tags,
)
from .._ttl import resolve_ttl, validate_default_ttl, validate_positive_int
from ..errors import InfrastructureError, ValidationError
from ..monitoring._monitor import (
    CachePerformanceMonitor,
    CounterReading,
    SourceHandle,
    report_monitor_failure,
)
from ..tiers._memory import AS_IS, COPY, ENCODED, Entry, Eviction, MemoryTier, entry_size
from ._interface import MISSING, CacheInterface, incr_refused, validate_delta

__all__ = ["InMemoryCache", "LocalCache"]

# Values of these exact types cannot be mutated by a caller, so they are kept as
# they are. Flat containers of them are kept as a private copy and handed out as
# shallow copies (7x faster than decoding); everything else is kept encoded and
# decoded afresh on every read. Either way no caller can alias the cached value.
_IMMUTABLE = IMMUTABLE_TYPES
_FLAT_TYPES = frozenset({dict, list, set, tuple, frozenset})
_MEMBER_ESTIMATE = 48  # bytes: a small str or int, for memory_usage_bytes without max_bytes
# Operations counted per call for the monitor (get counts as hits and misses instead).
_COUNTED = (
    "get_many",
    "exists",
    "get_ttl",
    "set",
    "set_many",
    "delete",
    "delete_many",
    "expire",
    "incr",
    "clear",
    "invalidate_pattern",
    "invalidate_tags",
)
_NEVER = 1 << 62  # a countdown that never reaches 0: no sampling

T = TypeVar("T")


class InMemoryCache(CacheInterface):
    """A bounded in-process cache with per-entry TTL, tags and patterns.

    Args:
        max_size: the most entries held; the least recently used go first.
        default_ttl: seconds an entry lives when ``set`` gets no ``ttl``
            (``0``: never expire).
        max_bytes: optionally bound the estimated memory of the entries too.
        eviction: ``"lru"`` (default) or ``"tinylfu"`` (W-TinyLFU admission: a
            one-off scan cannot flush the keys you read often).
        namespace: a label for this cache (keys are held as given).
        clock: seconds on a monotonic scale; inject
            :class:`stratacache.testing.FakeClock` to test expiry without sleeping.
        codec: how values are encoded (register your dataclasses here).
        performance_monitor: the :class:`~stratacache.monitoring.CachePerformanceMonitor`
            to report to (several caches may share one); by default the cache makes
            its own, on its clock. Either way it is ``cache.performance_monitor``.

    Monitoring costs the hit path a countdown: the monitor reads the cache's own
    counters (exact hit, miss and per-operation counts) when it needs them, and one
    operation in ``performance_monitor.sample_every`` is timed for its latency
    percentiles. A failing monitor is logged and never fails an operation.
    """

    def __init__(
        self,
        max_size: int = 1000,
        default_ttl: int = 3600,
        *,
        max_bytes: int | None = None,
        eviction: Eviction = "lru",
        namespace: str = "",
        clock: Clock | None = None,
        codec: Codec | None = None,
        performance_monitor: CachePerformanceMonitor | None = None,
    ) -> None:
        super().__init__()
        self.max_size = validate_positive_int("max_size", max_size)
        self.default_ttl = validate_default_ttl(default_ttl)
        if max_bytes is not None:
            validate_positive_int("max_bytes", max_bytes)
        if eviction not in ("lru", "tinylfu"):
            raise ValidationError(
                f"eviction must be 'lru' or 'tinylfu', got {eviction!r}",
                {"eviction": repr(eviction)},
            )
        namespace_prefix(namespace)  # validates it
        self.namespace = namespace
        self.codec = codec if codec is not None else Codec()
        self._tier = MemoryTier(
            max_size,
            clock=clock if clock is not None else monotonic,
            max_bytes=max_bytes,
            eviction=eviction,
        )
        self._lookup = self._tier.lookup
        self._lru = eviction == "lru"
        self._entries = self._tier.entries
        self._clock = self._tier.clock
        self._stamp_clock = self._clock  # entries never leave the process (see _stamps)
        self._closed = False
        self._misses = self._sets = self._deletes = 0
        self._invalidations = self._decode_errors = 0
        self._calls = dict.fromkeys(_COUNTED, 0)
        # Gets are counted by a countdown that also picks the one get in
        # sample_every to time: see _hit_count. Other operations share _countdown.
        self._get_rounds = self._get_failures = 0
        self._monitor_handle: SourceHandle | None = None
        self._countdown = self._get_countdown = self._sample_every = _NEVER
        self._attach_monitor(performance_monitor)

    def __repr__(self) -> str:
        return (
            f"InMemoryCache(max_size={self.max_size}, default_ttl={self.default_ttl}, "
            f"namespace={self.namespace!r}, entries={len(self._tier)})"
        )

    # -- reads ---------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        # The hot path. It validates nothing on a hit: only valid keys are ever
        # stored, so a key that hits is valid; misses validate, and so raise for
        # bad keys. For LRU the tier's lookup is inlined (one Python call less);
        # MemoryTier's docstring says why this read needs no lock. The countdown
        # counts every get (hits are the gets that neither missed nor raised, so a
        # hit pays this one attribute write) and picks the ones to time. The markers
        # let benchmarks/monitoring.py measure get without them: keep them in place.
        countdown = self._get_countdown - 1  # monitor: begin
        if not countdown:
            return await self._timed_get(key, default)
        self._get_countdown = countdown  # monitor: end
        try:
            if self._lru:
                entry = self._entries.get(key)
                if entry is not None:
                    if entry.expires_at > self._clock():
                        self._entries.move_to_end(key)
                    else:
                        entry = self._lookup(key)  # the tier expires and counts it
            else:
                entry = self._lookup(key)
        except (TypeError, KeyError):  # unhashable key, or removed by another thread
            entry = None
        if entry is None:
            try:
                validate_key(key)
                self._check_open()
            except BaseException:
                self._get_failures += 1
                raise
            self._misses += 1
            return default
        form = entry.form
        if form == AS_IS:
            return entry.value
        if form == COPY:
            return entry.value.copy()
        return self._decode(key, entry, default)

    async def exists(self, key: str) -> bool:
        countdown = self._countdown - 1
        if not countdown:
            return await self._timed("exists", self.exists(key))
        self._countdown = countdown
        validate_key(key)
        self._check_open()
        found = self._tier.peek(key) is not None
        self._calls["exists"] += 1
        return found

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        countdown = self._countdown - 1
        if not countdown:
            return await self._timed("get_many", self.get_many(keys))
        self._countdown = countdown
        found: dict[str, Any] = {}
        for key in validate_keys(keys):
            value = await self.get(key, MISSING)
            if value is not MISSING:
                found[key] = value
        self._calls["get_many"] += 1
        return found

    async def get_ttl(self, key: str) -> int | None:
        countdown = self._countdown - 1
        if not countdown:
            return await self._timed("get_ttl", self.get_ttl(key))
        self._countdown = countdown
        validate_key(key)
        self._check_open()
        self._calls["get_ttl"] += 1
        entry = self._tier.peek(key)
        if entry is None:
            return None
        remaining = self._tier.remaining(entry)
        return 0 if remaining == math.inf else max(1, math.ceil(remaining))

    # -- writes --------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, ttl: int | None = None, *, tags: Iterable[str] = ()
    ) -> None:
        countdown = self._countdown - 1
        if not countdown:
            await self._timed("set", self.set(key, value, ttl, tags=tags))
            return
        self._countdown = countdown
        validate_key(key)
        seconds = resolve_ttl(ttl, self.default_ttl)
        labels = validate_tags(tags)
        self._check_open()
        stored, form, size = self._prepare(key, value)
        self._tier.store(key, stored, form=form, size=size, ttl=seconds, tags=labels)
        self._sets += 1
        self._calls["set"] += 1

    async def set_many(self, mapping: Mapping[str, Any], ttl: int | None = None) -> None:
        countdown = self._countdown - 1
        if not countdown:
            await self._timed("set_many", self.set_many(mapping, ttl))
            return
        self._countdown = countdown
        if not isinstance(mapping, Mapping):
            raise ValidationError(f"set_many needs a mapping, not {type(mapping).__name__}")
        seconds = resolve_ttl(ttl, self.default_ttl)
        self._check_open()
        # Encode everything first: one bad value stores nothing.
        prepared = [
            (validate_key(key), *self._prepare(key, value)) for key, value in mapping.items()
        ]
        for key, stored, form, size in prepared:
            self._tier.store(key, stored, form=form, size=size, ttl=seconds)
        self._sets += len(prepared)
        self._calls["set_many"] += 1

    async def delete(self, key: str) -> bool:
        countdown = self._countdown - 1
        if not countdown:
            return await self._timed("delete", self.delete(key))
        self._countdown = countdown
        validate_key(key)
        self._check_open()
        removed = self._tier.remove(key)
        self._deletes += removed
        self._calls["delete"] += 1
        return removed

    async def delete_many(self, keys: Iterable[str]) -> int:
        countdown = self._countdown - 1
        if not countdown:
            return await self._timed("delete_many", self.delete_many(keys))
        self._countdown = countdown
        valid = validate_keys(keys)
        self._check_open()
        removed = self._tier.remove_many(valid)
        self._deletes += removed
        self._calls["delete_many"] += 1
        return removed

    async def expire(self, key: str, ttl: int | None) -> bool:
        countdown = self._countdown - 1
        if not countdown:
            return await self._timed("expire", self.expire(key, ttl))
        self._countdown = countdown
        validate_key(key)
        seconds = resolve_ttl(ttl, self.default_ttl)
        self._check_open()
        self._calls["expire"] += 1
        return self._tier.set_expiry(key, seconds)

    async def incr(self, key: str, delta: int = 1) -> int:
        countdown = self._countdown - 1
        if not countdown:
            return await self._timed("incr", self.incr(key, delta))
        self._countdown = countdown
        validate_key(key)
        validate_delta(delta)
        self._check_open()
        try:
            result = self._tier.incr(key, delta, self.default_ttl)
        except TypeError as exc:
            raise incr_refused(key, delta, overflow=False, holding=f"a {exc}") from None
        except OverflowError:
            raise incr_refused(key, delta, overflow=True) from None
        self._calls["incr"] += 1
        return result

    async def _start_counter(self, key: str, start: int) -> int:
        validate_key(key)
        self._check_open()
        try:
            return self._tier.start_counter(key, start)
        except TypeError as exc:
            raise incr_refused(key, start, overflow=False, holding=f"a {exc}") from None

    async def clear(self) -> None:
        countdown = self._countdown - 1
        if not countdown:
            await self._timed("clear", self.clear())
            return
        self._countdown = countdown
        self._check_open()
        start = perf_counter()
        removed = len(self._tier)
        self._tier.clear()
        self._calls["clear"] += 1
        self._invalidated("clear", "*", removed, perf_counter() - start)

    async def invalidate_pattern(self, pattern: str) -> int:
        countdown = self._countdown - 1
        if not countdown:
            return await self._timed("invalidate_pattern", self.invalidate_pattern(pattern))
        self._countdown = countdown
        matcher = glob_matcher(validate_pattern(pattern))
        self._check_open()
        start = perf_counter()
        removed = self._tier.remove_matching(
            lambda key: matcher.fullmatch(key.encode()) is not None
        )
        self._invalidations += removed
        self._calls["invalidate_pattern"] += 1
        self._invalidated("pattern", pattern, removed, perf_counter() - start)
        return removed

    async def invalidate_tags(self, *tags: str) -> int:
        countdown = self._countdown - 1
        if not countdown:
            return await self._timed("invalidate_tags", self.invalidate_tags(*tags))
        self._countdown = countdown
        labels = validate_tags(tags)
        self._check_open()
        start = perf_counter()
        removed = self._tier.remove_tagged(labels)
        self._invalidations += removed
        self._calls["invalidate_tags"] += 1
        self._invalidated("tag", ",".join(sorted(labels)), removed, perf_counter() - start)
        return removed

    # -- stats and lifecycle -------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        tier = self._tier
        tier.purge_expired()
        hits = self._hit_count()
        lookups = hits + self._misses
        return {
            "hits": hits,
            "misses": self._misses,
            "sets": self._sets,
            "deletes": self._deletes,
            "invalidations": self._invalidations,
            "evictions": tier.evictions,
            "expirations": tier.expirations,
            "rejections": tier.rejections,
            "decode_errors": self._decode_errors,
            "hit_rate": hits / lookups if lookups else 0.0,
            "entries": len(tier),
            "max_size": self.max_size,
            "memory_usage_bytes": tier.bytes,
            "max_bytes": tier.max_bytes,
            "eviction": tier.eviction,
            "loading": self._loading.stats(),
        }

    async def get_cache_stats(self) -> dict[str, Any]:
        return {
            "backend": "memory",
            "namespace": self.namespace,
            "memory": {"status": "closed" if self._closed else "active", **self.get_stats()},
            "redis": {"status": "disabled"},
        }

    async def aclose(self) -> None:
        """Drop every entry; later operations raise :class:`InfrastructureError`.

        The monitor reads this cache's counters a last time and keeps its figures.
        """
        if not self._closed and self._monitor_handle is not None:
            try:
                self._monitor.detach(self._monitor_handle)
            except Exception as exc:
                self._monitor_failed(exc)
            self._monitor_handle = None
        self._closed = True
        self._loading.cancel()
        self._tier.clear()

    # -- monitoring ---------------------------------------------------------------------

    @property
    def performance_monitor(self) -> CachePerformanceMonitor:
        """The monitor this cache reports to."""
        return self._monitor

    def _attach_monitor(self, monitor: CachePerformanceMonitor | None) -> None:
        if monitor is None:
            monitor = CachePerformanceMonitor(clock=self._clock)
        self._monitor = monitor
        self._monitor_label = self.namespace or None
        self._monitor_failures = 0
        # A two-tier cache whose L1 shares its monitor records invalidations itself
        # (with the Redis counts) and turns this off, so none is counted twice.
        self._records_invalidations = True
        try:
            every = monitor.sample_every
            if type(every) is not int or every < 1:
                raise TypeError(f"sample_every must be a positive int, got {every!r}")
            self._monitor_handle = monitor.attach(
                self._monitor_reading, cache=self._monitor_label, tier="memory"
            )
            self._sample_every = every
            self._get_countdown = every
        except Exception as exc:  # a broken monitor must not break the cache
            self._monitor_failed(exc)
        self._countdown = self._sample_every

    def _monitor_reading(self) -> CounterReading:
        """This cache's cumulative counters, for the monitor (which calls it)."""
        tier = self._tier
        operations = {("get", "hit"): self._hit_count(), ("get", "miss"): self._misses}
        for operation, calls in self._calls.items():
            operations[operation, "ok"] = calls
        return CounterReading(
            operations,
            counters={
                "evictions": tier.evictions,
                "expirations": tier.expirations,
                "rejections": tier.rejections,
                "decode_errors": self._decode_errors,
            },
            gauges={
                "entries": len(tier),
                "memory_usage_bytes": tier.bytes,
                "max_size": self.max_size,
            },
        )

    def _hit_count(self) -> int:
        """Gets that hit: every get, as the countdown counted them, less misses and failures.

        A get counts down from ``sample_every``; the one reaching 0 completes a
        round and is timed (:meth:`_timed_get`). Exact in one thread; across threads
        a lost decrement loses one count, as ``+= 1`` on a shared counter would.
        """
        period = self._sample_every
        gets = self._get_rounds * period + (period - self._get_countdown)
        return gets - self._misses - self._get_failures

    async def _timed_get(self, key: str, default: Any) -> Any:
        """``get``, timed for the monitor (one call in ``sample_every``)."""
        self._get_rounds += 1
        self._get_countdown = self._sample_every + 1  # the get below counts down to N
        misses, failures = self._misses, self._get_failures
        start = perf_counter()
        try:
            return await self.get(key, default)
        finally:
            seconds = perf_counter() - start
            if self._get_failures != failures:
                self._sample("get", "error", seconds)
            else:
                self._sample("get", "miss" if self._misses != misses else "hit", seconds)

    async def _timed(self, operation: str, call: Coroutine[Any, Any, T]) -> T:
        """Await ``call`` (a call of ``operation``), timed for the monitor."""
        self._countdown = self._sample_every + 1
        start = perf_counter()
        result = "error"
        try:
            value = await call
            result = "ok"
            return value
        finally:
            self._sample(operation, result, perf_counter() - start)

    def _sample(self, operation: str, result: str, seconds: float) -> None:
        try:
            self._monitor.record_sample(
                operation, seconds, result=result, tier="memory", cache=self._monitor_label
            )
        except Exception as exc:
            self._monitor_failed(exc)

    def _invalidated(self, kind: str, pattern: str, removed: int, seconds: float) -> None:
        if not self._records_invalidations:
            return
        try:
            self._monitor.record_invalidation_event(
                pattern, removed, seconds, kind, cache=self._monitor_label
            )
        except Exception as exc:
            self._monitor_failed(exc)

    def _monitor_failed(self, exc: Exception) -> None:
        self._monitor_failures += 1
        report_monitor_failure("the performance monitor", self._monitor_failures, exc)

    # -- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError(
                "this InMemoryCache is closed; create a new one", {"namespace": self.namespace}
            )

    def _prepare(self, key: str, value: Any) -> tuple[Any, int, int]:
        """What to store for ``value``: (stored value, its form, its estimated size)."""
        cls = type(value)
        if cls in _IMMUTABLE:
            return value, AS_IS, entry_size(key, value)
        if cls in _FLAT_TYPES and _IMMUTABLE.issuperset(map(type, value)):
            if cls is dict and not _IMMUTABLE.issuperset(map(type, value.values())):
                return self._encode(key, value)
            size = entry_size(key, value) + self._members_size(value)
            if cls is tuple or cls is frozenset:
                return value, AS_IS, size
            return value.copy(), COPY, size
        return self._encode(key, value)

    def _encode(self, key: str, value: Any) -> tuple[bytes, int, int]:
        encoded = self.codec.encode(value, key)
        return encoded, ENCODED, entry_size(key, encoded)

    def _members_size(self, container: Any) -> int:
        # sys.getsizeof costs ~150 ns a member, more than the copy saves on a read:
        # pay it only when max_bytes makes the figure a bound, else estimate.
        if self._tier.max_bytes is None:
            return _MEMBER_ESTIMATE * len(container) * (2 if type(container) is dict else 1)
        size = sum(map(sys.getsizeof, container))
        if type(container) is dict:
            size += sum(map(sys.getsizeof, container.values()))
        return size

    def _decode(self, key: str, entry: Entry, default: Any) -> Any:
        try:
            value = self.codec.decode(entry.value, key)
        except UndecodableValue as exc:
            self._tier.remove(key)
            self._misses += 1
            self._decode_errors += 1
            report_undecodable(key, exc, self._decode_errors)
            return default
        except BaseException:
            self._get_failures += 1
            raise
        return value

    async def _recheck(self, key: str) -> Any:
        entry = self._tier.peek(key)
        if entry is None:
            return MISSING
        if entry.form != ENCODED:
            return entry.value if entry.form == AS_IS else entry.value.copy()
        try:
            return self.codec.decode(entry.value, key)
        except UndecodableValue:
            return MISSING

    def _copy_for_waiter(self, key: str, value: Any) -> Any:
        stored, form, _ = self._prepare(key, value)
        if form == ENCODED:
            return self.codec.decode(stored, key)
        return stored

    async def scan_keys(
        self, pattern: str = "*", *, cursor: str | int = 0, count: int = 100
    ) -> tuple[str, list[str]]:
        """A page of live keys matching ``pattern``, in key order; each key once.

        See :meth:`CacheInterface.scan_keys`. The cursor holds the page's last key.
        """
        from ._interface import SCAN_DONE, keyset_cursor, keyset_position, scan_cursor
        from ._interface import validate_scan_count as checked_count

        matcher = glob_matcher(validate_pattern(pattern))
        after = keyset_position(scan_cursor(cursor))
        size = checked_count(count)
        self._check_open()
        keys, more = self._tier.scan(
            after, size, lambda key: matcher.fullmatch(key.encode("utf-8", "surrogatepass"))
        )
        return (keyset_cursor(keys[-1]) if more else SCAN_DONE), keys


LocalCache = InMemoryCache
"""An alias of :class:`InMemoryCache`, the name some existing code uses."""
