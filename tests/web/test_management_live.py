"""The management API served by a real uvicorn over TCP, in front of a real Redis.

Two servers: one in a thread of this process (its cache is checked on the server's
own event loop), and one in a separate process built purely from the environment
(``create_app`` as a uvicorn factory), checked from here through Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from stratacache import ClientOptions, GenericRedisCache
from web.management_support import AUTH, KEY, PREFIX, LiveServer, all_keys, app_for, free_port

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

ROOMY = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)


@pytest.fixture
def server(redis_url: str, unique_prefix: str) -> Iterator[tuple[LiveServer, GenericRedisCache]]:
    cache = GenericRedisCache(redis_url, namespace=unique_prefix, options=ROOMY)
    with LiveServer(app_for(cache)) as live:
        yield live, cache
        live.call(cache.clear())
    # the app's lifespan closed the cache on shutdown
    with pytest.raises(Exception, match="closed"):
        cache._l2._check_open()


@pytest.fixture
async def http(server: tuple[LiveServer, GenericRedisCache]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server[0].url, timeout=10) as http:
        yield http


async def test_invalidate_over_tcp_then_check_the_cache(
    server: tuple[LiveServer, GenericRedisCache], http: httpx.AsyncClient
) -> None:
    live, cache = server
    live.call(cache.set("test:invalidate:123", {"data": "test"}))
    live.call(cache.set("test:keep:1", {"data": "kept"}))

    response = await http.post(
        f"{PREFIX}/invalidate", params={"pattern": "test:invalidate:*"}, headers=AUTH
    )

    assert response.status_code == 200
    assert response.json()["keys_invalidated"] == 1
    assert live.call(cache.get("test:invalidate:123")) is None
    assert live.call(cache.get("test:keep:1")) == {"data": "kept"}
    assert response.headers["cache-control"] == "no-store"


async def test_key_browsing_over_tcp(
    server: tuple[LiveServer, GenericRedisCache], http: httpx.AsyncClient
) -> None:
    live, cache = server
    expected = {f"item:{i:05d}" for i in range(2_500)}
    live.call(cache.set_many(dict.fromkeys(expected, "v")))

    keys, pages = await all_keys(http, limit=1000)

    assert len(keys) == len(set(keys)) == 2_500
    assert set(keys) == expected
    assert max(pages) <= 1000


async def test_status_metrics_and_prometheus_over_tcp(
    server: tuple[LiveServer, GenericRedisCache], http: httpx.AsyncClient
) -> None:
    live, cache = server
    live.call(cache.set("k", 1))
    live.call(cache.get("k"))

    status = (await http.get(f"{PREFIX}/status")).json()
    metrics = await http.get(f"{PREFIX}/metrics")
    prometheus = await http.get("/metrics")

    assert status["redis"]["status"] == "connected"
    assert status["memory"]["status"] == "active"
    assert metrics.status_code == 200
    assert metrics.json()["cache_hits"] >= 1
    assert "stratacache_redis_up" in prometheus.text


@pytest.mark.parametrize(
    "headers",
    [
        [(b"X-API-Key", b"\xff" * 8192)],
        [(b"Authorization", b"Bearer")],
        [(b"Authorization", b"Basic xyz")],
        [(b"X-API-Key", KEY.encode()), (b"X-API-Key", b"other")],
        [(b"Authorization", "Bearer cl\u00e9".encode("latin-1"))],
    ],
    ids=["8-kib-latin-1", "bearer-alone", "basic", "duplicated", "latin-1"],
)
async def test_hostile_credentials_over_tcp_are_401(
    http: httpx.AsyncClient, headers: list[tuple[bytes, bytes]]
) -> None:
    response = await http.post(f"{PREFIX}/invalidate?pattern=x", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["cache-control"] == "no-store"


# -- a separate process, configured by the environment alone ----------------------------------


@pytest.fixture
def env_server(redis_url: str) -> Iterator[tuple[str, str]]:
    namespace = f"stratacache-test-{uuid.uuid4().hex}"
    port = free_port()
    env = {
        **os.environ,
        "CACHE_PRESET": "development",
        "CACHE_REDIS_URL": redis_url,
        "CACHE_CUSTOM_CONFIG": json.dumps({"namespace": namespace}),
        "API_KEY": "process-key",
        "ADDITIONAL_API_KEYS": "",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "stratacache.web._app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--ws",
        "none",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # bounded polling of a real server
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.fail(f"the server exited with {process.returncode}:\n{output[-3000:]}")
            try:
                if httpx.get(f"{url}{PREFIX}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not answer /health within 30 s")
            time.sleep(0.1)
        yield url, namespace
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout:
            process.stdout.close()


async def test_a_server_built_from_the_environment(
    env_server: tuple[str, str], redis_url: str
) -> None:
    url, namespace = env_server
    async with GenericRedisCache(redis_url, namespace=namespace, options=ROOMY) as mine:
        await mine.set_many({f"user:{i}": i for i in range(5)} | {"other": 1})
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            status = (await http.get(f"{PREFIX}/status")).json()
            listed, _ = await all_keys(
                http, pattern="user:*", limit=100, headers={"X-API-Key": "process-key"}
            )
            refused = await http.post(f"{PREFIX}/invalidate", params={"pattern": "user:*"})
            response = await http.post(
                f"{PREFIX}/invalidate",
                params={"pattern": "user:*"},
                headers={"Authorization": "Bearer process-key"},
            )
        assert status["preset"] == "development"
        assert status["redis"]["status"] == "connected"
        assert sorted(listed) == [f"user:{i}" for i in range(5)]
        assert refused.status_code == 401
        assert response.json()["keys_invalidated"] == 5
        assert await mine.get_many([f"user:{i}" for i in range(5)]) == {}
        assert await mine.get("other") == 1
        await mine.clear()
