"""The HTTP cache tests' helpers: a scriptable Starlette app, a recording cache, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from stratacache import InMemoryCache
from stratacache.testing import FakeClock
from stratacache.web import HTTPCacheMiddleware

NOW = 1_700_000_000.0  # a realistic wall-clock start, so Expires/Date arithmetic is real


@dataclass
class Backend:
    """The app behind the cache: counts its calls and answers as the test scripts it.

    The default body names the request's host, path, query and call number, so a
    response served from the cache is told apart from a fresh one.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    chunks: list[bytes] | None = None  # answer with a StreamingResponse of these
    media_type: str = "text/plain"
    body_from: Callable[[Request], bytes] | None = None
    calls: int = 0
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        self.calls += 1
        self.seen.append((request.method, dict(request.headers)))
        if self.chunks is not None:
            chunks = list(self.chunks)

            async def stream() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk

            return StreamingResponse(
                stream(), status_code=self.status, headers=self.headers, media_type=self.media_type
            )
        if self.body_from is not None:
            body = self.body_from(request)
        elif self.body is not None:
            body = self.body
        else:
            url = request.url
            body = f"{url.netloc}{url.path}?{url.query} #{self.calls}".encode()
        return Response(body, self.status, headers=self.headers, media_type=self.media_type)


def starlette_app(backend: Backend) -> Starlette:
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", backend.endpoint, methods=methods)])


def client(app: ASGIApp, base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@dataclass
class Env:
    """One app behind one HTTPCacheMiddleware, sharing a fake clock with its cache."""

    backend: Backend
    cache: InMemoryCache
    clock: FakeClock
    middleware: HTTPCacheMiddleware
    http: httpx.AsyncClient

    async def get(self, url: str = "/page", **kwargs: Any) -> httpx.Response:
        return await self.http.get(url, **kwargs)


class RecordingCache(InMemoryCache):
    """An InMemoryCache that remembers what was written (key, value, ttl, tags)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.writes: list[tuple[str, Any, int | None, frozenset[str]]] = []

    async def set(
        self, key: str, value: Any, ttl: int | None = None, *, tags: Iterable[str] = ()
    ) -> None:
        self.writes.append((key, value, ttl, frozenset(tags)))
        await super().set(key, value, ttl, tags=tags)


MakeEnv = Callable[..., Env]
