"""HTTP response caching: an ASGI middleware and a per-route decorator, one core.

Both front doors — :class:`HTTPCacheMiddleware` (any ASGI app) and
:func:`cache_response` (a Starlette or FastAPI endpoint) — hand the same
:class:`_HTTPCache` the request's ASGI scope and the response's status, headers and
body, so every rule below is written once:

* **What is looked up**: GET and HEAD only. A request carrying credentials
  (``Authorization``, ``Cookie`` ... see ``credential_headers``) is served by the app,
  uncached, unless ``scope(request)`` names the user or tenant it belongs to; that
  name then joins the key. HEAD shares GET's entry (a HEAD miss is fetched from the
  app as a GET, as Varnish does, so the stored ETag hashes the real body).
* **The key**: ``GET``, scheme, the (lower-cased, default-port-free) ``Host``,
  root path, path, raw path and the query string *as sent* (never reordered: an app
  may read ``?a=1&a=2`` in order), the scope, the ``key_headers`` values, and the
  values of the request headers the response named in ``Vary``. ``X-Forwarded-Host``
  and friends are not in it unless listed in ``key_headers``. Request headers never
  set a TTL, bypass, refresh or invalidate anything: ``Cache-Control``/``Pragma`` on a
  request are ignored.
* **What is stored**: a ``200`` (as Django's cache middleware: other 2xx are rare
  for cacheable reads, ``204`` has no body to tag, ``206`` is a fragment, ``203`` a
  transformation) without ``Set-Cookie``, ``Cache-Control: private``, ``no-store`` or
  ``no-cache`` (a server-side cache cannot revalidate with the origin on every use,
  which is what ``no-cache`` asks for), ``Vary: *``, a zero lifetime, trailers or a
  ``text/event-stream`` body, whose body fits in ``max_body_bytes``. Larger or
  streaming bodies pass through as they are produced.
* **How long**: ``ttl``, capped by the response's own ``s-maxage`` (a shared
  cache's lifetime), else ``max-age``, else ``Expires``.
* **What is sent**: the app's headers plus a strong ``ETag`` (a sha256 of the body,
  its type and coding) unless the app set one, ``X-Cache: HIT|MISS`` and, on a hit,
  ``Age``. ``If-None-Match`` (lists, ``W/`` tags compared weakly, ``*``) or, without
  it, ``If-Modified-Since`` against ``Last-Modified``, answers ``304`` with the
  headers RFC 9110 §15.4.5 asks for and no body.
* **Never failing a request**: a cache, ``scope`` or ``tags`` error is logged,
  counted in ``get_stats()["errors"]``, and the request is served by the app.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._keys import validate_tags
from .._ttl import resolve_ttl
from ..caches._interface import MISSING, CacheInterface
from ..errors import ValidationError
from ._http_rules import (
    NOT_MODIFIED_HEADERS,
    Headers,
    content_etag,
    header_name,
    key_part,
    lifetime_cap,
    not_modified,
    parse_vary,
    refusal,
    request_host,
    values,
)

__all__ = [
    "DEFAULT_CREDENTIAL_HEADERS",
    "DEFAULT_MAX_BODY_BYTES",
    "HTTPCacheMiddleware",
    "cache_response",
]

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("stratacache")

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
DEFAULT_CREDENTIAL_HEADERS: Final = ("authorization", "cookie", "proxy-authorization", "x-api-key")
"""Request headers that make a response someone's own, unless ``scope`` says whose."""

ScopeFunction = Callable[[Request], "str | Awaitable[str | None] | None"]
TagsOption = Iterable[str] | Callable[[Request], Iterable[str]]

_ENTRY_VERSION = 1
_KEY_VERSION = b"stratacache.http.v1"
# Hop-by-hop fields and the ones this module computes itself are never stored.
_UNSTORED_HEADERS = frozenset(
    b"age connection content-length keep-alive proxy-connection set-cookie te trailer "
    b"transfer-encoding upgrade x-cache".split()
)
# Validators this module evaluates itself: a miss asks the app for the full body.
_VALIDATORS = frozenset((b"if-none-match", b"if-modified-since"))
_ZERO_COPY = ("http.response.pathsend", "http.response.zerocopysend")


# -- entries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A lookup-eligible request: where its entry lives and what the client asked."""

    base_key: str
    base_material: bytes
    head: bool
    request_headers: Headers
    tags: frozenset[str]
    path: str


@dataclass(frozen=True)
class _Admission:
    """A response that may be stored: for how long, keyed on which request headers."""

    ttl: int
    vary: list[str]


def _variant_key(plan: _Plan, vary: list[str]) -> str:
    """The key of the entry for this request's values of the ``vary`` headers."""
    digest = hashlib.sha256(plan.base_material)
    for name in vary:
        found = values(plan.request_headers, name.encode())
        digest.update(key_part(name.encode()) + key_part(str(len(found)).encode()))
        for value in found:
            digest.update(key_part(value))
    return f"{plan.base_key}:{digest.hexdigest()}"


def _valid_entry(entry: object) -> dict[str, Any] | None:
    """Return a stored page if it has exactly the expected shape (foreign data is a miss)."""
    if not isinstance(entry, dict) or entry.get("v") != _ENTRY_VERSION:
        return None
    headers, vary = entry.get("headers"), entry.get("vary")
    if not (
        type(entry.get("status")) is int
        and type(entry.get("body")) is bytes
        and type(entry.get("etag")) is str
        and type(entry.get("stored_at")) in (int, float)
        and isinstance(vary, list)
        and all(type(name) is str for name in vary)
        and isinstance(headers, list)
        and all(
            isinstance(h, (list, tuple))
            and len(h) == 2
            and type(h[0]) is bytes
            and type(h[1]) is bytes
            for h in headers
        )
    ):
        return None
    return entry


class _HTTPCache:
    """The core both front doors share: plan, look up, admit, render, store."""

    def __init__(
        self,
        cache: CacheInterface,
        *,
        ttl: int,
        scope: ScopeFunction | None,
        max_body_bytes: int,
        key_prefix: str,
        key_headers: Iterable[str],
        credential_headers: Iterable[str],
        tags: TagsOption,
        clock: Callable[[], float],
    ) -> None:
        if not (callable(getattr(cache, "get", None)) and callable(getattr(cache, "set", None))):
            raise ValidationError(f"cache must be a stratacache cache, not {type(cache).__name__}")
        self.cache = cache
        self.ttl = resolve_ttl(ttl, 0)
        if scope is not None and not callable(scope):
            raise ValidationError("scope must be a callable taking the request, or None")
        self.scope = scope
        if type(max_body_bytes) is not int or max_body_bytes <= 0:
            raise ValidationError(
                f"max_body_bytes must be a positive integer, got {max_body_bytes!r}"
            )
        self.max_body_bytes = max_body_bytes
        if type(key_prefix) is not str or not key_prefix or "\x00" in key_prefix:
            raise ValidationError("key_prefix must be a non-empty str without NUL")
        self.key_prefix = key_prefix
        self.key_headers = tuple(sorted({header_name(n) for n in key_headers}))
        self.credential_headers = frozenset(header_name(n).encode() for n in credential_headers)
        self.tags: Callable[[Request], Iterable[str]] | frozenset[str]
        self.tags = tags if callable(tags) else validate_tags(tags)
        self.clock = clock
        self.stats = dict.fromkeys(
            ("hits", "misses", "stores", "not_stored", "passed_through", "errors"), 0
        )

    def get_stats(self) -> dict[str, int]:
        """Counters: hits, misses, stores, not_stored, passed_through, errors."""
        return dict(self.stats)

    def _error(self, what: str, path: str, exc: BaseException) -> None:
        self.stats["errors"] += 1
        logger.warning(
            "stratacache: HTTP cache %s failed for %s (%s: %s); serving without the cache",
            what,
            path,
            type(exc).__name__,
            exc,
        )

    async def plan(self, scope: Scope, request: Request | None = None) -> _Plan | None:
        """Where a request's entry lives, or ``None`` if the request must pass through."""
        method = scope.get("method", "")
        if scope.get("type") != "http" or method not in ("GET", "HEAD"):
            return None
        headers: Headers = [(k.lower(), v) for k, v in scope.get("headers", ())]
        host = request_host(scope, headers)
        path = scope.get("path", "")
        if host is None:
            return None
        credentials = any(name in self.credential_headers for name, _ in headers)
        owner: str | None = None
        tags: frozenset[str] = frozenset()
        try:
            if self.scope is not None:
                request = request if request is not None else Request(scope)
                found = self.scope(request)
                if inspect.isawaitable(found):
                    found = await found
                if found is not None and type(found) is not str:
                    raise TypeError(f"scope() must return a str or None, not {type(found)}")
                owner = found or None  # "" would put every user into one bucket
            if callable(self.tags):
                request = request if request is not None else Request(scope)
                tags = validate_tags(self.tags(request))
            else:
                tags = self.tags
        except Exception as exc:
            self._error("scope/tags", path, exc)
            return None
        if credentials and owner is None:
            return None
        parts = [
            _KEY_VERSION,
            b"GET",  # HEAD shares GET's entry
            str(scope.get("scheme", "http")).encode(),
            host,
            str(scope.get("root_path", "")).encode(),
            path.encode("utf-8", "surrogateescape"),
            bytes(scope.get("raw_path") or b""),
            bytes(scope.get("query_string", b"")),
            b"-" if owner is None else b"+" + owner.encode("utf-8", "surrogateescape"),
        ]
        for name in self.key_headers:
            field_values = values(headers, name.encode())
            parts += [name.encode(), str(len(field_values)).encode(), *field_values]
        material = b"".join(key_part(p) for p in parts)
        base_key = f"{self.key_prefix}:{hashlib.sha256(material).hexdigest()}"
        return _Plan(base_key, material, method == "HEAD", headers, tags, path)

    async def load(self, plan: _Plan) -> tuple[bool, dict[str, Any] | None]:
        """``(cache_ok, entry)``: the stored page for this request, following ``Vary``."""
        try:
            found = await self.cache.get(plan.base_key, MISSING)
            if isinstance(found, dict) and "body" not in found:  # a Vary index
                vary = found.get("vary")
                if not (isinstance(vary, list) and vary and all(type(n) is str for n in vary)):
                    return True, None
                # The variant's key hashes the Vary names, so it holds a page stored
                # under exactly these names.
                return True, _valid_entry(await self.cache.get(_variant_key(plan, vary), MISSING))
            return True, _valid_entry(found)
        except Exception as exc:
            self._error("read", plan.path, exc)
            return False, None

    def admit(self, status: int, headers: Headers) -> _Admission | None:
        """The storage terms for a response, or ``None`` (counted) if it is not stored."""
        reason = refusal(status, headers, self.max_body_bytes)
        cap = None if reason else lifetime_cap(headers, self.clock())
        if reason is None and cap is not None and cap <= 0:
            reason = "a zero lifetime"
        if reason is not None:
            self.stats["not_stored"] += 1
            logger.debug("stratacache: HTTP response not stored: %s", reason)
            return None
        # ttl=0 means "as long as the response allows", like every cache's ttl=0.
        ttl = self.ttl if cap is None else cap if self.ttl == 0 else min(self.ttl, cap)
        return _Admission(ttl, parse_vary(headers) or [])

    def entry(self, status: int, headers: Headers, body: bytes, vary: list[str]) -> dict[str, Any]:
        """The plain dict stored for a response: bytes, str, int and lists only."""
        kept = [[k.lower(), v] for k, v in headers if k.lower() not in _UNSTORED_HEADERS]
        etags = values(headers, b"etag")
        if etags:  # the app's own validator wins
            etag = etags[0].decode("latin-1").strip()
        else:
            etag = content_etag(headers, body)
            kept.append([b"etag", etag.encode("latin-1")])
        kept.append([b"content-length", str(len(body)).encode()])
        return {
            "v": _ENTRY_VERSION,
            "status": status,
            "headers": kept,
            "body": body,
            "etag": etag,
            "stored_at": self.clock(),
            "vary": vary,
        }

    def render(
        self, plan: _Plan, entry: dict[str, Any], *, hit: bool
    ) -> tuple[int, Headers, bytes]:
        """Status, headers and body to send for ``entry``: a 200, or a bodiless 304."""
        stored: Headers = [(k, v) for k, v in entry["headers"]]
        extra: Headers = [(b"x-cache", b"HIT" if hit else b"MISS")]
        if hit:
            age = max(0, int(self.clock() - entry["stored_at"]))
            extra.insert(0, (b"age", str(age).encode()))
        if not_modified(plan.request_headers, stored, entry["etag"]):
            kept = [(k, v) for k, v in stored if k in NOT_MODIFIED_HEADERS]
            return 304, kept + extra, b""
        return entry["status"], stored + extra, b"" if plan.head else entry["body"]

    async def store(self, plan: _Plan, entry: dict[str, Any], ttl: int) -> None:
        """Write the page (and, when it varies, the index of its Vary names); never raises."""
        vary: list[str] = entry["vary"]
        try:
            if vary:
                await self.cache.set(_variant_key(plan, vary), entry, ttl, tags=plan.tags)
                index = {"v": _ENTRY_VERSION, "vary": vary}
                await self.cache.set(plan.base_key, index, ttl, tags=plan.tags)
            else:
                await self.cache.set(plan.base_key, entry, ttl, tags=plan.tags)
            self.stats["stores"] += 1
        except Exception as exc:
            self._error("write", plan.path, exc)


def _miss_header(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    return [(k, v) for k, v in headers if k.lower() != b"x-cache"] + [(b"x-cache", b"MISS")]


# -- the ASGI middleware ---------------------------------------------------------------


class HTTPCacheMiddleware:
    """Cache whole HTTP responses of any ASGI app (Starlette, FastAPI ...) in a cache.

    Args:
        app: the ASGI app to wrap.
        cache: any stratacache cache (memory, Redis, two-tier, tenant view).
        ttl: seconds a response is kept at most (``0``: until the response's own
            ``max-age``/``s-maxage``/``Expires``, or forever).
        scope: ``scope(request) -> str | None`` (may be async): the user or tenant a
            request belongs to. Requests carrying ``credential_headers`` are cached only
            when it returns a non-empty str, and that str joins the key.
        max_body_bytes: larger responses are streamed through uncached.
        key_prefix: the cache keys start ``f"{key_prefix}:"``.
        key_headers: request headers whose values always join the key — list the ones
            your app reads without declaring them in ``Vary`` (``X-Forwarded-Host`` if
            it trusts it, say).
        credential_headers: request headers that make a response private.
        tags: tags for every stored page, or ``tags(request) -> iterable`` — drop pages
            with ``cache.invalidate_tags(...)``.
        clock: wall-clock seconds, for ``Age`` and ``Expires``.

    See the module docstring for the rules. Starlette: add it after (outside of)
    ``GZipMiddleware`` and inside the middleware that sets ``request.user`` or
    ``request.session`` if ``scope`` reads them.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: CacheInterface,
        ttl: int = 60,
        scope: ScopeFunction | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        key_prefix: str = "http",
        key_headers: Iterable[str] = (),
        credential_headers: Iterable[str] = DEFAULT_CREDENTIAL_HEADERS,
        tags: TagsOption = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self._core = _HTTPCache(
            cache,
            ttl=ttl,
            scope=scope,
            max_body_bytes=max_body_bytes,
            key_prefix=key_prefix,
            key_headers=key_headers,
            credential_headers=credential_headers,
            tags=tags,
            clock=clock,
        )

    def get_stats(self) -> dict[str, int]:
        """Counters: hits, misses, stores, not_stored, passed_through, errors."""
        return self._core.get_stats()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        core = self._core
        plan = await core.plan(scope) if scope["type"] == "http" else None
        cache_ok, entry = await core.load(plan) if plan is not None else (False, None)
        if plan is None or not cache_ok:
            if scope["type"] == "http":
                core.stats["passed_through"] += 1
            await self.app(scope, receive, send)
            return
        if entry is not None:
            core.stats["hits"] += 1
            status, headers, body = core.render(plan, entry, hit=True)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        core.stats["misses"] += 1
        # Ask the app for the full GET body: the validators are ours to evaluate, and a
        # HEAD needs the body its ETag hashes.
        app_scope = dict(scope)
        app_scope["method"] = "GET"
        app_scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() not in _VALIDATORS]
        if plan.head and "extensions" in scope:
            app_scope["extensions"] = {
                k: v for k, v in scope["extensions"].items() if k not in _ZERO_COPY
            }
        capture = _Capture(core, plan, send)
        await self.app(app_scope, receive, capture.send)
        await capture.finish()


class _Capture:
    """Buffers the app's response to a miss; stores and renders it, or streams it on."""

    def __init__(self, core: _HTTPCache, plan: _Plan, send: Send) -> None:
        self.core, self.plan, self.downstream = core, plan, send
        self.start: Message | None = None
        self.admission: _Admission | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.passing = False
        self.entry: dict[str, Any] | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.passing:
            await self._forward(message)
        elif kind == "http.response.start":
            status, headers = message["status"], list(message.get("headers", ()))
            admission = None if message.get("trailers") else self.core.admit(status, headers)
            if admission is None:
                self.passing = True
                await self._forward(message)
            else:
                self.start, self.admission = message, admission
        elif kind == "http.response.body" and self.start is not None:
            body = bytes(message.get("body", b""))
            self.chunks.append(body)
            self.size += len(body)
            more = bool(message.get("more_body", False))
            if self.size > self.core.max_body_bytes:
                self.core.stats["not_stored"] += 1
                await self._flush(more_body=more)
            elif not more:
                await self._complete()
        else:  # pathsend, trailers ...: give up on storing, hand everything on
            await self._flush(more_body=True)
            await self._forward(message)

    async def _forward(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": _miss_header(message.get("headers", ()))}
        elif message["type"] == "http.response.body" and self.plan.head:
            message = {**message, "body": b""}
        await self.downstream(message)

    async def _flush(self, *, more_body: bool) -> None:
        """Send what was buffered, then pass the rest of the response through."""
        self.passing = True
        if self.start is not None:
            await self._forward(self.start)
            body = b"".join(self.chunks)
            self.chunks.clear()
            if body or not more_body:  # no empty chunk before a pathsend or trailers
                await self._forward(
                    {"type": "http.response.body", "body": body, "more_body": more_body}
                )

    async def _complete(self) -> None:
        assert self.start is not None
        assert self.admission is not None
        headers = list(self.start.get("headers", ()))
        entry = self.core.entry(
            self.start["status"], headers, b"".join(self.chunks), self.admission.vary
        )
        self.chunks.clear()
        self.passing = True  # nothing more may be sent for this response
        status, out_headers, body = self.core.render(self.plan, entry, hit=False)
        await self.downstream(
            {"type": "http.response.start", "status": status, "headers": out_headers}
        )
        await self.downstream({"type": "http.response.body", "body": body})
        self.entry = entry

    async def finish(self) -> None:
        """After the app returned: store a complete page, or flush an unfinished one."""
        if self.entry is not None and self.admission is not None:
            await self.core.store(self.plan, self.entry, self.admission.ttl)
        elif not self.passing and self.start is not None:
            await self._flush(more_body=True)  # the app broke off: let the server see it


# -- the per-route decorator -----------------------------------------------------------


def cache_response(
    cache: CacheInterface,
    *,
    ttl: int = 60,
    scope: ScopeFunction | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    key_prefix: str = "http",
    key_headers: Iterable[str] = (),
    credential_headers: Iterable[str] = DEFAULT_CREDENTIAL_HEADERS,
    tags: TagsOption = (),
    clock: Callable[[], float] = time.time,
) -> Callable[[Callable[P, Any]], Callable[P, Awaitable[Any]]]:
    """Cache one Starlette or FastAPI endpoint's responses, by the middleware's rules.

    The arguments are :class:`HTTPCacheMiddleware`'s. Put it *below* the route
    decorator (``@app.get(...)`` then ``@cache_response(cache)``). A FastAPI endpoint
    need not take a ``Request``: one is added to the signature FastAPI sees.

    It caches the :class:`~starlette.responses.Response` the endpoint returns (every
    Starlette endpoint, and FastAPI endpoints returning ``JSONResponse(...)`` and the
    like). An endpoint returning plain data is served uncached (logged once): FastAPI
    serializes that only after the endpoint returns, through ``response_model``, and
    serializing it any other way could leak fields the model filters out. Use the
    middleware for such routes, or return a Response. Streaming and file responses
    are served uncached too.
    """
    core = _HTTPCache(
        cache,
        ttl=ttl,
        scope=scope,
        max_body_bytes=max_body_bytes,
        key_prefix=key_prefix,
        key_headers=key_headers,
        credential_headers=credential_headers,
        tags=tags,
        clock=clock,
    )

    def decorate(endpoint: Callable[P, Any]) -> Callable[P, Awaitable[Any]]:
        signature, injected = _with_request_parameter(endpoint)
        warned = False

        async def call(*args: Any, **kwargs: Any) -> Any:
            if inspect.iscoroutinefunction(endpoint):
                return await endpoint(*args, **kwargs)
            result = await run_in_threadpool(endpoint, *args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal warned
            request = kwargs.pop(injected, None) if injected else None
            if request is None:
                request = next(
                    (a for a in (*args, *kwargs.values()) if isinstance(a, Request)), None
                )
            plan = await core.plan(request.scope, request) if request is not None else None
            cache_ok, entry = await core.load(plan) if plan is not None else (False, None)
            if plan is None or not cache_ok:
                core.stats["passed_through"] += 1
                return await call(*args, **kwargs)
            if entry is not None:
                core.stats["hits"] += 1
                return _response(*core.render(plan, entry, hit=True))
            core.stats["misses"] += 1
            result = await call(*args, **kwargs)
            if not isinstance(result, Response) or not hasattr(result, "body"):
                if not warned and not isinstance(result, Response):
                    warned = True
                    logger.warning(
                        "stratacache: %s returned %s, not a Response: cache_response cannot "
                        "cache it (return a Response, or use HTTPCacheMiddleware)",
                        getattr(endpoint, "__qualname__", endpoint),
                        type(result).__name__,
                    )
                core.stats["not_stored"] += 1
                return result
            body, headers = bytes(result.body), list(result.raw_headers)
            admission = core.admit(result.status_code, headers)
            if admission is None or len(body) > core.max_body_bytes:
                if admission is not None:
                    core.stats["not_stored"] += 1
                result.raw_headers = _miss_header(result.raw_headers)
                return result
            stored = core.entry(result.status_code, headers, body, admission.vary)
            response = _response(*core.render(plan, stored, hit=False))
            response.background = result.background
            await core.store(plan, stored, admission.ttl)
            return response

        if injected:
            wrapper.__signature__ = signature  # type: ignore[attr-defined]
        return wrapper

    return decorate


_INJECTED_REQUEST = "stratacache_request"


def _with_request_parameter(endpoint: Callable[..., Any]) -> tuple[inspect.Signature, str]:
    """The signature FastAPI should see, and the name of the Request parameter added to it.

    Returns an empty name when the endpoint already takes a ``Request`` (or cannot be
    inspected), so nothing is added.
    """
    try:
        signature = inspect.signature(endpoint, eval_str=True)
    except (NameError, TypeError, ValueError, SyntaxError):
        try:
            signature = inspect.signature(endpoint)
        except (TypeError, ValueError):
            return inspect.Signature(), ""
    parameters = list(signature.parameters.values())
    for parameter in parameters:
        annotation = parameter.annotation
        if isinstance(annotation, type) and issubclass(annotation, Request):
            return signature, ""
    # Added even to a Starlette ``endpoint(request)``: Starlette passes the request
    # positionally and never reads the signature, so the extra parameter costs nothing.
    extra = inspect.Parameter(_INJECTED_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
    position = len(parameters)
    if parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD:
        position -= 1
    parameters.insert(position, extra)
    return signature.replace(parameters=parameters), _INJECTED_REQUEST


def _response(status: int, headers: Headers, body: bytes) -> Response:
    response = Response(content=body, status_code=status)
    response.raw_headers = list(headers)
    return response
