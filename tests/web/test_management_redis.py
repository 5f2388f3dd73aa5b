"""The management API over real Redis: RedisCache, the two-tier cache and CacheManager."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from stratacache import (
    CacheInterface,
    CacheManager,
    ClientOptions,
    GenericRedisCache,
    InMemoryCache,
    RedisCache,
)
from web.management_support import AUTH, PREFIX, all_keys, app_for, client, shape

pytestmark = pytest.mark.redis

ROOMY = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)
SECRET = "REDIS-VALUE-NEVER-SHOWN"

Builder = Callable[[str, str], CacheInterface]
BUILDERS: dict[str, Builder] = {
    "redis": lambda url, prefix: RedisCache(url, prefix=prefix, options=ROOMY),
    "two-tier": lambda url, prefix: GenericRedisCache(url, namespace=prefix, options=ROOMY),
    "manager": lambda url, prefix: CacheManager(
        InMemoryCache(5_000), RedisCache(url, prefix=prefix, options=ROOMY), namespace="orders"
    ),
}


@pytest.fixture(params=sorted(BUILDERS))
async def cache(
    request: pytest.FixtureRequest, redis_url: str, unique_prefix: str
) -> AsyncIterator[CacheInterface]:
    built = BUILDERS[request.param](redis_url, unique_prefix)
    async with built:
        yield built
        await built.clear()


@pytest.fixture
async def http(cache: CacheInterface) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app_for(cache)) as http:
        yield http


async def test_invalidation_through_http_reaches_redis(
    cache: CacheInterface, http: httpx.AsyncClient
) -> None:
    await cache.set("test:invalidate:123", {"data": "test"})
    await cache.set("test:keep:1", {"data": "kept"})

    response = await http.post(
        f"{PREFIX}/invalidate", params={"pattern": "test:invalidate:*"}, headers=AUTH
    )

    assert response.status_code == 200
    assert response.json()["keys_invalidated"] == 1
    assert await cache.get("test:invalidate:123") is None
    assert await cache.get("test:keep:1") == {"data": "kept"}


async def test_key_browsing_pages_2500_keys_exactly_once(
    cache: CacheInterface, http: httpx.AsyncClient
) -> None:
    expected = {f"item:{i:05d}" for i in range(2_500)}
    await cache.set_many(dict.fromkeys(expected, SECRET))
    await cache.set("tagged", SECRET, tags=["t"])  # its tag index must not be listed

    keys, pages = await all_keys(http, limit=1000)

    assert len(keys) == len(set(keys))
    assert set(keys) == expected | {"tagged"}
    assert max(pages) <= 1000
    assert SECRET not in repr(keys)


async def test_key_browsing_with_a_pattern_and_small_pages(
    cache: CacheInterface, http: httpx.AsyncClient
) -> None:
    await cache.set_many({f"user:{i}": i for i in range(40)} | {f"order:{i}": i for i in range(40)})

    keys, pages = await all_keys(http, pattern="user:2*", limit=4)

    assert sorted(keys) == sorted(["user:2", *(f"user:2{i}" for i in range(10))])
    assert max(pages) <= 4


async def test_tags_and_single_keys(cache: CacheInterface, http: httpx.AsyncClient) -> None:
    await cache.set("p:1", 1, tags=["catalog"])
    await cache.set("p:2", 2, tags=["catalog"])
    await cache.set("p:3", 3)

    tags = await http.post(f"{PREFIX}/tags/invalidate", json={"tags": ["catalog"]}, headers=AUTH)
    deleted = await http.delete(f"{PREFIX}/keys/p:3", headers=AUTH)

    assert tags.json()["keys_invalidated"] == 2
    assert deleted.json()["deleted"] is True
    for key in ("p:1", "p:2", "p:3"):
        assert not await cache.exists(key)


async def test_status_reports_redis_connected_with_a_stable_shape(
    cache: CacheInterface, http: httpx.AsyncClient
) -> None:
    await cache.set("s", SECRET)
    first = await http.get(f"{PREFIX}/status")
    await cache.get("s")
    second = await http.get(f"{PREFIX}/status")
    health = await http.get(f"{PREFIX}/health")

    assert first.json()["redis"]["status"] == "connected"
    assert shape(first.json()) == shape(second.json())
    assert health.json()["status"] == "ok"
    assert health.json()["redis"] == "connected"
    for response in (first, second, health):
        assert SECRET not in response.text
        assert response.headers["cache-control"] == "no-store"
