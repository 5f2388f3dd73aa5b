"""``GenericRedisCache``: a memory tier (L1) in front of Redis (L2), kept coherent.

Reads try L1, then L2, and promote L2 hits into L1 for no longer than the L2 entry
has left. Writes go to L2, then L1, then are published on the namespace's
invalidation channel, so every other process drops its L1 copy (see ``_bus.py``).

Two races are closed by tracking the keys in flight: a write or a promotion whose
key was invalidated from elsewhere while it waited on Redis (by key, pattern, tag,
clear or a lost channel) does not fill L1 — the value it holds may already be
outdated — and the next read fetches afresh. Other keys are not held back.
What remains is the channel's own delay: a value changed elsewhere may be served
from L1 until the message arrives (p99 well under a millisecond on loopback). If the
channel is lost, L1 is flushed, and flushed again when it is restored.

When Redis fails, the cache serves from L1 and writes to L1 (fail-safe), or raises
``InfrastructureError`` when ``fail_on_connection_error=True``.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from .._bus import InvalidationBus, Kind
from .._clock import Clock, monotonic
from .._codec import Codec
from .._keys import (
    escape_glob,
    namespace_prefix,
    validate_key,
    validate_keys,
    validate_pattern,
    validate_tags,
)
from .._redis_client import ClientOptions
from .._redis_errors import map_redis_errors
from .._stamps import conceal, reveal, stamps_shown, unstamped
from .._ttl import resolve_ttl, validate_default_ttl, validate_positive_int
from ..errors import ConfigurationError
from ..monitoring._monitor import CachePerformanceMonitor
from ._interface import MISSING, CacheInterface
from ._memory import InMemoryCache
from ._redis import RedisCache

__all__ = ["CacheManager", "GenericRedisCache"]

logger = logging.getLogger("stratacache")


class GenericRedisCache(CacheInterface):
    """The two-tier cache: process memory in front of Redis, coherent across processes.

    Args:
        redis_url: where Redis is (see :class:`RedisCache` for the schemes).
        redis_client: an existing ``redis.asyncio.Redis`` to use instead.
        default_ttl: seconds for writes without ``ttl`` (0: never expire).
        enable_memory_cache / memory_cache_size: the L1 tier and its entry bound
            (aliases ``enable_l1_cache`` / ``l1_cache_size``).
        compression_threshold / compression_level: zstd above this many bytes.
        namespace: isolates this cache's keys (and its invalidation channel).
        fail_on_connection_error: raise instead of degrading to L1.
        codec: a :class:`Codec` (its compression settings win over the two above).
        options: connection settings (timeouts, pool size) for ``redis_url``.
        wall_clock: seconds since the epoch, for ``get_or_set``'s freshness stamps,
            which other processes read (inject one in tests, with ``clock``).
    """

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        *,
        redis_client: Any = None,
        default_ttl: int = 3600,
        enable_memory_cache: bool = True,
        memory_cache_size: int = 100,
        compression_threshold: int = 1000,
        compression_level: int = 6,
        namespace: str = "",
        fail_on_connection_error: bool = False,
        performance_monitor: CachePerformanceMonitor | None = None,
        enable_l1_cache: bool | None = None,
        l1_cache_size: int | None = None,
        codec: Codec | None = None,
        clock: Clock | None = None,
        options: ClientOptions | None = None,
        wall_clock: Clock = time.time,
    ) -> None:
        super().__init__()
        self._stamp_clock = wall_clock
        enabled = _alias(
            "enable_memory_cache", enable_memory_cache, "enable_l1_cache", enable_l1_cache, True
        )
        size = _alias("memory_cache_size", memory_cache_size, "l1_cache_size", l1_cache_size, 100)
        self.default_ttl = validate_default_ttl(default_ttl)
        self.memory_cache_size = validate_positive_int("memory_cache_size", size)
        self.namespace = namespace
        # One monitor for both tiers: memory hits are counted by L1, Redis commands
        # (and invalidations, once) by L2.
        self.performance_monitor = performance_monitor or CachePerformanceMonitor(
            clock=clock or monotonic
        )
        prefix = namespace_prefix(namespace)
        self.codec = codec or Codec(
            compression_threshold=compression_threshold, compression_level=compression_level
        )
        self._l2 = RedisCache(
            redis_url,
            client=redis_client,
            prefix=prefix,
            default_ttl=self.default_ttl,
            codec=self.codec,
            strict=fail_on_connection_error,
            close_client=redis_client is None,
            options=options,
            performance_monitor=self.performance_monitor,
        )
        l1 = None
        if enabled:
            l1 = InMemoryCache(
                self.memory_cache_size,
                self.default_ttl,
                codec=self.codec,
                clock=clock,
                performance_monitor=self.performance_monitor,
            )
            l1._records_invalidations = False  # L2 records each invalidation once
        self._wire(l1, scope="")

    def _wire(self, l1: InMemoryCache | None, *, scope: str) -> None:
        """Attach the memory tier and the invalidation channel; ``scope`` prefixes keys."""
        self._l1 = l1
        self._scope = scope
        self._bus: InvalidationBus | None = None
        if l1 is not None:
            self._bus = InvalidationBus(
                lambda: self._l2.client,
                f"stratacache:invalidate:{self._l2.prefix}{scope}",
                apply=self._apply_remote,
                flush=self._flush_l1,
                publish_with=self._publish_pipelined,
            )
        self._in_flight: dict[str, int] = {}  # key -> operations waiting on Redis
        # keys in flight that were invalidated meanwhile (builtins: `set` is a method here)
        self._stale: builtins.set[str] = builtins.set()
        self._l1_hits = 0

    def __repr__(self) -> str:
        return f"GenericRedisCache(namespace={self.namespace!r}, l1={self._l1 is not None})"

    @property
    def client(self) -> Any:
        """The redis-py client in use."""
        return self._l2.client

    # -- lifecycle ---------------------------------------------------------------

    async def connect(self) -> bool:
        """Connect to Redis and subscribe to invalidations; False if Redis is down.

        A cache that could not connect keeps trying: it attaches by itself.
        """
        connected = await self._l2.connect()
        if self._bus is not None:
            if connected:
                connected = await self._bus.start()
            else:  # no point waiting: it subscribes by itself once Redis is back
                self._bus.ensure_started()
        return connected

    async def aclose(self) -> None:
        self._loading.cancel()
        if self._bus is not None:
            await self._bus.aclose()
        if self._l1 is not None:
            await self._l1.aclose()
        await self._l2.aclose()

    # -- reads -------------------------------------------------------------------
    # Tiers see scoped keys (``self._scope + key``: empty for GenericRedisCache); the
    # bus and the keys-in-flight bookkeeping see the caller's keys.

    async def get(self, key: str, default: Any = None) -> Any:
        # The hot path validates nothing on a memory hit, as InMemoryCache.get: only
        # valid keys are stored, so a key that hits is valid (an invalid one misses,
        # and is refused below). That is a third of a hit's cost.
        l1 = self._l1
        if l1 is not None and type(key) is str and self._l1_serving():
            value = await l1.get(self._scope + key, MISSING)
            if value is not MISSING:
                self._l1_hits += 1
                return value
        validate_key(key)
        [value] = await self._fetch([key])
        return default if value is MISSING else value

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        wanted = validate_keys(keys)
        found: dict[str, Any] = {}
        if self._l1 is not None and self._l1_serving():
            scope = len(self._scope)
            in_memory = await self._l1.get_many(self._scoped(wanted))
            found = {key[scope:]: value for key, value in in_memory.items()}
            self._l1_hits += len(found)
        rest = [key for key in wanted if key not in found]
        for key, value in zip(rest, await self._fetch(rest), strict=True):
            if value is not MISSING:
                found[key] = value
        return found

    async def _fetch(self, keys: list[str]) -> list[Any]:
        """Read keys from L2 (MISSING where absent) and promote what it has into L1."""
        if not keys:
            return []
        self._begin(keys)
        token = reveal()  # L1 keeps a get_or_set entry's stamp, as Redis does
        try:
            results = await self._l2.get_with_ttl(self._scoped(keys))
        finally:
            conceal(token)
            stale = self._end(keys)
        if self._l1 is not None:
            for key, (value, ttl, tags) in zip(keys, results, strict=True):
                if value is not MISSING and key not in stale and (ttl == -1 or ttl >= 1000):
                    # Never outlive the L2 entry (whole seconds, rounded down), and
                    # keep its tags so a tag invalidation from elsewhere reaches it.
                    seconds = 0 if ttl == -1 else ttl // 1000
                    await self._l1.set(self._scope + key, value, seconds, tags=tags)
        if stamps_shown():
            return [value for value, _, _ in results]
        return [unstamped(value) for value, _, _ in results]

    async def exists(self, key: str) -> bool:
        validate_key(key)
        if self._l1 is not None and self._l1_serving() and await self._l1.exists(self._scope + key):
            return True
        return bool(await self._l2.exists(self._scope + key))

    async def get_ttl(self, key: str) -> int | None:
        validate_key(key)
        ttl = await self._l2.get_ttl(self._scope + key)
        if ttl is None and self._l1 is not None and self._l2_down():
            return await self._l1.get_ttl(self._scope + key)
        return ttl

    # -- writes ------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, ttl: int | None = None, *, tags: Iterable[str] = ()
    ) -> None:
        validate_key(key)
        scoped, labels = self._scope + key, self._scoped_tags(tags)
        self._begin([key])
        try:
            await self._l2.set(scoped, value, ttl, tags=labels)
        finally:
            stale = self._end([key])
        if self._l1 is not None:
            if stale:  # someone else changed the key meanwhile: do not cache our copy
                await self._l1.delete(scoped)
            else:
                await self._l1.set(scoped, value, ttl, tags=labels)
        await self._publish("keys", [key])

    async def set_many(self, mapping: Mapping[str, Any], ttl: int | None = None) -> None:
        keys = validate_keys(list(mapping))
        scoped = {self._scope + key: value for key, value in mapping.items()}
        self._begin(keys)
        try:
            await self._l2.set_many(scoped, ttl)
        finally:
            stale = self._scoped(self._end(keys))
        if self._l1 is not None:
            await self._l1.set_many({k: v for k, v in scoped.items() if k not in stale}, ttl)
            await self._l1.delete_many(stale)
        await self._publish("keys", keys)

    async def delete(self, key: str) -> bool:
        validate_key(key)
        removed = await self._l2.delete(self._scope + key)
        if self._l1 is not None:
            removed = await self._l1.delete(self._scope + key) or removed
        await self._publish("keys", [key])
        return removed

    async def delete_many(self, keys: Iterable[str]) -> int:
        valid = validate_keys(keys)
        removed = await self._l2.delete_many(self._scoped(valid))
        if self._l1 is not None:
            removed = max(removed, await self._l1.delete_many(self._scoped(valid)))
        await self._publish("keys", valid)
        return removed

    async def expire(self, key: str, ttl: int | None) -> bool:
        validate_key(key)
        resolve_ttl(ttl, self.default_ttl)
        found = await self._l2.expire(self._scope + key, ttl)
        if self._l1 is not None:
            await self._l1.delete(self._scope + key)  # the next read promotes it anew
        await self._publish("keys", [key])
        return found

    async def incr(self, key: str, delta: int = 1) -> int:
        validate_key(key)
        result = await self._l2.incr(self._scope + key, delta)
        if self._l1 is not None:
            await self._l1.delete(self._scope + key)
        await self._publish("keys", [key])
        return result

    async def _start_counter(self, key: str, start: int) -> int:
        validate_key(key)
        result = await self._l2._start_counter(self._scope + key, start)
        if self._l1 is not None:  # a copy left from before Redis lost the key
            await self._l1.delete(self._scope + key)
        await self._publish("keys", [key])
        return result

    async def clear(self) -> None:
        if self._scope:  # only this namespace of caches that may hold others
            await self._l2.invalidate_pattern(escape_glob(self._scope) + "*")
            if self._l1 is not None:
                await self._l1.invalidate_pattern(escape_glob(self._scope) + "*")
        elif not self._l2.prefix:
            raise ConfigurationError(
                "clear() on a GenericRedisCache without a namespace would delete every "
                "key in the database; give the cache a namespace"
            )
        else:
            await self._l2.clear()
            if self._l1 is not None:
                await self._l1.clear()
        await self._publish("clear")

    async def invalidate_pattern(self, pattern: str) -> int:
        validate_pattern(pattern)
        scoped = escape_glob(self._scope) + pattern
        removed = await self._l2.invalidate_pattern(scoped)
        if self._l1 is not None:
            removed = max(removed, await self._l1.invalidate_pattern(scoped))
        await self._publish("pattern", [pattern])
        return removed

    async def invalidate_tags(self, *tags: str) -> int:
        labels = sorted(validate_tags(tags))
        scoped = self._scoped_tags(labels)
        removed = await self._l2.invalidate_tags(*scoped)
        if self._l1 is not None:
            removed = max(removed, await self._l1.invalidate_tags(*scoped))
        await self._publish("tags", labels)
        return removed

    async def scan_keys(
        self, pattern: str = "*", *, cursor: str | int = 0, count: int = 100
    ) -> tuple[str, list[str]]:
        """A page of this cache's keys matching ``pattern``, as Redis holds them.

        Redis is the record (the memory tier holds copies of its entries), so
        this browses Redis; see :meth:`CacheInterface.scan_keys`. Raises
        :class:`InfrastructureError` when Redis cannot answer, even in fail-safe
        mode: entries written to memory alone while Redis was down are not listed.
        """
        validate_pattern(pattern)
        following, keys = await self._l2.scan_keys(
            escape_glob(self._scope) + pattern, cursor=cursor, count=count
        )
        scope = len(self._scope)
        return following, [key[scope:] for key in keys]

    def _scoped(self, keys: Iterable[str]) -> list[str]:
        scope = self._scope
        return [scope + key for key in keys]

    def _scoped_tags(self, tags: Iterable[str]) -> list[str]:
        return self._scoped(validate_tags(tags)) if tags else []

    # -- stats ---------------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        l2 = self._l2.get_stats()
        l1 = self._l1.get_stats() if self._l1 is not None else None
        hits = self._l1_hits + l2["hits"]
        misses = l2["misses"]
        return {
            "hits": hits,
            "misses": misses,
            "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
            "l1_hits": self._l1_hits,
            "l2_hits": l2["hits"],
            "sets": l2["sets"],
            "deletes": l2["deletes"],
            "evictions": l1["evictions"] if l1 else 0,
            "expirations": l1["expirations"] if l1 else 0,
            "entries": l1["entries"] if l1 else None,
            "max_size": self.memory_cache_size if l1 else None,
            "memory_usage_bytes": l1["memory_usage_bytes"] if l1 else None,
            "decode_errors": l2["decode_errors"],
            "pipelined": l2["pipelined"],
            "errors": l2["errors"],
            "errors_by_class": l2["errors_by_class"],
            "redis_status": l2["redis_status"],
            "circuit": l2["circuit"],
            "invalidations_received": self._bus.received if self._bus else 0,
            "invalidation_channel": "connected" if self._bus and self._bus.connected else "down",
            "loading": self._loading.stats(),
        }

    async def get_cache_stats(self) -> dict[str, Any]:
        redis = (await self._l2.get_cache_stats())["redis"]
        memory = (
            (await self._l1.get_cache_stats())["memory"] if self._l1 else {"status": "disabled"}
        )
        return {
            "backend": "two-tier",
            "namespace": self.namespace,
            "memory": memory,
            "redis": redis,
        }

    # -- internals -------------------------------------------------------------------

    def _l2_down(self) -> bool:
        return self._l2.status != "connected"

    def _l1_serving(self) -> bool:
        """Whether L1 may answer: while subscribed, or (fail-safe) while Redis is down.

        Not while Redis answers but nobody listens (never started, its event loop
        ended, resubscribing): invalidations may have been missed.
        """
        bus = self._bus
        assert bus is not None  # there is a bus whenever there is an L1
        if bus.state == "subscribed":
            return True
        if bus.state == "stopped":
            bus.ensure_started()  # in this loop: L1 serves again once subscribed
        return self._l2_down()

    async def _publish(self, kind: Kind, items: Iterable[str] = ()) -> None:
        if self._bus is None:
            return
        # Through L2's gate and breaker, like every command: a burst of writes must
        # not exhaust the pool with PUBLISHes. A failure is counted (or raised when
        # strict); others flush on their own loss if Redis is really gone.
        # On a Cluster the bus picks a node itself, through the client: that holds a slot.
        await self._l2._run(
            "publish",
            self._published(self._bus, kind, list(items)),
            pipelined=not self._l2.is_cluster,
        )

    def _publish_pipelined(self, channel: str, message: bytes) -> Awaitable[object]:
        return self._l2._tier.commands.call("PUBLISH", channel, message)

    @staticmethod
    async def _published(bus: InvalidationBus, kind: Kind, items: list[str]) -> None:
        with map_redis_errors("PUBLISH"):
            await bus.publish(kind, items)

    def _begin(self, keys: list[str]) -> None:
        for key in keys:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def _end(self, keys: list[str]) -> builtins.set[str]:
        """Finish waiting on Redis for ``keys``; returns those invalidated meanwhile."""
        stale = self._stale.intersection(keys)
        for key in keys:
            left = self._in_flight[key] - 1
            if left:
                self._in_flight[key] = left
            else:
                del self._in_flight[key]
                self._stale.discard(key)
        return stale

    async def _apply_remote(self, kind: str, items: list[str]) -> None:
        if kind == "keys":
            self._stale.update(key for key in items if key in self._in_flight)
        else:  # a pattern, tags or clear may cover any key in flight
            self._stale.update(self._in_flight)
        l1 = self._l1
        if l1 is None:
            return
        if kind == "keys":
            await l1.delete_many(self._scoped(items))
        elif kind == "pattern":
            for pattern in items:
                await l1.invalidate_pattern(escape_glob(self._scope) + pattern)
        elif kind == "tags":
            await l1.invalidate_tags(*self._scoped(items))
        elif self._scope:
            await l1.invalidate_pattern(escape_glob(self._scope) + "*")
        else:
            await l1.clear()

    async def _flush_l1(self) -> None:
        self._stale.update(self._in_flight)
        if self._l1 is not None:
            await self._l1.clear()

    async def _acquire_lease(self, key: str, token: str, seconds: float) -> bool | None:
        return await self._l2._acquire_lease(self._scope + key, token, seconds)

    async def _release_lease(self, key: str, token: str) -> None:
        await self._l2._release_lease(self._scope + key, token)

    async def _recheck(self, key: str) -> Any:
        # Uncounted, as the interface asks: the caller's get already counted a miss.
        scoped = self._scope + key
        if self._l1 is not None and self._l1_serving():
            value = await self._l1._recheck(scoped)
            if value is not MISSING:
                return value
        return await self._l2._recheck(scoped)


def _alias(name: str, value: Any, alias: str, alias_value: Any, default: Any) -> Any:
    """Accept a seed parameter name or its alias; refuse two different values."""
    if alias_value is None:
        return value
    if value != default and value != alias_value:
        raise ConfigurationError(
            f"{name}={value!r} and {alias}={alias_value!r} disagree; pass only one",
            {name: repr(value), alias: repr(alias_value)},
        )
    return alias_value


class CacheManager(GenericRedisCache):
    """The two-tier behaviour, composed from a memory cache and a Redis cache you built.

    ``local_cache`` holds entries as ``f"{namespace}:{key}"`` (as ``key`` with no
    namespace), and so does ``redis_cache`` under its own prefix; keys may therefore
    be at most ``1024 - len(namespace) - 1`` characters. The manager owns both
    caches from then on: :meth:`aclose` closes them.

    ``get(key, fetch)`` is cache-aside: on a miss in both tiers it awaits
    ``fetch()``, stores the result in both (once, however many callers wait) and
    returns it. A second argument that is not callable is the default, as for every
    other cache.
    """

    def __init__(
        self, local_cache: InMemoryCache, redis_cache: RedisCache, namespace: str = ""
    ) -> None:
        CacheInterface.__init__(self)
        if not isinstance(local_cache, InMemoryCache) or not isinstance(redis_cache, RedisCache):
            raise ConfigurationError(
                "CacheManager(local_cache, redis_cache) needs an InMemoryCache and a RedisCache"
            )
        if not isinstance(namespace, str) or "\x00" in namespace:
            raise ConfigurationError("namespace must be a str without NUL characters")
        self.default_ttl = redis_cache.default_ttl
        self.codec = redis_cache.codec
        self.memory_cache_size = local_cache.max_size
        self.namespace = namespace
        # The caller built (and monitors) both caches; this reports the Redis side.
        self.performance_monitor = redis_cache.performance_monitor
        self._stamp_clock = redis_cache._stamp_clock
        self._l2 = redis_cache
        self._wire(local_cache, scope=f"{namespace}:" if namespace else "")

    def __repr__(self) -> str:
        return f"CacheManager(namespace={self.namespace!r})"

    async def get(self, key: str, fetch: Any = None) -> Any:
        """Return the value; on a miss, ``fetch()``'s result (stored) if callable."""
        if callable(fetch):
            return await self.get_or_set(key, fetch)
        return await super().get(key, fetch)
