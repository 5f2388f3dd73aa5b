"""The management API over memory caches, through httpx's ASGI transport.

The three seed patterns (invalidate over HTTP then check the cache; metrics after
known operations; a stable status contract), then each endpoint, the headers every
answer carries, and that no answer ever carries a cached value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from stratacache import CacheInterface, InMemoryCache, RedisCache
from stratacache.config import NullCache
from stratacache.web._router import management_router
from web.management_support import AUTH, KEY, PREFIX, all_keys, app_for, client, shape

SECRET = "VALUE-THAT-MUST-NEVER-LEAVE-THE-CACHE"


@pytest.fixture
async def cache() -> AsyncIterator[InMemoryCache]:
    async with InMemoryCache(max_size=10_000, default_ttl=600) as memory:
        yield memory


@pytest.fixture
async def http(cache: InMemoryCache) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app_for(cache)) as http:
        yield http


# -- the seeds' three patterns ------------------------------------------------------------


async def test_invalidation_through_http_removes_the_keys(
    cache: InMemoryCache, http: httpx.AsyncClient
) -> None:
    await cache.set("test:invalidate:123", {"data": "test"})
    await cache.set("test:invalidate:456", {"data": "test"})
    await cache.set("test:keep:1", {"data": "kept"})

    response = await http.post(
        f"{PREFIX}/invalidate", params={"pattern": "test:invalidate:*"}, headers=AUTH
    )

    assert response.status_code == 200
    assert response.json() == {
        "message": "Cache invalidated for pattern: test:invalidate:*",
        "pattern": "test:invalidate:*",
        "keys_invalidated": 2,
    }
    assert await cache.get("test:invalidate:123") is None
    assert await cache.get("test:invalidate:456") is None
    assert await cache.get("test:keep:1") == {"data": "kept"}


async def test_metrics_reflect_known_operations(
    cache: InMemoryCache, http: httpx.AsyncClient
) -> None:
    for i in range(10):
        await cache.set(f"m:{i}", i)
    for i in range(5):
        assert await cache.get(f"m:{i}") == i
    for i in range(3):
        assert await cache.get(f"absent:{i}") is None

    metrics = (await http.get(f"{PREFIX}/metrics")).json()

    assert metrics["cache_hits"] >= 5
    assert metrics["cache_misses"] >= 3
    assert metrics["total_cache_operations"] >= 8
    assert 0 <= metrics["cache_hit_rate"] <= 100
    assert {"timestamp", "retention_hours", "source"} <= set(metrics)


async def test_metrics_work_without_a_monitor() -> None:
    async with client(app_for(NullCache())) as http:  # the one cache without a monitor
        metrics = (await http.get(f"{PREFIX}/metrics")).json()
    assert metrics["source"] == "cache_stats"
    assert metrics["cache_hits"] == metrics["cache_misses"] == 0
    assert metrics["total_cache_operations"] == 0


async def test_status_contract_is_stable_across_calls(
    cache: InMemoryCache, http: httpx.AsyncClient
) -> None:
    first = (await http.get(f"{PREFIX}/status")).json()
    await cache.set("a", 1)
    await cache.get("a")
    await cache.get("b")
    second = (await http.get(f"{PREFIX}/status")).json()
    third = (await http.get(f"{PREFIX}/status", headers=AUTH)).json()

    for status in (first, second, third):
        assert {"redis", "memory", "performance", "preset"} <= set(status)
        assert status["redis"]["status"] == "disabled"
        assert status["memory"]["status"] == "active"
    assert shape(first) == shape(second) == shape(third)
    assert second["memory"]["entries"] == 1
    assert second["performance"]["hits"] == first["performance"]["hits"] + 1
    assert second["performance"]["hit_rate"] == pytest.approx(0.5)


# -- the other endpoints --------------------------------------------------------------------


async def test_invalidation_stats_and_recommendations(
    cache: InMemoryCache, http: httpx.AsyncClient
) -> None:
    await cache.set("user:1", 1)
    await http.post(f"{PREFIX}/invalidate", params={"pattern": "user:*"}, headers=AUTH)

    stats = (await http.get(f"{PREFIX}/invalidation-stats")).json()
    advice = (await http.get(f"{PREFIX}/invalidation-recommendations")).json()

    assert stats["source"] == "monitor"
    assert stats["total_invalidations"] >= 1
    assert stats["total_keys_invalidated"] >= 1
    assert isinstance(advice["recommendations"], list)


async def test_key_browsing_pages_every_key_exactly_once(
    cache: InMemoryCache, http: httpx.AsyncClient
) -> None:
    expected = {f"item:{i:05d}" for i in range(2_500)}
    await cache.set_many(dict.fromkeys(expected, SECRET))

    keys, pages = await all_keys(http, limit=1000)

    assert sorted(keys) == sorted(expected)
    assert len(keys) == len(set(keys))
    assert pages == [1000, 1000, 500]


async def test_key_browsing_filters_by_pattern_with_small_pages(
    cache: InMemoryCache, http: httpx.AsyncClient
) -> None:
    await cache.set_many({f"user:{i}": i for i in range(30)} | {f"order:{i}": i for i in range(30)})

    keys, pages = await all_keys(http, pattern="user:1*", limit=3)

    assert sorted(keys) == sorted(["user:1", *(f"user:1{i}" for i in range(10))])
    assert max(pages) <= 3


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "k%%%"}, "cursor"),
        ({"cursor": "x" * 9000}, "cursor"),
    ],
)
async def test_key_browsing_refuses_bad_limits_and_cursors(
    http: httpx.AsyncClient, params: dict[str, Any], problem: str
) -> None:
    response = await http.get(f"{PREFIX}/keys", params=params, headers=AUTH)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-1] == problem
    assert problem in error["msg"]


async def test_tags_invalidation(cache: InMemoryCache, http: httpx.AsyncClient) -> None:
    await cache.set("p:1", 1, tags=["catalog"])
    await cache.set("p:2", 2, tags=["catalog", "sale"])
    await cache.set("p:3", 3, tags=["other"])

    response = await http.post(
        f"{PREFIX}/tags/invalidate", json={"tags": ["catalog", "sale"]}, headers=AUTH
    )

    assert response.status_code == 200
    body = response.json()
    assert body["keys_invalidated"] == 2
    assert body["tags"] == ["catalog", "sale"]
    assert body["message"] == "Cache invalidated for tags: catalog, sale"
    assert not await cache.exists("p:1")
    assert not await cache.exists("p:2")
    assert await cache.get("p:3") == 3


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"tags": []},
        {"tags": [""]},
        {"tags": "catalog"},
        {"tags": ["a\nb"]},
        {"tags": ["x" * 1025]},
        {"tags": [f"t{i}" for i in range(101)]},
        {"tags": ["a"], "unexpected": True},
        [],
    ],
)
async def test_tags_invalidation_refuses_bad_bodies(http: httpx.AsyncClient, body: Any) -> None:
    response = await http.post(f"{PREFIX}/tags/invalidate", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_tags_invalidation_refuses_broken_json(http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{PREFIX}/tags/invalidate",
        content=b'{"tags": [',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize("key", ["user:5", "a/b/c", "sp ace", "\u043a\u043b\u044e\u0447", "?#%"])
async def test_delete_one_key(cache: InMemoryCache, http: httpx.AsyncClient, key: str) -> None:
    await cache.set(key, SECRET)
    await cache.set("bystander", 1)

    url = f"{PREFIX}/keys/{quote(key, safe='')}"
    first = await http.delete(url, headers=AUTH)
    second = await http.delete(url, headers=AUTH)

    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["deleted"] is True
    assert second.json()["deleted"] is False
    assert not await cache.exists(key)
    assert await cache.get("bystander") == 1


@pytest.mark.parametrize(("path", "problem"), [("a%00b", "NUL"), ("k" * 1025, "1024")])
async def test_delete_refuses_invalid_keys(
    http: httpx.AsyncClient, path: str, problem: str
) -> None:
    response = await http.delete(f"{PREFIX}/keys/{path}", headers=AUTH)
    assert response.status_code == 422
    assert problem in response.json()["detail"][0]["msg"]


class _Unlistable(NullCache):
    """A user's own cache that does not implement key browsing."""

    scan_keys = CacheInterface.scan_keys


async def test_key_browsing_on_a_cache_that_cannot_list_keys_is_501() -> None:
    async with client(app_for(_Unlistable())) as http:
        response = await http.get(f"{PREFIX}/keys", headers=AUTH)
    assert response.status_code == 501
    assert "key browsing" in response.json()["detail"]["message"]
    assert response.headers["cache-control"] == "no-store"


async def test_health(cache: InMemoryCache, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{PREFIX}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "redis": "disabled", "memory": "active"}

    await cache.aclose()
    closed = await http.get(f"{PREFIX}/health")
    assert closed.status_code == 503
    assert closed.json()["status"] == "unavailable"


async def test_health_is_degraded_not_down_when_redis_is_unreachable() -> None:
    unreachable = RedisCache("redis://127.0.0.1:1/0", prefix="never-reached:")
    await unreachable.get("anything")  # fail-safe: a miss, and the status records it
    async with client(app_for(unreachable)) as http:
        response = await http.get(f"{PREFIX}/health")
        status = (await http.get(f"{PREFIX}/status")).json()
        keys = await http.get(f"{PREFIX}/keys", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["redis"] == "disconnected"
    assert status["redis"]["status"] == "disconnected"
    assert status["redis"]["errors"] >= 1
    assert keys.status_code == 503
    assert "try again" in keys.json()["detail"]["message"]
    await unreachable.aclose()


async def test_dashboard_is_a_self_contained_page(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{PREFIX}/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for element in ("hit-rate", "ops-per-second", "latency-p50", "latency-p99", "memory"):
        assert f'id="{element}"' in page
    assert 'id="redis-status"' in page
    assert 'id="tenants"' in page
    assert "http://" not in page  # nothing from a CDN
    assert "https://" not in page
    csp = response.headers["content-security-policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert page.count(f'nonce="{nonce}"') == 2  # the one script and the one style
    assert "{{nonce}}" not in page
    again = await http.get(f"{PREFIX}/dashboard")
    assert nonce not in again.headers["content-security-policy"]


async def test_prometheus_text_at_the_app_level(
    cache: InMemoryCache, http: httpx.AsyncClient
) -> None:
    await cache.set("p", 1)
    await cache.get("p")
    await cache.get("q")

    response = await http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'stratacache_cache_hits_total{cache="default",tier="memory"} 1.0' in text
    assert 'stratacache_cache_misses_total{cache="default",tier="memory"} 1.0' in text
    assert "stratacache_redis_up" not in text
    assert (await http.get("/metrics", headers={"X-API-Key": "wrong"})).status_code == 401


async def test_prometheus_reports_an_unreachable_redis() -> None:
    unreachable = RedisCache("redis://127.0.0.1:1/0", prefix="never-reached:")
    async with client(app_for(unreachable)) as http:
        text = (await http.get("/metrics")).text
    assert 'stratacache_redis_up{cache="default"} 0.0' in text


async def test_prometheus_falls_back_to_cache_counters() -> None:
    async with client(app_for(NullCache())) as http:  # the one cache without a monitor
        text = (await http.get("/metrics")).text
    assert 'stratacache_cache_hits_total{cache="default",tier="all"} 0.0' in text


async def test_a_failing_monitor_falls_back_to_the_cache_counters(cache: InMemoryCache) -> None:
    class Broken:
        def get_performance_stats(self) -> dict[str, Any]:
            raise RuntimeError("monitor down")

    app = FastAPI()
    app.include_router(management_router(cache, api_keys=[KEY], monitor=Broken()))
    await cache.set("x", 1)
    async with client(app) as http:
        metrics = await http.get(f"{PREFIX}/metrics")
        status = await http.get(f"{PREFIX}/status")
    assert metrics.status_code == status.status_code == 200
    assert metrics.json()["source"] == "cache_stats"
    assert status.json()["performance"]["source"] == "cache_stats"


async def test_router_mounts_under_any_prefix_and_keeps_no_store(cache: InMemoryCache) -> None:
    app = FastAPI()
    app.include_router(management_router(cache, api_keys=[KEY], prefix="/ops/cache"))
    async with client(app) as http:
        ok = await http.get("/ops/cache/status")
        refused = await http.post("/ops/cache/invalidate", params={"pattern": "*"})
        invalid = await http.post("/ops/cache/invalidate", params={"pattern": "\x00"}, headers=AUTH)
    assert (ok.status_code, refused.status_code, invalid.status_code) == (200, 401, 422)
    for response in (ok, refused, invalid):
        assert response.headers["cache-control"] == "no-store"


# -- what every answer carries, and never carries ---------------------------------------------


def _requests() -> list[tuple[str, str, dict[str, Any]]]:
    wrong = {"X-API-Key": "wrong"}
    return [
        ("GET", f"{PREFIX}/status", {}),
        ("GET", f"{PREFIX}/status", {"headers": AUTH}),
        ("GET", f"{PREFIX}/status", {"headers": wrong}),
        ("GET", f"{PREFIX}/metrics", {}),
        ("GET", f"{PREFIX}/invalidation-stats", {}),
        ("GET", f"{PREFIX}/invalidation-recommendations", {}),
        ("GET", f"{PREFIX}/keys", {"headers": AUTH}),
        ("GET", f"{PREFIX}/keys", {}),
        ("GET", f"{PREFIX}/keys", {"headers": AUTH, "params": {"limit": 5000}}),
        ("POST", f"{PREFIX}/invalidate", {"headers": AUTH, "params": {"pattern": "nothing:*"}}),
        ("POST", f"{PREFIX}/invalidate", {"headers": AUTH, "params": {"pattern": ""}}),
        ("POST", f"{PREFIX}/tags/invalidate", {"headers": AUTH, "json": {"tags": ["none"]}}),
        ("DELETE", f"{PREFIX}/keys/absent", {"headers": AUTH}),
        ("DELETE", f"{PREFIX}/keys/absent", {"headers": wrong}),
        ("GET", f"{PREFIX}/dashboard", {}),
        ("GET", f"{PREFIX}/health", {}),
        ("GET", f"{PREFIX}/no-such-endpoint", {}),
        ("PUT", f"{PREFIX}/status", {}),
        ("GET", "/metrics", {}),
        ("GET", "/openapi.json", {}),
    ]


async def test_every_answer_is_no_store_and_carries_no_value_or_key(
    cache: InMemoryCache, http: httpx.AsyncClient
) -> None:
    await cache.set_many({f"secret:{i}": {"payload": SECRET} for i in range(20)})
    await cache.set("tagged", SECRET, tags=["none"])
    statuses = set()
    for method, url, options in _requests():
        response = await http.request(method, url, **options)
        statuses.add(response.status_code)
        assert response.headers.get("cache-control") == "no-store", (method, url)
        assert response.headers.get("x-content-type-options") == "nosniff"
        assert SECRET not in response.text, (method, url)
        assert KEY not in response.text, (method, url)
    assert {200, 401, 404, 405, 422} <= statuses


async def test_the_app_serves_the_cache_it_builds_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CACHE_PRESET", "simple")
    monkeypatch.delenv("CACHE_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("CACHE_CUSTOM_CONFIG", raising=False)
    monkeypatch.setenv("API_KEY", "from-env")
    monkeypatch.setenv("ADDITIONAL_API_KEYS", " second , ,third")
    app = create_app_from_env()

    async with client(app) as http:
        before = await http.get(f"{PREFIX}/status")
        health_before = await http.get(f"{PREFIX}/health")
        async with app.router.lifespan_context(app):
            status = (await http.get(f"{PREFIX}/status")).json()
            accepted = [
                (await http.post(f"{PREFIX}/invalidate?pattern=x", headers={"X-API-Key": key}))
                for key in ("from-env", "second", "third")
            ]
            refused = await http.post(f"{PREFIX}/invalidate?pattern=x", headers={"X-API-Key": ""})
            cache = app.state.stratacache.cache
        after = await http.get(f"{PREFIX}/health")

    assert before.status_code == 503
    assert "lifespan" in before.json()["detail"]["message"]
    assert health_before.status_code == 503
    assert status["preset"] == "simple"
    assert status["memory"]["max_size"] == 100
    assert [response.status_code for response in accepted] == [200, 200, 200]
    assert refused.status_code == 401
    assert isinstance(cache, InMemoryCache)
    assert after.status_code == 503  # closed on shutdown


def create_app_from_env() -> FastAPI:
    from stratacache.web._app import create_app

    return create_app()


async def test_the_app_connects_and_closes_a_given_cache() -> None:
    cache = InMemoryCache()
    app = app_for(cache)
    async with app.router.lifespan_context(app):
        await cache.set("alive", 1)
    with pytest.raises(Exception, match="closed"):
        await cache.set("dead", 1)


async def test_invalidation_patterns_are_shown_to_key_holders_only(
    cache: InMemoryCache, http: httpx.AsyncClient
) -> None:
    tenant_pattern = "t:acme-corp:*"
    for _ in range(30):  # often enough for a "frequent pattern" recommendation
        await cache.invalidate_pattern(tenant_pattern)

    anonymous = [
        (await http.get(f"{PREFIX}/{path}")).text
        for path in ("invalidation-stats", "invalidation-recommendations", "metrics")
    ]
    holder = [
        (await http.get(f"{PREFIX}/{path}", headers=AUTH)).text
        for path in ("invalidation-stats", "invalidation-recommendations", "metrics")
    ]

    for text in anonymous:
        assert "acme-corp" not in text
    assert "<pattern>" in anonymous[1]  # the advice is kept, the name is not
    for text in holder:
        assert "acme-corp" in text
    stats = (await http.get(f"{PREFIX}/invalidation-stats")).json()
    assert stats["total_invalidations"] == 30
    assert stats["patterns"]["patterns_redacted"] is True
