"""``create_app``: a ready FastAPI app serving the management API and Prometheus metrics.

* ``{prefix}/...`` — the management API (:mod:`._router`), dashboard included.
* ``/metrics`` — Prometheus text exposition from a registry of the app's own (never
  the global one): :class:`~stratacache.monitoring.StrataCacheCollector` over the
  cache's performance monitor when it has one, else the cache's own counters as
  metrics of the same names; plus ``stratacache_redis_up`` for caches with Redis.
  Authentication as for optional endpoints: scrapers need no key, a wrong key is
  refused.

The app owns its cache's lifecycle: its lifespan connects the cache on startup
(building it from the environment with :meth:`CacheFactory.from_env` when none was
given) and closes it on shutdown. Every answer — 404s and 405s included — carries
``Cache-Control: no-store``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..caches._interface import CacheInterface
from ..errors import ConfigurationError
from ._auth import API_KEY_HEADER, ApiKeyAuth
from ._router import (
    _ERRORS,
    API_KEY_SCHEME,
    BEARER_SCHEME,
    DEFAULT_PREFIX,
    NO_STORE,
    OPTIONAL_SECURITY,
    _route_class,
    build_router,
    resolve_api_keys,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["create_app"]

logger = logging.getLogger("stratacache")

_NOT_STARTED = (
    "The cache is not started: the app's lifespan has not run. Servers such as "
    "uvicorn run it; in tests, pass cache= to create_app() or run the lifespan."
)


def create_app(
    cache: CacheInterface | None = None,
    *,
    api_keys: Iterable[str] | None = None,
    dev_mode: bool = False,
    prefix: str = DEFAULT_PREFIX,
    title: str = "stratacache management API",
) -> FastAPI:
    """A FastAPI app managing ``cache`` (see the module docstring).

    Args:
        cache: the cache to serve; ``None`` builds one from the environment
            (``CACHE_PRESET``, ``CACHE_REDIS_URL`` ...) when the app starts.
            Either way the app connects it on startup and closes it on shutdown.
        api_keys: accepted API keys; ``None`` reads ``API_KEY`` and
            ``ADDITIONAL_API_KEYS`` from the environment; ``[]``: none.
        dev_mode: with no key configured, open the endpoints that need one.
        prefix: where the management API lives.
        title: the OpenAPI title.

    Raises :class:`ConfigurationError` when the environment's settings are invalid.
    """
    if cache is not None and not isinstance(cache, CacheInterface):
        raise ConfigurationError(f"create_app needs a CacheInterface, not {type(cache).__name__}")
    preset: str | None = None
    if cache is None:
        from ..config import load_settings

        preset = load_settings().cache_preset  # checks the environment now, not at startup
    holder = _Holder(cache, preset)
    auth = ApiKeyAuth(resolve_api_keys(api_keys), dev_mode=dev_mode)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await holder.start()
        try:
            yield
        finally:
            await holder.stop()

    app = FastAPI(title=title, lifespan=lifespan)
    app.add_middleware(_NoStoreMiddleware)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(
        build_router(holder.current, auth=auth, prefix=prefix, preset=lambda: holder.preset)
    )
    metrics = APIRouter(tags=["metrics"])
    metrics.add_api_route(
        "/metrics",
        holder.prometheus,
        methods=["GET"],
        route_class_override=_route_class(auth.optional),
        response_class=Response,
        responses={
            200: {
                "content": {"text/plain": {"schema": {"type": "string"}}},
                "description": "Prometheus text exposition",
            },
            **_ERRORS,
        },
        summary="Prometheus metrics",
        dependencies=[
            Security(
                APIKeyHeader(name=API_KEY_HEADER, scheme_name=API_KEY_SCHEME, auto_error=False)
            ),
            Security(HTTPBearer(scheme_name=BEARER_SCHEME, auto_error=False)),
        ],
        openapi_extra=OPTIONAL_SECURITY,
    )
    app.include_router(metrics)

    async def home() -> RedirectResponse:
        return RedirectResponse(f"{prefix}/dashboard")

    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)
    app.state.stratacache = holder
    return app


class _Holder:
    """The app's cache: given, or built on startup; and its Prometheus registry."""

    def __init__(self, cache: CacheInterface | None, preset: str | None) -> None:
        self.cache = cache
        self.preset = preset
        self._build = cache is None
        self._registry: Any = None
        self._registry_for: CacheInterface | None = None

    def current(self) -> CacheInterface:
        if self.cache is None:
            raise HTTPException(503, detail={"message": _NOT_STARTED})
        return self.cache

    async def start(self) -> None:
        if self._build:
            from ..config import CacheFactory

            self.cache = await CacheFactory().from_env()
            logger.info("stratacache: management app serving %r", self.cache)
        elif self.cache is not None:
            await self.cache.connect()

    async def stop(self) -> None:
        cache = self.cache
        if cache is None:
            return
        if self._build:
            self.cache = None
        await cache.aclose()

    async def prometheus(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(
            generate_latest(self._registry_of(self.current())), media_type=CONTENT_TYPE_LATEST
        )

    def _registry_of(self, cache: CacheInterface) -> Any:
        if self._registry is None or self._registry_for is not cache:
            from prometheus_client import CollectorRegistry

            registry = CollectorRegistry()
            monitored = _monitored(cache)
            if monitored:
                from ..monitoring import StrataCacheCollector

                StrataCacheCollector(cache, registry=registry)
            registry.register(_CacheCollector(cache, counters=not monitored))
            self._registry, self._registry_for = registry, cache
        return self._registry


def _monitored(cache: CacheInterface) -> bool:
    try:
        from ..monitoring import CachePerformanceMonitor
    except ImportError:  # pragma: no cover - the package ships with stratacache
        return False
    return isinstance(getattr(cache, "performance_monitor", None), CachePerformanceMonitor)


class _CacheCollector:
    """Metrics read from ``cache.get_stats()`` at scrape time.

    Always ``stratacache_redis_up`` (1 connected, 0 not) for caches with Redis; with
    ``counters``, also hits, misses, evictions, entries and memory, under the names
    the monitor's collector uses (tier ``all``), for caches without a monitor.
    """

    def __init__(self, cache: CacheInterface, *, counters: bool) -> None:
        self._cache = cache
        self._counters = counters

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            stats: Mapping[str, Any] = self._cache.get_stats()
        except Exception as exc:
            logger.warning(
                "stratacache: reading the cache's counters for Prometheus failed: %r", exc
            )
            return
        label = str(getattr(self._cache, "namespace", "") or "default")
        status = stats.get("redis_status")
        if isinstance(status, str):
            up = GaugeMetricFamily(
                "stratacache_redis_up", "1 while Redis answers, else 0.", labels=["cache"]
            )
            up.add_metric([label], 1.0 if status == "connected" else 0.0)
            yield up
        if not self._counters:
            return
        families = [
            ("hits", CounterMetricFamily, "stratacache_cache_hits", "Lookups that hit."),
            ("misses", CounterMetricFamily, "stratacache_cache_misses", "Lookups that missed."),
            ("evictions", CounterMetricFamily, "stratacache_evictions", "Entries evicted."),
            ("entries", GaugeMetricFamily, "stratacache_entries", "Cached entries."),
            (
                "memory_usage_bytes",
                GaugeMetricFamily,
                "stratacache_memory_bytes",
                "Estimated memory held by cached entries.",
            ),
        ]
        for field, kind, name, doc in families:
            value = stats.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                family = kind(name, doc, labels=["cache", "tier"])
                family.add_metric([label, "all"], float(value))
                yield family


class _NoStoreMiddleware:
    """Stamp ``Cache-Control: no-store`` on every answer of the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() not in (b"cache-control", b"x-content-type-options")
                ]
                headers.append((b"cache-control", NO_STORE.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405 ... outside the management routes, in the API's error shape."""
    assert isinstance(exc, StarletteHTTPException)
    detail: Any = exc.detail
    if not isinstance(detail, dict):
        detail = {"message": str(detail)}
    return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)
