"""Fixtures for the HTTP cache tests: an app behind HTTPCacheMiddleware, a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from stratacache.testing import FakeClock
from stratacache.web import HTTPCacheMiddleware
from web.http_support import NOW, Backend, Env, MakeEnv, RecordingCache, client, starlette_app


@pytest.fixture
async def make_http_env() -> AsyncIterator[MakeEnv]:
    """Build an :class:`Env`; keyword arguments go to :class:`HTTPCacheMiddleware`."""
    clients: list[httpx.AsyncClient] = []

    def build(backend: Backend | None = None, **options: Any) -> Env:
        backend = backend or Backend()
        clock = FakeClock(NOW)
        cache = options.pop("cache", None) or RecordingCache(clock=clock, default_ttl=3600)
        options.setdefault("clock", clock)
        middleware = HTTPCacheMiddleware(starlette_app(backend), cache=cache, **options)
        http = client(middleware)
        clients.append(http)
        return Env(backend, cache, clock, middleware, http)

    yield build
    for http in clients:
        await http.aclose()


@pytest.fixture
def http_env(make_http_env: MakeEnv) -> Env:
    """The default set-up: ttl=60, no scope."""
    return make_http_env()
