"""``management_router``: the cache's management HTTP API, mountable in any FastAPI app.

=====================================  ========  ==========================================
endpoint (under the prefix)            auth      answers
=====================================  ========  ==========================================
``GET /status``                        optional  redis / memory status, performance, preset
``GET /metrics``                       optional  the monitor's stats (or the cache's counters)
``POST /invalidate?pattern=``          required  ``{"message", "pattern", "keys_invalidated"}``
``GET /invalidation-stats``            optional  invalidation frequency
``GET /invalidation-recommendations``  optional  ``{"recommendations": [...]}``
``GET /keys?pattern=&cursor=&limit=``  required  a page of keys (never values), next cursor
``POST /tags/invalidate``              required  ``{"tags": [...]}`` in, keys removed out
``DELETE /keys/{key}``                 required  one key invalidated
``GET /dashboard``                     optional  the live HTML dashboard
``GET /health``                        none      200 ok / degraded, 503 when the cache is closed
=====================================  ========  ==========================================

See :mod:`._auth` for what "required" and "optional" mean. Names that may identify
tenants or users — keys per tenant in ``/status``, invalidation patterns in the
monitor's reports — are shown only to callers with a valid key (or to everyone in
``dev_mode`` without keys); others get the same fields with counts only. Every
answer, errors included, carries ``Cache-Control: no-store``; no answer carries a
cached value or a credential. Errors have one shape: ``{"detail": {"message": ...}}``, except 422,
which keeps FastAPI's list of ``{"loc", "msg", "type"}`` (without echoing the input).
Library errors map to statuses here: ``ValidationError`` 422,
``InfrastructureError`` 503 (Redis cannot answer), ``NotImplementedError`` 501 (a
cache that cannot list keys); anything else is logged and answered 500.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.convertors import CONVERTOR_TYPES, PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.responses import Response

from .._keys import MAX_KEY_LENGTH
from ..caches._interface import MAX_CURSOR_LENGTH, MAX_SCAN_COUNT, SCAN_DONE, CacheInterface
from ..errors import ConfigurationError, InfrastructureError, ValidationError
from ._auth import API_KEY_HEADER, ApiKeyAuth
from ._dashboard import render_dashboard
from ._models import (
    CONTROL_FREE,
    MAX_PATTERN_CHARS,
    ErrorResponse,
    HealthResponse,
    InvalidateResponse,
    InvalidationStatsResponse,
    KeyDeleteResponse,
    KeysPage,
    MemoryStatus,
    MetricsResponse,
    PerformanceSummary,
    RecommendationsResponse,
    RedisStatus,
    StatusResponse,
    TagsInvalidateRequest,
    TagsInvalidateResponse,
    TenantKeys,
)

__all__ = ["DEFAULT_PREFIX", "NO_STORE", "harden", "management_router"]

logger = logging.getLogger("stratacache")

DEFAULT_PREFIX: Final = "/internal/cache"
NO_STORE: Final = "no-store"
_REDIS_STATES = frozenset({"connected", "disconnected", "disabled", "error"})
_MEMORY_STATES = frozenset({"active", "disabled", "closed"})
_NO_KEY = r"^[^\x00]*$"
API_KEY_SCHEME: Final = "stratacacheApiKey"
BEARER_SCHEME: Final = "stratacacheBearer"
OPTIONAL_SECURITY: Final[dict[str, Any]] = {"security": [{}]}
"""Appended to the documented schemes: an empty requirement makes the key optional."""

CacheProvider = Callable[[], CacheInterface]
Check = Callable[[Request], Awaitable[None]]

Pattern = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_PATTERN_CHARS,
        pattern=CONTROL_FREE,
        description=f"a Redis glob (* ? [abc] \\x), 1 to {MAX_PATTERN_CHARS} characters, "
        "no control characters",
        examples=["user:*"],
    ),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "missing, wrong or several API keys"},
    503: {"model": ErrorResponse, "description": "the cache's backend cannot answer"},
}
_REQUIRED_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    403: {"model": ErrorResponse, "description": "no API key is configured"},
}


def management_router(
    cache: CacheInterface,
    *,
    api_keys: Iterable[str] | None = None,
    dev_mode: bool = False,
    monitor: Any = None,
    prefix: str = DEFAULT_PREFIX,
    preset: str | None = None,
) -> APIRouter:
    """The management API over ``cache``, as a router to ``include_router`` in your app.

    Args:
        cache: the cache to manage.
        api_keys: the accepted API keys; ``None`` reads ``API_KEY`` and
            ``ADDITIONAL_API_KEYS`` from the environment now; ``[]`` means none
            (required endpoints then answer 403 unless ``dev_mode``).
        dev_mode: with no key configured, open the required endpoints anyway.
            For a developer's machine only.
        monitor: a :class:`~stratacache.monitoring.CachePerformanceMonitor` to
            report; default: ``cache.performance_monitor`` when the cache has one,
            else the cache's own counters.
        prefix: where the endpoints live.
        preset: the preset name ``/status`` reports.
    """
    if not isinstance(cache, CacheInterface):
        raise ConfigurationError(
            f"management_router needs a CacheInterface, not {type(cache).__name__}"
        )
    return build_router(
        lambda: cache,
        auth=ApiKeyAuth(resolve_api_keys(api_keys), dev_mode=dev_mode),
        monitor=monitor,
        prefix=prefix,
        preset=lambda: preset,
    )


def resolve_api_keys(api_keys: Iterable[str] | None) -> list[str]:
    """``api_keys``, or ``API_KEY`` + ``ADDITIONAL_API_KEYS`` from the environment."""
    if api_keys is None:
        from ..config import load_settings

        return load_settings().all_api_keys()
    if isinstance(api_keys, (str, bytes)):
        raise ConfigurationError(
            "api_keys must be a list of keys such as ['key-1'], not a single string"
        )
    return list(api_keys)


def build_router(
    cache: CacheProvider,
    *,
    auth: ApiKeyAuth,
    monitor: Any = None,
    prefix: str = DEFAULT_PREFIX,
    preset: Callable[[], str | None] = lambda: None,
) -> APIRouter:
    """The router over whatever cache ``cache()`` returns when a request comes.

    ``cache()`` may raise ``HTTPException(503)`` while the cache is not ready.
    """
    endpoints = _Endpoints(cache, auth, monitor, preset)
    router = APIRouter(prefix=prefix, tags=["cache management"])
    # The schemes document how to authenticate (Swagger's "Authorize"); the check
    # itself reads the raw headers in ApiKeyAuth, before any parameter is parsed.
    documented = [
        Security(APIKeyHeader(name=API_KEY_HEADER, scheme_name=API_KEY_SCHEME, auto_error=False)),
        Security(HTTPBearer(scheme_name=BEARER_SCHEME, auto_error=False)),
    ]
    required = _route_class(auth.require)
    optional = _route_class(auth.optional)
    public = _route_class(None)

    def add(
        path: str,
        endpoint: Callable[..., Any],
        method: str,
        route_class: type[APIRoute],
        responses: dict[int | str, dict[str, Any]],
        **options: Any,
    ) -> None:
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            route_class_override=route_class,
            responses=responses,
            dependencies=documented if route_class is not public else None,
            openapi_extra=OPTIONAL_SECURITY if route_class is optional else None,
            **options,
        )

    add("/status", endpoints.status, "GET", optional, _ERRORS, response_model=StatusResponse)
    add("/metrics", endpoints.metrics, "GET", optional, _ERRORS, response_model=MetricsResponse)
    add(
        "/invalidate",
        endpoints.invalidate,
        "POST",
        required,
        _REQUIRED_ERRORS,
        response_model=InvalidateResponse,
    )
    add(
        "/invalidation-stats",
        endpoints.invalidation_stats,
        "GET",
        optional,
        _ERRORS,
        response_model=InvalidationStatsResponse,
    )
    add(
        "/invalidation-recommendations",
        endpoints.recommendations,
        "GET",
        optional,
        _ERRORS,
        response_model=RecommendationsResponse,
    )
    add(
        "/keys",
        endpoints.keys,
        "GET",
        required,
        {**_REQUIRED_ERRORS, 501: {"model": ErrorResponse, "description": "cannot list keys"}},
        response_model=KeysPage,
    )
    add(
        "/tags/invalidate",
        endpoints.invalidate_tags,
        "POST",
        required,
        {**_REQUIRED_ERRORS, 400: {"model": ErrorResponse, "description": "unreadable body"}},
        response_model=TagsInvalidateResponse,
    )
    _register_key_convertor()
    add(
        f"/keys/{{key:{_KEY_CONVERTOR}}}",
        endpoints.delete_key,
        "DELETE",
        required,
        _REQUIRED_ERRORS,
        response_model=KeyDeleteResponse,
    )
    add(
        "/dashboard",
        endpoints.dashboard,
        "GET",
        optional,
        _ERRORS,
        response_class=HTMLResponse,
    )
    add(
        "/health",
        endpoints.health,
        "GET",
        public,
        {503: {"model": HealthResponse, "description": "the cache is closed or not started"}},
        response_model=HealthResponse,
    )
    return router


class _KeyConvertor(PathConvertor):
    """Starlette's ``path``, newlines included: a cache key may hold any character but NUL."""

    regex = "(?s:.*)"


_KEY_CONVERTOR = "stratacache_key"


def _register_key_convertor() -> None:
    """Teach Starlette the key convertor (its registry is global; doing it twice is harmless)."""
    if _KEY_CONVERTOR not in CONVERTOR_TYPES:
        register_url_convertor(_KEY_CONVERTOR, _KeyConvertor())


# -- the endpoints ------------------------------------------------------------------------


class _Endpoints:
    def __init__(
        self,
        cache: CacheProvider,
        auth: ApiKeyAuth,
        monitor: Any,
        preset: Callable[[], str | None],
    ) -> None:
        self._cache = cache
        self._auth = auth
        self._monitor = monitor
        self._preset = preset

    def _trusted(self, request: Request) -> bool:
        """May this caller see names (tenant ids, invalidation patterns)? Key holders may."""
        auth = self._auth
        return auth.authenticated(request) or (auth.dev_mode and not auth.configured)

    def _monitor_of(self, cache: CacheInterface) -> Any:
        monitor = self._monitor
        if monitor is None:
            monitor = getattr(cache, "performance_monitor", None)
        return monitor if callable(getattr(monitor, "get_performance_stats", None)) else None

    def _monitor_report(self, cache: CacheInterface, method: str) -> Any:
        """``monitor.<method>()``, or None without a monitor or when it fails."""
        monitor = self._monitor_of(cache)
        if monitor is None:
            return None
        try:
            return finite(getattr(monitor, method)())
        except Exception as exc:  # a failing monitor never fails the API
            logger.warning("stratacache: the performance monitor's %s failed: %r", method, exc)
            return None

    async def status(self, request: Request) -> StatusResponse:
        """Redis and memory status, performance summary and preset (same fields every call)."""
        cache = self._cache()
        report = await _cache_report(cache)
        stats = _safe_stats(cache)
        redis, memory = _block(report, "redis"), _block(report, "memory")
        tenants = _tenants(report) if self._trusted(request) else None
        return StatusResponse(
            backend=_text(report.get("backend")),
            preset=self._preset(),
            redis=_redis_status(redis, stats),
            memory=_memory_status(memory),
            performance=self._performance(cache, stats),
            tenants=tenants,
            timestamp=_now(),
        )

    def _performance(self, cache: CacheInterface, stats: Mapping[str, Any]) -> PerformanceSummary:
        report = self._monitor_report(cache, "get_performance_stats")
        if isinstance(report, Mapping):
            lifetime = report.get("lifetime")
            lifetime = lifetime if isinstance(lifetime, Mapping) else report
            operations = report.get("cache_operations")
            operations = operations if isinstance(operations, Mapping) else {}
            timed = _int(operations.get("samples")) > 0  # else the percentiles mean nothing
            hits = _int(lifetime.get("cache_hits"))
            misses = _int(lifetime.get("cache_misses"))
            return PerformanceSummary(
                source="monitor",
                hits=hits,
                misses=misses,
                hit_rate=hits / (hits + misses) if hits + misses else 0.0,
                total_operations=_int(lifetime.get("total_cache_operations")),
                latency_p50_ms=_float(operations.get("p50_ms")) if timed else None,
                latency_p99_ms=_float(operations.get("p99_ms")) if timed else None,
                evictions=_int(report.get("evictions")),
            )
        hits, misses = _int(stats.get("hits")), _int(stats.get("misses"))
        return PerformanceSummary(
            source="cache_stats",
            hits=hits,
            misses=misses,
            hit_rate=hits / (hits + misses) if hits + misses else 0.0,
            total_operations=_operations(stats),
            evictions=_optional_int(stats.get("evictions")),
        )

    async def metrics(self, request: Request) -> dict[str, Any]:
        """The performance monitor's statistics (the cache's own counters without a monitor)."""
        cache = self._cache()
        report = self._monitor_report(cache, "get_performance_stats")
        if isinstance(report, Mapping) and "cache_hits" in report:
            if not self._trusted(request):
                report = _without_patterns(report)
            return {**report, "source": "monitor"}
        stats = _safe_stats(cache)
        hits, misses = _int(stats.get("hits")), _int(stats.get("misses"))
        return {
            "source": "cache_stats",
            "timestamp": _now(),
            "retention_hours": None,
            "cache_hit_rate": 100.0 * hits / (hits + misses) if hits + misses else 0.0,
            "total_cache_operations": _operations(stats),
            "cache_hits": hits,
            "cache_misses": misses,
            "cache_stats": stats,
        }

    async def invalidation_stats(self, request: Request) -> dict[str, Any]:
        """How often the cache is invalidated, by what, and how much each removes."""
        cache = self._cache()
        report = self._monitor_report(cache, "get_invalidation_frequency_stats")
        if isinstance(report, Mapping) and "total_invalidations" in report:
            if not self._trusted(request):
                report = _without_patterns(report)
            return {**report, "source": "monitor"}
        stats = _safe_stats(cache)
        return {
            "source": "cache_stats",
            "total_invalidations": None,  # the cache counts keys, not events
            "total_keys_invalidated": _optional_int(stats.get("invalidations")),
        }

    async def recommendations(self, request: Request) -> RecommendationsResponse:
        """Advice drawn from invalidation patterns, hit rate and evictions."""
        cache = self._cache()
        report = self._monitor_report(cache, "get_invalidation_recommendations")
        items = [item for item in report if isinstance(item, dict)] if report else []
        if items and not self._trusted(request):
            stats = self._monitor_report(cache, "get_invalidation_frequency_stats")
            items = _masked(items, _patterns_in(stats))
        return RecommendationsResponse(recommendations=items)

    async def invalidate(self, pattern: Pattern) -> InvalidateResponse:
        """Remove every key matching ``pattern`` (a Redis glob) from every tier."""
        removed = await self._cache().invalidate_pattern(pattern)
        logger.info(
            "stratacache: management API invalidated pattern %r (%d keys)", pattern, removed
        )
        return InvalidateResponse(
            message=f"Cache invalidated for pattern: {pattern}",
            pattern=pattern,
            keys_invalidated=removed,
        )

    async def keys(
        self,
        pattern: Pattern = "*",
        cursor: Annotated[
            str,
            Query(
                max_length=MAX_CURSOR_LENGTH,
                description="the next_cursor of the previous page; empty or 0 to start",
            ),
        ] = SCAN_DONE,
        limit: Annotated[
            int, Query(ge=1, le=MAX_SCAN_COUNT, description="the most keys in this page")
        ] = 100,
    ) -> KeysPage:
        """A page of key names (never values); follow ``next_cursor`` until it is null."""
        try:
            following, found = await self._cache().scan_keys(pattern, cursor=cursor, count=limit)
        except ValidationError as exc:
            raise RequestValidationError(
                [{"loc": ("query", "cursor"), "msg": exc.message, "type": "value_error"}]
            ) from None
        return KeysPage(
            pattern=pattern,
            keys=found,
            count=len(found),
            limit=limit,
            next_cursor=None if following == SCAN_DONE else following,
        )

    async def invalidate_tags(self, body: TagsInvalidateRequest) -> TagsInvalidateResponse:
        """Remove every entry labelled with any of the tags."""
        tags = list(dict.fromkeys(body.tags))
        removed = await self._cache().invalidate_tags(*tags)
        logger.info("stratacache: management API invalidated tags %r (%d keys)", tags, removed)
        return TagsInvalidateResponse(
            message=f"Cache invalidated for tags: {', '.join(tags)}",
            tags=tags,
            keys_invalidated=removed,
        )

    async def delete_key(
        self,
        key: Annotated[
            str,
            Path(
                min_length=1,
                max_length=MAX_KEY_LENGTH,
                pattern=_NO_KEY,
                description="the cache key (as your code passes it), URL-encoded",
            ),
        ],
    ) -> KeyDeleteResponse:
        """Invalidate one key in every tier (200 whether or not it was cached)."""
        deleted = await self._cache().delete(key)
        return KeyDeleteResponse(
            message="Cache invalidated for the key" if deleted else "The key was not cached",
            deleted=deleted,
        )

    async def dashboard(self) -> HTMLResponse:
        """The live dashboard (HTML; polls status and metrics every 2 s)."""
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(
            render_dashboard(nonce),
            headers={
                "Content-Security-Policy": (
                    f"default-src 'none'; script-src 'nonce-{nonce}'; "
                    f"style-src 'nonce-{nonce}'; connect-src 'self'; img-src 'self' data:; "
                    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                ),
                "Referrer-Policy": "no-referrer",
            },
        )

    async def health(self) -> Response:
        """Liveness and readiness: 200 ok or degraded (serving from memory), 503 unavailable."""
        try:
            cache = self._cache()
        except HTTPException:
            body = HealthResponse(status="unavailable", redis="disabled", memory="disabled")
            return JSONResponse(body.model_dump(), status_code=503)
        report = await _cache_report(cache)
        redis, memory = _block(report, "redis"), _block(report, "memory")
        redis_state = _redis_status(redis, {}).status
        memory_state = _memory_status(memory).status
        if memory_state == "closed":
            state, code = "unavailable", 503
        elif redis_state in ("disconnected", "error"):
            state, code = "degraded", 200  # fail-safe: the cache still serves from memory
        else:
            state, code = "ok", 200
        body = HealthResponse(status=state, redis=redis_state, memory=memory_state)  # type: ignore[arg-type]
        return JSONResponse(body.model_dump(), status_code=code)


# -- routes: auth first, one error shape, no-store on everything --------------------------


def _route_class(check: Check | None) -> type[APIRoute]:
    """An APIRoute that authenticates before anything else and shapes every answer."""

    class ManagementRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    if check is not None:
                        await check(request)
                    response = await handle(request)
                except Exception as exc:
                    response = error_response(exc, request)
                return harden(response)

            return handler

    return ManagementRoute


def error_response(exc: Exception, request: Request) -> Response:
    """The answer for an exception raised while serving ``request``."""
    if isinstance(exc, HTTPException):
        detail: Any = exc.detail  # fastapi's HTTPException takes a dict
        if not isinstance(detail, dict):
            detail = {"message": str(detail)}
        return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)
    if isinstance(exc, RequestValidationError):
        return JSONResponse({"detail": validation_errors(exc.errors())}, 422)
    if isinstance(exc, ValidationError):
        problem = {"loc": ["request"], "msg": exc.message, "type": "value_error"}
        return JSONResponse({"detail": [problem]}, 422)
    if isinstance(exc, InfrastructureError):
        error_class = exc.context.get("error_class", "InfrastructureError")
        message = (
            f"The cache's backend cannot answer right now ({error_class}); try again "
            "shortly, and check the server log and GET /health"
        )
        return JSONResponse({"detail": {"message": message}}, 503, headers={"Retry-After": "1"})
    if isinstance(exc, NotImplementedError):
        message = f"This cache cannot do that: {exc}"
        return JSONResponse({"detail": {"message": message}}, 501)
    logger.exception(
        "stratacache: management API failed on %s %r", request.method, request.url.path
    )
    message = "Internal error in the cache management API; the server log has the details"
    return JSONResponse({"detail": {"message": message}}, 500)


_FIELD_RULES = {
    "string_pattern_mismatch": "{name} must not contain control characters",
    "string_too_short": "{name} must not be empty",
    "string_too_long": "{name} must be at most {max_length} characters",
}


def validation_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """FastAPI's 422 items, with messages naming the field, without echoing the input."""
    problems = []
    for error in errors:
        loc = [part if isinstance(part, (str, int)) else str(part) for part in error.get("loc", ())]
        kind = str(error.get("type", "value_error"))
        message = str(error.get("msg", "invalid value"))
        name = str(loc[-1]) if loc and isinstance(loc[-1], str) else "value"
        rule = _FIELD_RULES.get(kind)
        if rule is not None:
            context = error.get("ctx") or {}
            if kind == "string_pattern_mismatch" and name == "key":
                rule = "key must not contain NUL characters"
            message = rule.format(name=name, max_length=context.get("max_length", "?"))
        elif loc and isinstance(loc[-1], str) and not message.startswith(name):
            message = f"{name}: {message}"
        problems.append({"loc": loc, "msg": message, "type": kind})
    return jsonable_encoder(problems)  # type: ignore[no-any-return]


def harden(response: Response) -> Response:
    """Mark a management answer: never stored by any cache, never sniffed."""
    response.headers["Cache-Control"] = NO_STORE
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- reading what caches report -------------------------------------------------------


async def _cache_report(cache: CacheInterface) -> Mapping[str, Any]:
    """``get_cache_stats()``; a failure is reported as a Redis error, not raised."""
    try:
        report = await cache.get_cache_stats()
    except InfrastructureError as exc:
        logger.warning("stratacache: reading the cache's stats failed: %s", exc.message)
        return {"redis": {"status": "error"}, "memory": {"status": "active"}}
    return report if isinstance(report, Mapping) else {}


def _block(report: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    block = report.get(name)
    return block if isinstance(block, Mapping) else {}


def _safe_stats(cache: CacheInterface) -> dict[str, Any]:
    """``get_stats()`` made JSON-safe; ``{}`` if it fails (a status page must not)."""
    try:
        stats: Any = cache.get_stats()
    except Exception as exc:
        logger.warning("stratacache: reading the cache's counters failed: %r", exc)
        return {}
    cleaned: dict[str, Any] = finite(dict(stats)) if isinstance(stats, Mapping) else {}
    return cleaned


def _redis_status(block: Mapping[str, Any], stats: Mapping[str, Any]) -> RedisStatus:
    status = block.get("status", "disabled")
    by_class = block.get("errors_by_class")
    channel = stats.get("invalidation_channel")
    return RedisStatus(
        status=status if status in _REDIS_STATES else "error",
        circuit=_text(block.get("circuit")),
        errors=_optional_int(block.get("errors")),
        errors_by_class={str(name): _int(count) for name, count in (by_class or {}).items()}
        if isinstance(by_class, Mapping)
        else {},
        invalidation_channel=_text(channel),
    )


def _memory_status(block: Mapping[str, Any]) -> MemoryStatus:
    status = block.get("status", "disabled")
    return MemoryStatus(
        status=status if status in _MEMORY_STATES else "disabled",
        entries=_optional_int(block.get("entries")),
        max_size=_optional_int(block.get("max_size")),
        memory_usage_bytes=_optional_int(block.get("memory_usage_bytes")),
    )


def _tenants(report: Mapping[str, Any]) -> list[TenantKeys] | None:
    """Keys per tenant, when the report has them: a tenant view, or a ``tenants`` map."""
    if report.get("tenant_id") is not None:
        return [
            TenantKeys(tenant_id=str(report["tenant_id"]), keys=_optional_int(report.get("keys")))
        ]
    tenants = report.get("tenants")
    if isinstance(tenants, Mapping):
        return [
            TenantKeys(
                tenant_id=str(tenant),
                keys=_optional_int(info.get("keys") if isinstance(info, Mapping) else info),
            )
            for tenant, info in tenants.items()
        ]
    return None


# Invalidation patterns are the operator's strings and may name tenants or users
# ("t:acme:*"): callers without a key see counts, not the patterns themselves.
_REDACTED = "<pattern>"


def _without_patterns(report: Mapping[str, Any]) -> dict[str, Any]:
    """``report`` with every ``{pattern: count}`` map of invalidation patterns emptied."""
    cleaned: dict[str, Any] = {}
    for name, value in report.items():
        if name in ("most_common_patterns", "keys_by_pattern") and isinstance(value, Mapping):
            cleaned[name] = {}
            cleaned["patterns_redacted"] = True
        elif isinstance(value, Mapping):
            cleaned[name] = _without_patterns(value)
        else:
            cleaned[name] = value
    return cleaned


def _patterns_in(stats: Any) -> list[str]:
    patterns = stats.get("patterns") if isinstance(stats, Mapping) else None
    common = patterns.get("most_common_patterns") if isinstance(patterns, Mapping) else None
    return [str(pattern) for pattern in common] if isinstance(common, Mapping) else []


def _masked(items: list[dict[str, Any]], patterns: list[str]) -> list[dict[str, Any]]:
    """Recommendations with the quoted patterns they mention replaced by ``<pattern>``."""
    quoted = sorted((repr(pattern) for pattern in patterns), key=len, reverse=True)

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            for text in quoted:
                value = value.replace(text, _REDACTED)
            return value
        if isinstance(value, list):
            return [mask(item) for item in value]
        if isinstance(value, dict):
            return {key: mask(item) for key, item in value.items()}
        return value

    return [mask(item) for item in items]


def _operations(stats: Mapping[str, Any]) -> int:
    return sum(_int(stats.get(name)) for name in ("hits", "misses", "sets", "deletes"))


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _int(value: Any) -> int:
    number = _optional_int(value)
    return 0 if number is None else number


def _optional_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if math.isfinite(value) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
