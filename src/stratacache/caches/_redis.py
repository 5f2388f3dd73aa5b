"""``RedisCache``: Redis only, no memory tier — the shared tier of every process."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Coroutine, Iterable, Mapping
from time import perf_counter
from typing import Any, TypeVar

from .._clock import Clock, monotonic
from .._codec import Codec, UndecodableValue, report_undecodable
from .._keys import (
    validate_key,
    validate_keys,
    validate_pattern,
    validate_tags,
)
from .._lease import LEASE_INFIX
from .._lease import acquire as acquire_lease
from .._lease import release as release_lease
from .._loops import PerLoop
from .._pipelining import DRAIN_SECONDS
from .._redis_client import ClientOptions, check_client, client_from_url
from .._resilience import CircuitBreaker
from .._slots import Slots
from .._ttl import resolve_ttl, validate_default_ttl
from ..errors import ConfigurationError, InfrastructureError, ValidationError
from ..monitoring._monitor import (
    CachePerformanceMonitor,
    CounterReading,
    SourceHandle,
    report_monitor_failure,
)
from ..tiers._redis import RedisTier
from ._interface import (
    MISSING,
    SCAN_DONE,
    CacheInterface,
    bad_cursor,
    incr_refused,
    scan_cursor,
    validate_delta,
    validate_scan_count,
)

__all__ = ["RedisCache"]

logger = logging.getLogger("stratacache")
T = TypeVar("T")

_NEVER = 1 << 62  # a sampling countdown that never reaches 0: the monitor is pushed to


class RedisCache(CacheInterface):
    """A cache kept in Redis (single node, Sentinel or Cluster), shared by processes.

    Args:
        url: ``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://host:port``
            or ``redis+sentinel://host:port[,host:port]/service/db``.
        prefix: prepended to every key as given; ``clear()`` and patterns touch
            only keys under it. Give every application its own.
        client: an existing ``redis.asyncio.Redis`` / ``RedisCluster`` to use
            instead of ``url`` (the cache then does not own its lifecycle... it
            still closes it in ``aclose()`` unless ``close_client=False``).
        default_ttl: seconds for writes without ``ttl`` (0: never expire).
        codec: how values are encoded; share one across caches that share keys.
        strict: raise :class:`InfrastructureError` when Redis fails, instead of
            the default fail-safe behaviour (a miss, a dropped write, counted by
            class and logged). ``incr`` raises either way: no count would be right.
        options: connection settings: timeouts (0.25 s by default) and pool size.
        wall_clock: seconds since the epoch, for ``get_or_set``'s freshness stamps,
            which other processes read (inject one in tests, with ``clock``).
        breaker: the circuit breaker guarding Redis (default: opens after 3
            consecutive failures, one probe per second).
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        prefix: str = "",
        client: Any = None,
        default_ttl: int = 3600,
        codec: Codec | None = None,
        strict: bool = False,
        close_client: bool = True,
        options: ClientOptions | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Clock = monotonic,
        performance_monitor: CachePerformanceMonitor | None = None,
        wall_clock: Clock = time.time,
    ) -> None:
        super().__init__()
        self._stamp_clock = wall_clock
        if not isinstance(prefix, str) or "\x00" in prefix:
            raise ValidationError("prefix must be a str without NUL characters")
        self.default_ttl = validate_default_ttl(default_ttl)
        self.prefix = prefix
        self.url = url if client is None else None
        self.codec = codec if codec is not None else Codec()
        self.strict = strict
        self._close_client = close_client
        options = options or ClientOptions()
        self._stats: Counter[str] = Counter()

        def lane(client: Any) -> _Lane:
            tier = RedisTier(
                client, prefix=prefix, pipeline_after=options.pipeline_after, counts=self._stats
            )
            return _Lane(tier, options.max_connections)

        if client is None:
            # A client per event loop: redis.asyncio connections belong to one loop.
            self._lanes: PerLoop[_Lane] = PerLoop(
                lambda: lane(client_from_url(url, options)),
                _Lane.aclose,
                initial=lane(client_from_url(url, options)),
            )
        else:
            self._lanes = PerLoop(
                None,
                _Lane.aclose if close_client else _Lane.keep,
                initial=lane(check_client(client)),
                refuse=lambda: ConfigurationError(
                    "this RedisCache was given a client, which belongs to the event loop "
                    "that first used it; to share a cache between threads running their "
                    "own event loops, give it a URL and it opens a client per loop"
                ),
            )
        self.is_cluster = self._lanes.any.tier.is_cluster
        """True when talking to a Redis Cluster."""
        self._closed = False
        self._status = "disconnected"
        self._failures: Counter[str] = Counter()
        self._breaker = breaker if breaker is not None else CircuitBreaker(clock=clock)
        self._monitor_failures = 0
        self._monitor_handle: SourceHandle | None = None
        self._op_counts: dict[tuple[str, str], int] | None = None
        self._sample_every = self._countdown = _NEVER
        self.performance_monitor = performance_monitor or CachePerformanceMonitor(clock=clock)

    def __repr__(self) -> str:
        return f"RedisCache(prefix={self.prefix!r}, default_ttl={self.default_ttl})"

    @property
    def client(self) -> Any:
        """The redis-py client of the running event loop (outside one: the first made)."""
        try:
            return self._lanes.get().tier.client
        except RuntimeError:  # no running loop
            return self._lanes.any.tier.client

    @property
    def performance_monitor(self) -> CachePerformanceMonitor:
        """Where every Redis command's count, result and latency are recorded.

        The monitor ``attach``-es this cache's command counts (exact, by operation
        and result); one command in its ``sample_every`` is timed for latency
        percentiles, and every command slower than its ``cache_operation_threshold``
        is counted as slow. A monitor that cannot attach (an object with only
        ``record_cache_operation_time``) is told of every command, as it is called.
        Assigning another monitor moves the counting to it.
        """
        return self._monitor

    @performance_monitor.setter
    def performance_monitor(self, monitor: CachePerformanceMonitor) -> None:
        self._detach_monitor()
        self._monitor = monitor
        self._op_counts = {}  # before attach(): it reads them once, as its baseline
        try:
            every = monitor.sample_every
            if type(every) is not int or every < 1:
                raise TypeError(f"sample_every must be a positive int, got {every!r}")
            self._monitor_handle = monitor.attach(self._monitor_reading, tier="redis")
        except Exception:  # not a monitor that samples: push every command to it instead
            self._op_counts = None
            self._sample_every = self._countdown = _NEVER
            return
        self._sample_every = self._countdown = every

    @property
    def status(self) -> str:
        """``connected``, ``disconnected`` or ``error`` (a reply like OOM or READONLY)."""
        return self._status

    @property
    def _tier(self) -> RedisTier:
        return self._lanes.get().tier

    # -- lifecycle -----------------------------------------------------------------

    async def connect(self) -> bool:
        """Ping Redis; True if it answers (strict caches raise instead of False)."""
        self._check_open()
        try:
            await self._run("PING", self._ping())
        except InfrastructureError:
            if self.strict:
                raise
            return False
        return self._status == "connected"

    async def _ping(self) -> None:
        from .._redis_errors import map_redis_errors

        with map_redis_errors("PING"):
            await self._tier.client.ping()

    async def disconnect(self) -> None:
        """Close the connections (same as :meth:`aclose`)."""
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._status = "disconnected"
        self._detach_monitor()  # the monitor reads the counts a last time
        self._loading.cancel()
        await self._lanes.aclose()

    # -- reads -----------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        validate_key(key)
        self._check_open()
        full = self.prefix + key
        data = await self._run(
            "get", self._lanes.get().tier.get(full), fallback=None, lookup=True, pipelined=True
        )
        # _decoded(), inline: this is the path of every read, and a call costs.
        stats = self._stats
        if data is None:
            stats["misses"] += 1
            return default
        try:
            value = self.codec.decode(data, full)
        except UndecodableValue as exc:
            stats["misses"] += 1
            self._undecodable(key, exc)
            return default
        stats["hits"] += 1
        return value

    async def exists(self, key: str) -> bool:
        validate_key(key)
        self._check_open()
        exists = self._tier.exists(self.prefix + key)
        return bool(await self._run("exists", exists, fallback=False, pipelined=True))

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        valid = validate_keys(keys)
        self._check_open()
        if not valid:
            return {}
        prefix = self.prefix
        # The full keys as bytes, made by three C calls: redis-py encodes a str key
        # in ~0.3 µs, a bytes one in ~0.08 (100 keys: 30 µs, or 8, beside a ~180 µs
        # MGET). A key never holds NUL, so NUL can join them and split them again.
        full = (prefix + ("\x00" + prefix).join(valid)).encode().split(b"\x00")
        tier = self._tier
        stored = await self._run(
            "get_many", tier.get_many(full), fallback=None, pipelined=not tier.is_cluster
        )
        if stored is None:
            self._stats["misses"] += len(valid)
            return {}
        # One pass in the codec, not a decode() call a key: see Codec.decode_many.
        found, failed = self.codec.decode_many(valid, stored, prefix)
        for key, exc in failed:
            self._undecodable(key, exc)
        stats = self._stats
        stats["hits"] += len(found)
        stats["misses"] += len(valid) - len(found)
        return found

    async def get_with_ttl(self, keys: list[str]) -> list[tuple[Any, int, frozenset[str]]]:
        """(value or MISSING, milliseconds left: -1 persistent, tags) per valid key.

        For a memory tier in front of this cache: it must not keep a copy longer
        than Redis keeps the entry, and must know its tags to honour tag
        invalidations. Counted as hits and misses like ``get``.
        """
        self._check_open()
        full = [self.prefix + key for key in keys]
        replies = await self._run(
            "get", self._tier.get_with_ttl(full), fallback=None, pipelined=True
        )
        if replies is None:
            self._stats["misses"] += len(keys)
            return [(MISSING, -2, frozenset())] * len(keys)
        return [
            (self._decoded(key, data, MISSING), ttl, tags)
            for key, (data, ttl, tags) in zip(keys, replies, strict=True)
        ]

    async def get_ttl(self, key: str) -> int | None:
        validate_key(key)
        self._check_open()
        result: int | None = await self._run(
            "get_ttl", self._tier.ttl(self.prefix + key), fallback=None, pipelined=True
        )
        return result

    # -- writes ----------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, ttl: int | None = None, *, tags: Iterable[str] = ()
    ) -> None:
        validate_key(key)
        seconds = resolve_ttl(ttl, self.default_ttl)
        labels = validate_tags(tags)
        self._check_open()
        full = self.prefix + key
        data = self.codec.encode(value, full)
        # Tagged: scripts index the tags first, sent as they come (they hold a slot).
        await self._run("set", self._tier.set(full, data, seconds, labels), pipelined=not labels)
        self._stats["sets"] += 1

    async def set_many(self, mapping: Mapping[str, Any], ttl: int | None = None) -> None:
        if not isinstance(mapping, Mapping):
            raise ValidationError(f"set_many needs a mapping, not {type(mapping).__name__}")
        seconds = resolve_ttl(ttl, self.default_ttl)
        self._check_open()
        items = []
        for key, value in mapping.items():
            full = self.prefix + validate_key(key)
            items.append((full, self.codec.encode(value, full)))
        await self._run("set_many", self._tier.set_many(items, seconds), pipelined=True)
        self._stats["sets"] += len(items)

    async def delete(self, key: str) -> bool:
        validate_key(key)
        self._check_open()
        removed = await self._run(
            "delete", self._tier.delete([self.prefix + key]), fallback=0, pipelined=True
        )
        self._stats["deletes"] += removed
        return bool(removed)

    async def delete_many(self, keys: Iterable[str]) -> int:
        valid = validate_keys(keys)
        self._check_open()
        removed: int = await self._run(
            "delete_many", self._tier.delete([self.prefix + key for key in valid]), fallback=0
        )
        self._stats["deletes"] += removed
        return removed

    async def expire(self, key: str, ttl: int | None) -> bool:
        validate_key(key)
        seconds = resolve_ttl(ttl, self.default_ttl)
        self._check_open()
        return bool(
            await self._run("expire", self._tier.expire(self.prefix + key, seconds), fallback=False)
        )

    async def incr(self, key: str, delta: int = 1) -> int:
        validate_key(key)
        validate_delta(delta)
        self._check_open()
        # Counters are decimal text (inside an envelope when tagged): Redis adds
        # atomically. Redis being down raises even in fail-safe mode: no count
        # would be right.
        try:
            result: int = await self._run(
                "incr", self._tier.incr(self.prefix + key, delta, self.default_ttl), strict=True
            )
        except TypeError:
            raise incr_refused(key, delta, overflow=False) from None
        except OverflowError:
            raise incr_refused(key, delta, overflow=True) from None
        return result

    async def _start_counter(self, key: str, start: int) -> int:
        validate_key(key)
        self._check_open()
        try:  # strict, as incr: no value would be right
            result: int = await self._run(
                "incr", self._tier.start_counter(self.prefix + key, start), strict=True
            )
        except TypeError:
            raise incr_refused(key, start, overflow=False) from None
        return result

    async def clear(self) -> None:
        self._check_open()
        if not self.prefix:
            raise ConfigurationError(
                "clear() on a RedisCache without a prefix would delete every key in the "
                "database; give the cache a prefix (RedisCache(url, prefix='myapp:'))"
            )
        start = perf_counter()
        removed: int = await self._run("clear", self._tier.clear(), fallback=0)
        self._invalidated("clear", "*", removed, start)

    async def invalidate_pattern(self, pattern: str) -> int:
        validate_pattern(pattern)
        self._check_open()
        start = perf_counter()
        removed: int = await self._run(
            "invalidate_pattern", self._tier.delete_matching(pattern), fallback=0
        )
        self._stats["invalidations"] += removed
        self._invalidated("pattern", pattern, removed, start)
        return removed

    async def invalidate_tags(self, *tags: str) -> int:
        labels = validate_tags(tags)
        self._check_open()
        start = perf_counter()
        removed: int = await self._run(
            "invalidate_tags", self._tier.invalidate_tags(labels), fallback=0
        )
        self._stats["invalidations"] += removed
        self._invalidated("tag", ",".join(sorted(labels)), removed, start)
        return removed

    async def scan_keys(
        self, pattern: str = "*", *, cursor: str | int = 0, count: int = 100
    ) -> tuple[str, list[str]]:
        """A page of this prefix's keys matching ``pattern`` (SCAN, every Cluster primary).

        See :meth:`CacheInterface.scan_keys`. Raises :class:`InfrastructureError`
        when Redis fails, even in fail-safe mode (an empty page would be a lie).
        """
        validate_pattern(pattern)
        position = _tier_cursor(scan_cursor(cursor))
        size = validate_scan_count(count)
        self._check_open()
        try:
            following, keys = await self._run(
                "scan_keys", self._tier.scan_page(pattern, position, size), strict=True
            )
        except ValueError:  # a cursor naming a primary the cluster no longer has
            raise bad_cursor() from None
        start = len(self.prefix)
        return _cache_cursor(following), [key[start:] for key in keys]

    async def _acquire_lease(self, key: str, token: str, seconds: float) -> bool | None:
        # None when Redis fails (fail-safe): nobody can hold a lease, so load here.
        lease_key = self.prefix + LEASE_INFIX + key
        taken: bool | None = await self._run(
            "lease", acquire_lease(self._tier.client, lease_key, token, seconds)
        )
        return taken

    async def _release_lease(self, key: str, token: str) -> None:
        lease_key = self.prefix + LEASE_INFIX + key
        with contextlib.suppress(InfrastructureError):  # (strict) it ends by itself anyway
            await self._run("lease", release_lease(self._tier.client, lease_key, token))

    async def _recheck(self, key: str) -> Any:
        data = await self._run("get", self._tier.get(self.prefix + key), fallback=None)
        if data is None:
            return MISSING
        try:
            return self.codec.decode(data, self.prefix + key)
        except UndecodableValue:
            return MISSING

    # -- stats -------------------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        stats = self._stats
        lookups = stats["hits"] + stats["misses"]
        return {
            "hits": stats["hits"],
            "misses": stats["misses"],
            "sets": stats["sets"],
            "deletes": stats["deletes"],
            "invalidations": stats["invalidations"],
            "evictions": 0,  # Redis evicts on its own; see INFO stats evicted_keys
            "expirations": 0,
            "decode_errors": stats["decode_errors"],
            "pipelined": stats["pipelined"],
            "hit_rate": stats["hits"] / lookups if lookups else 0.0,
            "entries": None,  # unknown without a SCAN: see get_cache_stats()
            "max_size": None,
            "memory_usage_bytes": None,
            "errors": sum(self._failures.values()),
            "errors_by_class": dict(self._failures),
            "redis_status": self._status,
            "circuit": self._breaker.state,
            "loading": self._loading.stats(),
        }

    async def get_cache_stats(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "prefix": self.prefix,
            "memory": {"status": "disabled"},
            "redis": {"status": self._status, **self.get_stats()},
        }

    # -- internals -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError("this RedisCache is closed; create a new one")

    async def _run(
        self,
        operation: str,
        call: Awaitable[T],
        *,
        fallback: Any = None,
        strict: bool = False,
        lookup: bool = False,
        pipelined: bool = False,
    ) -> T | Any:
        """Await a tier call through the breaker; on failure raise (strict) or fall back.

        Every call is counted and timed for the monitor (``lookup``: a reply of
        ``None`` is a miss, anything else a hit). A call holds one of the loop's
        ``max_connections`` slots, unless it is ``pipelined``: sent through the
        tier's auto-pipeline, which bounds its own connections. Every command of
        the cache runs through here, so it reads each attribute once and takes no
        detour the common case (breaker closed, a slot free, no one waiting) does
        not need.
        """
        breaker = self._breaker
        if breaker.state != "closed" and not breaker.allow():
            if isinstance(call, Coroutine):
                call.close()  # never started: close it, or Python warns it was never awaited
            return self._failed(
                operation,
                InfrastructureError(
                    "Redis is failing: the circuit breaker is open, retrying "
                    f"every {breaker.reset_timeout:g} s",
                    {"operation": operation, "error_class": "CircuitOpen"},
                ),
                fallback,
                strict,
            )
        slots = None if pipelined else self._lanes.get().slots
        if slots is not None:
            if slots.busy < slots.limit:  # the common case: no waiting, no future
                slots.busy += 1
            else:
                await slots.wait()
        start = perf_counter()
        try:
            result = await call
        except InfrastructureError as exc:
            self._record(operation, start, "error")
            breaker.failure()
            return self._failed(operation, exc, fallback, strict)
        finally:
            if slots is not None:
                slots.release()
        self._record(operation, start, ("miss" if result is None else "hit") if lookup else "ok")
        if breaker.failures:
            breaker.success()
        self._status = "connected"
        return result

    def _invalidated(self, kind: str, what: str, removed: int, start: float) -> None:
        try:
            self.performance_monitor.record_invalidation_event(
                what, removed, perf_counter() - start, kind
            )
        except Exception as exc:  # a broken monitor must not break the cache
            self._monitor_failures += 1
            report_monitor_failure("recording an invalidation", self._monitor_failures, exc)

    def _record(self, operation: str, start: float, result: str) -> None:
        """Count a command for the monitor; time it if it is the sampled one or slow.

        Counting is a dict increment the monitor reads when it needs figures; a
        record (~2 µs hot, ~7 µs right after a socket wait) only for one command
        in ``sample_every`` and for slow ones. See :attr:`performance_monitor`.
        """
        seconds = perf_counter() - start
        counts = self._op_counts
        try:
            if counts is None:  # a monitor that cannot attach: tell it everything
                self._monitor.record_cache_operation_time(
                    operation, seconds, tier="redis", result=result
                )
                return
            key = (operation, result)
            counts[key] = counts.get(key, 0) + 1
            self._countdown -= 1
            if self._countdown and seconds <= self._monitor.cache_operation_threshold:
                return  # the common case: counted, neither sampled nor slow
            if not self._countdown:
                self._countdown = self._sample_every  # first: a failing record must not stop it
                self._monitor.record_sample(operation, seconds, result=result, tier="redis")
            else:
                self._monitor.record_slow(operation, seconds)
        except Exception as exc:  # a broken monitor must not break the cache
            self._monitor_failures += 1
            report_monitor_failure("recording a Redis operation", self._monitor_failures, exc)

    def _monitor_reading(self) -> CounterReading:
        """This cache's command counts since it attached, for the monitor (which calls it)."""
        return CounterReading(dict(self._op_counts or ()))

    def _detach_monitor(self) -> None:
        handle, self._monitor_handle = self._monitor_handle, None
        if handle is None:
            return
        try:
            self._monitor.detach(handle)
        except Exception as exc:  # a broken monitor must not break the cache
            self._monitor_failures += 1
            report_monitor_failure("detaching from the monitor", self._monitor_failures, exc)

    def _failed(self, operation: str, exc: InfrastructureError, fallback: Any, strict: bool) -> Any:
        error_class = exc.context.get("error_class", "InfrastructureError")
        self._failures[error_class] += 1
        if error_class != "CircuitOpen":
            self._status = "error" if exc.context.get("kind") == "reply" else "disconnected"
        if self.strict or strict:
            raise exc
        log = logger.warning if self._failures[error_class] == 1 else logger.debug
        log("stratacache: Redis %s failed, serving without Redis: %s", operation, exc.message)
        return fallback

    def _decoded(self, key: str, data: bytes | None, default: Any) -> Any:
        if data is None:
            self._stats["misses"] += 1
            return default
        try:
            value = self.codec.decode(data, self.prefix + key)
        except UndecodableValue as exc:
            self._stats["misses"] += 1
            self._undecodable(key, exc)
            return default
        self._stats["hits"] += 1
        return value

    def _undecodable(self, key: str, exc: UndecodableValue) -> None:
        """Count and log (once at WARNING) a value that could not be decoded."""
        self._stats["decode_errors"] += 1
        report_undecodable(key, exc, self._stats["decode_errors"])


_CURSOR_TAG = "r"


def _tier_cursor(cursor: str) -> str:
    """The tier's cursor inside one of ours (``"0"`` starts a scan)."""
    if cursor == SCAN_DONE:
        return cursor
    if not cursor.startswith(_CURSOR_TAG) or not cursor[1:].isascii():
        raise bad_cursor()
    return cursor[1:]


def _cache_cursor(tier_cursor: str) -> str:
    return SCAN_DONE if tier_cursor == "0" else _CURSOR_TAG + tier_cursor


class _Lane:
    """What one event loop uses: its client (inside a tier) and its share of the pool.

    Callers beyond the pool size queue here instead of failing: redis-py's pools
    raise MaxConnectionsError once exhausted.
    """

    __slots__ = ("slots", "tier")

    def __init__(self, tier: RedisTier, limit: int) -> None:
        self.tier = tier
        self.slots = Slots(limit)

    async def aclose(self) -> None:
        await self.slots.drained(DRAIN_SECONDS)  # see AutoPipeline.aclose
        try:
            await self.tier.aclose()
        except InfrastructureError as exc:
            logger.debug("stratacache: closing the Redis client failed: %s", exc)

    async def keep(self) -> None:
        """Leave an injected client open (``close_client=False``): stop only our pipelines."""
        await self.slots.drained(DRAIN_SECONDS)
        await self.tier.commands.aclose()
