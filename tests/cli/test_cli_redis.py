"""The CLI against a real Redis: status, stats, keys, invalidate, warm and doctor findings.

Each test works in a namespace of its own (``unique_prefix``), handed to the CLI the
way users configure one: ``CACHE_CUSTOM_CONFIG='{"namespace": ...}'``.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.cli_support import API_KEY, Cli
from stratacache import GenericRedisCache

from redis_servers import RedisServer

pytestmark = pytest.mark.redis


async def _fill(url: str, namespace: str, keys: list[str]) -> None:
    async with GenericRedisCache(url, namespace=namespace) as cache:
        for key in keys:
            await cache.set(key, {"key": key}, ttl=120)


async def _present(url: str, namespace: str, keys: list[str]) -> dict[str, Any]:
    async with GenericRedisCache(url, namespace=namespace, enable_memory_cache=False) as cache:
        return await cache.get_many(keys)


async def _clear(url: str, namespace: str) -> None:
    async with GenericRedisCache(url, namespace=namespace) as cache:
        await cache.clear()


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch, unique_prefix: str, redis_url: str) -> Iterator[str]:
    """A fresh namespace, configured through the environment, removed afterwards."""
    name = unique_prefix.rstrip(":")
    monkeypatch.setenv("CACHE_REDIS_URL", redis_url)
    monkeypatch.setenv("CACHE_CUSTOM_CONFIG", json.dumps({"namespace": name}))
    yield name
    asyncio.run(_clear(redis_url, name))


KEYS = ["user:1", "user:2", "post:1"]


def test_status_reports_the_connected_redis(cli: Cli, namespace: str, redis_sync: Any) -> None:
    code, data = cli.json("status")
    assert code == 0
    assert data["backend"] == "two-tier"
    assert data["namespace"] == namespace
    assert data["redis"]["status"] == "connected"
    assert data["redis"]["version"] == redis_sync.info("server")["redis_version"]
    assert 0 <= data["redis"]["p50_ms"] <= data["redis"]["max_ms"]
    assert data["memory"]["status"] == "active"
    human = cli("status")
    assert human.exit_code == 0
    assert "connected" in human.stdout


def test_stats_counts_the_namespace_keys(cli: Cli, namespace: str, redis_url: str) -> None:
    asyncio.run(_fill(redis_url, namespace, KEYS))
    code, data = cli.json("stats")
    assert code == 0
    assert data["namespace_keys"] == {"count": 3, "complete": True}
    assert data["redis"]["keyspace_hits"] >= 0
    human = cli("stats")
    assert human.exit_code == 0
    assert "keys in namespace" in human.stdout


def test_keys_lists_the_namespace_only(cli: Cli, namespace: str, redis_url: str) -> None:
    asyncio.run(_fill(redis_url, namespace, KEYS))
    asyncio.run(_fill(redis_url, namespace + "-sibling", ["user:9"]))
    try:
        code, data = cli.json("keys")
        assert (code, sorted(data["keys"]), data["truncated"]) == (0, sorted(KEYS), False)
        code, data = cli.json("keys", "user:*")
        assert sorted(data["keys"]) == ["user:1", "user:2"]
        code, data = cli.json("keys", "--limit", "1")
        assert (data["count"], data["truncated"]) == (1, True)
    finally:
        asyncio.run(_clear(redis_url, namespace + "-sibling"))


def test_invalidate_removes_matching_keys_only(cli: Cli, namespace: str, redis_url: str) -> None:
    asyncio.run(_fill(redis_url, namespace, KEYS))
    result = cli("invalidate", "user:*")
    assert result.exit_code == 0
    assert "Invalidated 2 key(s) matching 'user:*'" in result.stdout
    assert asyncio.run(_present(redis_url, namespace, KEYS)) == {"post:1": {"key": "post:1"}}


def test_invalidate_everything_stays_inside_the_namespace(
    cli: Cli, namespace: str, redis_url: str
) -> None:
    sibling = namespace + "-sibling"
    asyncio.run(_fill(redis_url, namespace, KEYS))
    asyncio.run(_fill(redis_url, sibling, KEYS))
    try:
        code, data = cli.json("invalidate", "*", "--yes")
        assert (code, data["keys_invalidated"]) == (0, 3)
        assert asyncio.run(_present(redis_url, namespace, KEYS)) == {}
        assert len(asyncio.run(_present(redis_url, sibling, KEYS))) == 3
    finally:
        asyncio.run(_clear(redis_url, sibling))


def test_a_bad_pattern_exits_2(cli: Cli, namespace: str) -> None:
    result = cli("invalidate", "")
    assert result.exit_code == 2
    assert "patterns must not be empty" in result.stderr


async def test_invalidate_reaches_the_memory_tier_of_running_processes(
    cli: Cli, namespace: str, redis_url: str
) -> None:
    async with GenericRedisCache(redis_url, namespace=namespace) as service:
        await service.set("user:1", "cached")
        assert await service.get("user:1") == "cached"  # now in its memory tier too
        result = await asyncio.to_thread(cli, "invalidate", "user:*")
        assert result.exit_code == 0
        deadline = time.monotonic() + 2
        while await service.get("user:1") is not None:  # bounded: the pub/sub message
            assert time.monotonic() < deadline, "the service's memory tier kept user:1"
            await asyncio.sleep(0.01)


def test_warm_fills_the_configured_cache(
    cli: Cli, namespace: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"cli_redis_warmers_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            from stratacache import CacheWarmer

            def warmer(cache):
                made = CacheWarmer(cache)
                for number in range(20):
                    made.register(f"warm:{number}", lambda number=number: {"n": number})
                return made
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = cli("warm", f"{module}:warmer", "--concurrency", "4")
    assert result.exit_code == 0, result.output
    assert "Warmed 20/20" in result.stdout
    assert "dry run" not in result.stderr
    stored = asyncio.run(_present(redis_url, namespace, [f"warm:{n}" for n in range(20)]))
    assert stored == {f"warm:{n}": {"n": n} for n in range(20)}


def test_doctor_against_the_shared_redis(
    cli: Cli, namespace: str, monkeypatch: pytest.MonkeyPatch, redis_sync: Any
) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    code, data = cli.json("doctor")
    levels = {finding["check"]: finding["level"] for finding in data["findings"]}
    assert levels["redis.reachable"] == "ok"
    assert levels["redis.version"] == "ok"
    assert levels["cache.invalidation_channel"] == "ok"
    assert levels["cache.round_trip"] == "ok"
    # The shared server's policy is not ours to set: the finding must follow it.
    good = redis_sync.info("memory")["maxmemory_policy"] in ("allkeys-lru", "allkeys-lfu")
    assert (levels["redis.maxmemory_policy"] == "ok") == good
    warned = any(level in ("warning", "error") for level in levels.values())
    assert code == (1 if warned else 0)
    assert data["redis"]["p50_ms"] <= data["redis"]["max_ms"]


def test_doctor_findings_follow_the_server_memory_policy(
    cli: Cli, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    client = redis_server.client()
    try:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "0")
        code, data = cli.json("doctor", "--redis-url", redis_server.url)
        findings = {finding["check"]: finding for finding in data["findings"]}
        assert code == 1
        policy = findings["redis.maxmemory_policy"]
        assert policy["level"] == "warning"
        assert "noeviction" in policy["message"]
        assert "CONFIG SET maxmemory-policy allkeys-lru" in policy["fix"]
        assert findings["redis.maxmemory"]["level"] == "warning"

        client.config_set("maxmemory-policy", "allkeys-random")
        code, data = cli.json("doctor", "--redis-url", redis_server.url)
        policy = next(f for f in data["findings"] if f["check"] == "redis.maxmemory_policy")
        assert (code, policy["level"]) == (1, "warning")
        assert "neither LRU nor LFU" in policy["message"]

        client.config_set("maxmemory-policy", "allkeys-lru")
        client.config_set("maxmemory", "64mb")
        code, data = cli.json("doctor", "--redis-url", redis_server.url)
        assert code == 0, data["findings"]
        assert all(f["level"] in ("ok", "info") for f in data["findings"])
        human = cli("doctor", "--redis-url", redis_server.url)
        assert human.exit_code == 0
        assert "All checks passed" in human.stdout
    finally:
        client.close()


def test_status_and_doctor_when_the_acl_forbids_info(
    cli: Cli, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    admin = redis_server.client()
    try:
        admin.acl_setuser(
            "limited",
            enabled=True,
            passwords=["+limited-pass"],
            keys=["*"],
            channels=["*"],
            commands=["+@all", "-info"],
        )
    finally:
        admin.close()
    url = redis_server.url.replace("redis://", "redis://limited:limited-pass@")
    code, data = cli.json("status", "--redis-url", url)
    assert code == 0
    assert data["redis"]["status"] == "connected"
    assert "INFO failed" in data["redis"]["info_error"]
    assert "limited-pass" not in json.dumps(data)
    code, data = cli.json("stats", "--redis-url", url)
    assert code == 0
    assert "INFO failed" in data["redis"]["info_error"]
    human = cli("stats", "--redis-url", url)  # the table without INFO's numbers
    assert human.exit_code == 0
    assert "INFO failed" in human.stdout
    assert "keys in namespace" in human.stdout
    code, data = cli.json("doctor", "--redis-url", url)
    findings = {finding["check"]: finding for finding in data["findings"]}
    assert code == 1
    assert findings["redis.reachable"]["level"] == "ok"
    assert findings["redis.info"]["level"] == "warning"
    assert "ACL" in findings["redis.info"]["fix"]


def test_doctor_finds_an_invalidation_channel_it_cannot_subscribe(
    cli: Cli, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    admin = redis_server.client()
    try:
        admin.acl_setuser(
            "nosub",
            enabled=True,
            passwords=["+nosub-pass"],
            keys=["*"],
            channels=["*"],
            commands=["+@all", "-subscribe", "-ssubscribe", "-psubscribe"],
        )
    finally:
        admin.close()
    url = redis_server.url.replace("redis://", "redis://nosub:nosub-pass@")
    code, data = cli.json("doctor", "--redis-url", url)
    findings = {finding["check"]: finding for finding in data["findings"]}
    assert code == 1
    assert findings["cache.invalidation_channel"]["level"] == "error"
    assert "SUBSCRIBE" in findings["cache.invalidation_channel"]["fix"]
    assert findings["cache.round_trip"]["level"] == "ok"  # the cache itself works
