"""How the catalog caches: which cache it builds, and what each read says about itself.

* :func:`build_cache` — memory only by default; memory in front of Redis
  (:class:`~stratacache.GenericRedisCache`) when ``CACHE_REDIS_URL`` or ``REDIS_URL``
  is set; nothing at all with ``CACHE_PRESET=disabled`` (a
  :class:`~stratacache.config.NullCache`, what the load test compares against).
* :class:`ReadThrough` — ``get_or_set`` with tags, plus an :class:`Outcome` per read
  that the app turns into ``X-Cache`` / ``X-Cache-Tier`` / ``Server-Timing`` headers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stratacache import CacheInterface, GenericRedisCache, InMemoryCache, NullCache, RedisCache
from stratacache.config import load_settings

__all__ = ["MEMORY_ENTRIES", "NAMESPACE", "Outcome", "ReadThrough", "build_cache"]

NAMESPACE = "catalog"
MEMORY_ENTRIES = 20_000
"""Room for every product and every list page the demo serves, with space to spare."""


def build_cache(environ: Mapping[str, str] | None = None) -> CacheInterface:
    """The cache the settings describe (``os.environ``, or only ``environ`` if given).

    ``CACHE_PRESET`` picks the TTL (``disabled``: no cache); ``CACHE_REDIS_URL`` or
    ``REDIS_URL`` adds Redis; ``CACHE_CUSTOM_CONFIG`` may set ``default_ttl``,
    ``namespace`` and ``memory_cache_size``.

    The cache is built here and connected by the app's lifespan. A two-tier cache
    whose Redis is down still starts: it serves from memory and reattaches by
    itself when Redis is back (stratacache is fail-safe by default).
    """
    settings = load_settings(environ)
    preset = settings.preset
    custom = settings.custom_config  # CACHE_CUSTOM_CONFIG may adjust these three
    ttl = custom.get("default_ttl", preset.default_ttl)
    namespace = custom.get("namespace", NAMESPACE)
    entries = custom.get("memory_cache_size", MEMORY_ENTRIES)
    if not preset.enabled:
        return NullCache(ttl, namespace=namespace)
    url = settings.resolved_redis_url
    if url is None:
        return InMemoryCache(entries, ttl, namespace=namespace)
    return GenericRedisCache(url, default_ttl=ttl, memory_cache_size=entries, namespace=namespace)


def describe_cache(cache: CacheInterface) -> str:
    if isinstance(cache, NullCache):
        return "disabled (CACHE_PRESET=disabled: every read goes to the database)"
    if isinstance(cache, GenericRedisCache):
        return "two-tier: memory in front of Redis"
    if isinstance(cache, InMemoryCache):
        return "memory only (set REDIS_URL for memory in front of Redis)"
    return type(cache).__name__


@dataclass(frozen=True)
class Outcome:
    """What one read did.

    ``tier``: ``memory`` (served from process memory), ``redis`` (from Redis, now
    copied into memory) or ``source`` (the database was queried — by this request,
    or by a concurrent one it waited for: ``shared``).
    """

    hit: bool
    tier: str
    cache_ms: float
    source_ms: float | None = None
    shared: bool = False

    def headers(self) -> dict[str, str]:
        timing = f'cache;dur={self.cache_ms:.3f};desc="{"HIT" if self.hit else "MISS"} {self.tier}"'
        if self.source_ms is not None:
            timing += f", db;dur={self.source_ms:.3f}"
        headers = {
            "X-Cache": "HIT" if self.hit else "MISS",
            "X-Cache-Tier": self.tier,
            "Server-Timing": timing,
        }
        if self.shared:
            headers["X-Cache-Shared-Load"] = "1"
        return headers


class ReadThrough:
    """``cache.get_or_set(key, loader, tags=...)``, reporting an :class:`Outcome`.

    The cache does not say which tier answered a given call (its counters are
    shared by every concurrent request), so the outcome is observed from outside:

    * the loader ran: a miss, served from the source;
    * another request's loader for the same key finished meanwhile: a miss whose
      load was shared (single-flight: one query for many concurrent requests);
    * the call finished without ever waiting: a memory hit (the memory tier
      answers synchronously; Redis, the database and single-flight waits all
      suspend the request);
    * otherwise, with Redis behind the cache: a Redis hit.
    """

    _MAX_TRACKED = 50_000

    def __init__(self, cache: CacheInterface) -> None:
        self.cache = cache
        self._remote = isinstance(cache, (GenericRedisCache, RedisCache))
        self._loads: OrderedDict[str, int] = OrderedDict()  # key -> loads completed

    async def get(
        self, key: str, loader: Callable[[], Awaitable[Any]], *, tags: Iterable[str] = ()
    ) -> tuple[Any, Outcome]:
        source_ms: float | None = None

        async def load() -> Any:
            nonlocal source_ms
            started = time.perf_counter()
            try:
                return await loader()
            finally:
                source_ms = (time.perf_counter() - started) * 1000
                self._loads[key] = self._loads.pop(key, 0) + 1
                if len(self._loads) > self._MAX_TRACKED:
                    self._loads.popitem(last=False)

        loads_before = self._loads.get(key, 0)
        started = time.perf_counter()
        call = _Watch(self.cache.get_or_set(key, load, tags=list(tags)))
        value = await call
        total_ms = (time.perf_counter() - started) * 1000
        if source_ms is not None:
            outcome = Outcome(False, "source", max(total_ms - source_ms, 0.0), source_ms)
        elif self._loads.get(key, 0) != loads_before:
            outcome = Outcome(False, "source", total_ms, shared=True)
        elif not call.waited or not self._remote:
            outcome = Outcome(True, "memory", total_ms)
        else:
            outcome = Outcome(True, "redis", total_ms)
        return value, outcome


class _Watch:
    """Await a coroutine, recording whether it ever suspended (``waited``).

    A plain ``await coroutine``, except that the first step is taken by hand: if
    the coroutine finishes there, it never waited for anything. Later steps are
    delegated exactly as ``yield from`` would (values, exceptions and ``close``).
    """

    __slots__ = ("_coroutine", "waited")

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._coroutine = coroutine
        self.waited = False

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self._coroutine.__await__()
        try:
            signal = steps.send(None)
        except StopIteration as done:
            return done.value
        self.waited = True
        while True:
            try:
                sent = yield signal
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # cancellation included: the coroutine decides
                try:
                    signal = steps.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    signal = steps.send(sent)
                except StopIteration as done:
                    return done.value
