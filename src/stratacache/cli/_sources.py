"""Where ``status``, ``stats``, ``keys`` and ``invalidate`` get their answers.

* :class:`LocalSource` — the cache the settings describe, built and connected
  here (strict: an unreachable Redis is an error, not a silent memory fallback).
  Only a cache with Redis behind it is shared with the services, so only then
  can keys be listed or invalidated from here.
* :class:`ServerSource` — a running service's management API (``--server``): the
  only way to see a memory-only cache, which lives inside its service's process.

Both return plain dicts, printed as tables or as ``--json``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from ..caches._ai import AIResponseCache
from ..caches._interface import MAX_SCAN_COUNT, SCAN_DONE, CacheInterface
from ..caches._memory import InMemoryCache
from ..caches._tiered import GenericRedisCache
from ..config import CacheFactory, CacheSettings, NullCache, redact_url
from ..config._redact import redact_text
from ._common import CLIError, ExitCode, describe_exception, fail

__all__ = [
    "LocalSource",
    "ServerSource",
    "backend_of",
    "ping_latency",
    "redis_facts",
]

DEFAULT_PREFIX = "/internal/cache"
"""Where ``stratacache.web`` mounts the management API (not imported from there: the
``web`` extra, FastAPI, is not needed to run the CLI)."""
KEY_COUNT_CAP = 100_000
"""``stats`` counts a namespace's keys up to this many (SCAN pages of 1,000)."""
_HTTP_TIMEOUT = 10.0

Scan = Callable[[str, int], Awaitable[tuple[str, list[str]]]]
"""``scan(cursor, count) -> (next cursor, keys)``: one page of a key listing."""


def backend_of(cache: CacheInterface) -> str:
    if isinstance(cache, NullCache):
        return "disabled"
    if isinstance(cache, GenericRedisCache):
        return "ai" if isinstance(cache, AIResponseCache) else "two-tier"
    if isinstance(cache, InMemoryCache):
        return "memory"
    return type(cache).__name__


async def ping_latency(client: Any, pings: int = 5) -> dict[str, float]:
    """Round trips of ``PING``: p50 and max, in milliseconds."""
    times = []
    for _ in range(pings):
        started = time.perf_counter()
        await client.ping()
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(times), 3), "max_ms": round(max(times), 3)}


async def redis_facts(client: Any) -> dict[str, Any]:
    """What ``INFO`` says that matters to a cache (one round trip)."""
    info: dict[str, Any] = await client.info()
    if info and all(isinstance(value, dict) for value in info.values()):
        info = next(iter(info.values()))  # a cluster answers per node: take the first
    hits, misses = _int(info.get("keyspace_hits")), _int(info.get("keyspace_misses"))
    return {
        "version": str(info.get("valkey_version") or info.get("redis_version") or "unknown"),
        "server": "valkey" if info.get("server_name") == "valkey" else "redis",
        "mode": str(info.get("redis_mode", "standalone")),
        "used_memory_bytes": _int(info.get("used_memory")),
        # None, not 0, when INFO hides it (some providers do): 0 means "no limit".
        "maxmemory_bytes": _int(info["maxmemory"]) if "maxmemory" in info else None,
        "maxmemory_policy": info.get("maxmemory_policy"),
        "connected_clients": _int(info.get("connected_clients")),
        "ops_per_sec": _int(info.get("instantaneous_ops_per_sec")),
        "keyspace_hits": hits,
        "keyspace_misses": misses,
        "keyspace_hit_rate": hits / (hits + misses) if hits + misses else None,
        "evicted_keys": _int(info.get("evicted_keys")),
        "expired_keys": _int(info.get("expired_keys")),
    }


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class LocalSource:
    """The configured cache, connected from this process."""

    kind = "local"

    def __init__(self, settings: CacheSettings, cache: CacheInterface) -> None:
        self.settings = settings
        self.cache = cache
        self.backend = backend_of(cache)

    @classmethod
    async def open(cls, settings: CacheSettings) -> LocalSource:
        """Build and connect the cache; ``InfrastructureError`` if Redis is down.

        Strict on purpose: the factory's usual fallback to a memory cache would
        have this process report on (or invalidate) a cache no service uses.
        """
        config = settings.cache_config()
        config["fail_on_connection_error"] = True
        return cls(settings, await CacheFactory().from_preset(settings.cache_preset, **config))

    async def aclose(self) -> None:
        await self.cache.aclose()

    @property
    def shared(self) -> bool:
        """Whether the cache is Redis-backed, i.e. the one the services see."""
        return isinstance(self.cache, GenericRedisCache)

    @property
    def client(self) -> Any:
        return self.cache.client if isinstance(self.cache, GenericRedisCache) else None

    def describe(self) -> dict[str, Any]:
        url = self.settings.resolved_redis_url
        return {
            "source": self.kind,
            "preset": self.settings.cache_preset,
            "backend": self.backend,
            "namespace": getattr(self.cache, "namespace", ""),
            "redis_url": redact_url(url) if url else None,
            "default_ttl": self.cache.default_ttl,
        }

    def require_shared(self, action: str) -> None:
        if self.shared:
            return
        if self.backend == "disabled":
            reason = "caching is disabled (preset 'disabled'): there is nothing to " + action
        else:
            reason = (
                f"no Redis is configured, so the cache lives inside each service's "
                f"process and this command cannot {action} it"
            )
        fail(
            reason,
            hint="point --server at the service (e.g. --server http://127.0.0.1:8000), "
            "or set CACHE_REDIS_URL / --redis-url to use the shared Redis",
        )

    async def status(self) -> dict[str, Any]:
        report = self.describe()
        stats = await self.cache.get_cache_stats()
        memory = stats.get("memory", {})
        report["memory"] = {
            "status": memory.get("status", "disabled"),
            "max_size": memory.get("max_size"),
        }
        if self.shared:
            report["redis"] = {
                "status": stats.get("redis", {}).get("status", "error"),
                **(await self._server("PING", ping_latency)),
                **(await self._server("INFO", redis_facts)),
            }
        else:
            report["redis"] = {"status": "disabled"}
            report["note"] = self._unshared_note()
        return report

    async def stats(self) -> dict[str, Any]:
        report = self.describe()
        if not self.shared:
            report["note"] = self._unshared_note()
            return report
        report["redis"] = await self._server("INFO", redis_facts)
        count, complete = await self._count_keys()
        report["namespace_keys"] = {"count": count, "complete": complete}
        return report

    async def _server(
        self, command: str, ask: Callable[[Any], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """What ``ask(client)`` reports; a failure is reported, not raised.

        The cache connected a moment ago, so a failure here is most often a
        command this user may not run (Redis ACLs): the rest is still worth showing.
        """
        try:
            return await ask(self.client)
        except Exception as exc:  # redis-py's errors are not CacheErrors
            text, url = describe_exception(exc), self.settings.resolved_redis_url
            if url:  # always set for a shared cache; redact_text("", ...) would garble
                text = redact_text(text, url)
            return {f"{command.lower()}_error": f"{command} failed: {text}"}

    async def _count_keys(self) -> tuple[int, bool]:
        """(keys in the namespace, whether that is all of them): stops at KEY_COUNT_CAP."""
        keys, more = await _page_keys(self._scan("*"), KEY_COUNT_CAP)
        return len(keys), not more

    def _unshared_note(self) -> str:
        """Why there is nothing shared to report, and where the numbers are instead."""
        if self.backend == "disabled":
            return "Caching is disabled (preset 'disabled'): nothing is cached anywhere."
        return (
            "No Redis is configured: each service keeps its own memory cache, which this "
            "process cannot see. Use --server URL to ask a running service."
        )

    def _scan(self, pattern: str) -> Scan:
        return lambda cursor, count: self.cache.scan_keys(pattern, cursor=cursor, count=count)

    async def keys(self, pattern: str, limit: int) -> dict[str, Any]:
        self.require_shared("list the keys of")
        keys, truncated = await _page_keys(self._scan(pattern), limit)
        return {"source": self.kind, "pattern": pattern, "keys": keys, "truncated": truncated}

    async def invalidate(self, pattern: str) -> dict[str, Any]:
        self.require_shared("invalidate")
        removed = await self.cache.invalidate_pattern(pattern)
        return {
            "source": self.kind,
            "pattern": pattern,
            "namespace": getattr(self.cache, "namespace", ""),
            "keys_invalidated": removed,
        }


async def _page_keys(scan: Scan, limit: int) -> tuple[list[str], bool]:
    """Follow scan cursors until ``limit`` keys or the end: (keys, more may remain).

    "More may remain" is true when the scan stopped early, even if the pages left
    would have been empty: finding out would mean scanning on, maybe to the end of
    a large keyspace.
    """
    keys: list[str] = []
    cursor: str = SCAN_DONE  # "0" starts a scan as well as ending one
    while True:
        cursor, found = await scan(cursor, min(MAX_SCAN_COUNT, max(limit - len(keys), 1)))
        keys.extend(found)
        if len(keys) >= limit:
            return keys[:limit], len(keys) > limit or cursor != SCAN_DONE
        if cursor == SCAN_DONE:
            return keys, False


class ServerSource:
    """A running service's management API, over HTTP."""

    kind = "server"

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.base = management_base(url)
        self.api_key = api_key or None

    async def aclose(self) -> None:
        return None

    async def status(self) -> dict[str, Any]:
        report = await self._call("GET", "/status")
        return {"source": self.kind, "server": self.base, **report}

    async def stats(self) -> dict[str, Any]:
        metrics = await self._call("GET", "/metrics")
        status = await self._call("GET", "/status")
        return {
            "source": self.kind,
            "server": self.base,
            "preset": status.get("preset"),
            "backend": status.get("backend"),
            "performance": status.get("performance", {}),
            "memory": status.get("memory", {}),
            "redis": status.get("redis", {}),
            "metrics": metrics,
        }

    async def keys(self, pattern: str, limit: int) -> dict[str, Any]:
        async def scan(cursor: str, count: int) -> tuple[str, list[str]]:
            page = await self._call(
                "GET", "/keys", {"pattern": pattern, "cursor": cursor, "limit": count}
            )
            following = page.get("next_cursor")
            return (SCAN_DONE if following is None else str(following)), list(page["keys"])

        keys, truncated = await _page_keys(scan, limit)
        return {
            "source": self.kind,
            "server": self.base,
            "pattern": pattern,
            "keys": keys,
            "truncated": truncated,
        }

    async def invalidate(self, pattern: str) -> dict[str, Any]:
        answer = await self._call("POST", "/invalidate", {"pattern": pattern})
        return {
            "source": self.kind,
            "server": self.base,
            "pattern": pattern,
            "keys_invalidated": answer.get("keys_invalidated"),
        }

    async def _call(
        self, method: str, path: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._call_sync, method, path, params)

    def _call_sync(self, method: str, path: str, params: dict[str, Any] | None) -> dict[str, Any]:
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, self.base) from None
        except OSError as exc:  # refused, reset, timed out (URLError is one)
            fail(
                f"cannot reach the service at {self.base}: {getattr(exc, 'reason', None) or exc}",
                ExitCode.UNREACHABLE,
                "is the service running? (`make run` starts the demo on 127.0.0.1:8000)",
            )
        except http.client.HTTPException as exc:  # BadStatusLine, IncompleteRead ...
            fail(
                f"{self.base} did not answer HTTP ({describe_exception(exc)})",
                hint="is that the service's port? (e.g. --server http://127.0.0.1:8000)",
            )
        try:
            data = json.loads(body)
        except ValueError:
            fail(f"{url} did not answer JSON: is it a stratacache management API?")
        if not isinstance(data, dict):
            fail(f"{url} answered unexpected JSON: is it a stratacache management API?")
        return data


def management_base(url: str) -> str:
    """``http://host:port`` -> ``http://host:port/internal/cache``; a path is kept as given."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        fail(
            f"--server must be an http:// or https:// URL, got {url!r:.100}",
            hint="e.g. --server http://127.0.0.1:8000",
        )
    path = parts.path.rstrip("/") or DEFAULT_PREFIX
    return f"{parts.scheme}://{parts.netloc}{path}"


def _http_error(exc: urllib.error.HTTPError, base: str) -> CLIError:
    try:
        detail = json.loads(exc.read()).get("detail")
    except (ValueError, AttributeError, OSError, http.client.HTTPException):
        detail = None  # not FastAPI's error body: the status code alone will do
    if isinstance(detail, dict):
        message = str(detail.get("message", ""))
    elif isinstance(detail, list):  # 422: FastAPI's list of problems
        message = "; ".join(
            str(item.get("msg", item) if isinstance(item, dict) else item) for item in detail
        )
    else:
        message = ""
    code = exc.code
    if code == 401:
        return CLIError(
            f"the service refused the API key ({message or 'HTTP 401'})",
            ExitCode.USAGE,
            "pass --api-key KEY or set API_KEY (the demo prints its key when it starts)",
        )
    if code == 404:
        return CLIError(
            f"no management API at {base} (HTTP 404)",
            ExitCode.USAGE,
            f"give the service's base URL, or the full prefix if it is not {DEFAULT_PREFIX}",
        )
    if code in (403, 422):
        return CLIError(message or f"HTTP {code}", ExitCode.USAGE)
    if code == 503:
        return CLIError(
            f"the service's cache cannot answer: {message or 'HTTP 503'}", ExitCode.UNREACHABLE
        )
    return CLIError(f"the service answered HTTP {code}: {message}", ExitCode.FINDINGS)
