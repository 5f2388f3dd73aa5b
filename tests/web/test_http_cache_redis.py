"""HTTPCacheMiddleware over a real Redis: the stored page survives the trip to Redis."""

from __future__ import annotations

import pytest

from stratacache import ClientOptions, RedisCache
from stratacache.web import HTTPCacheMiddleware
from web.http_support import Backend, client, starlette_app

pytestmark = pytest.mark.redis


async def test_pages_round_trip_through_redis(redis_url: str, unique_prefix: str) -> None:
    options = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)
    backend = Backend(headers={"Vary": "Accept-Language", "Cache-Control": "max-age=30"})
    backend.body_from = lambda r: r.headers.get("accept-language", "-").encode() + b"\x00\xff"
    async with RedisCache(redis_url, prefix=unique_prefix, options=options) as cache:
        middleware = HTTPCacheMiddleware(starlette_app(backend), cache=cache, ttl=60)
        async with client(middleware) as http:
            for _ in range(2):
                for language in ("en", "fr"):
                    answer = await http.get("/page", headers={"Accept-Language": language})
                    assert answer.content == language.encode() + b"\x00\xff"
            assert answer.headers["x-cache"] == "HIT"
            assert answer.headers["vary"] == "Accept-Language"
            revalidated = await http.get(
                "/page", headers={"Accept-Language": "fr", "If-None-Match": answer.headers["etag"]}
            )
            assert (revalidated.status_code, revalidated.content) == (304, b"")
        assert backend.calls == 2
        assert middleware.get_stats()["errors"] == 0
        assert await cache.invalidate_pattern("http:*") == 3  # the Vary index, two variants
        await cache.clear()
