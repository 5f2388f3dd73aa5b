"""RedisCache behaviour beyond the contract: confinement, tags, counters, URLs, clients."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stratacache import ConfigurationError, RedisCache, ValidationError
from stratacache._redis_client import client_from_url, validate_redis_url

from redis_servers import RedisServer

pytestmark = pytest.mark.redis


async def test_clear_and_patterns_never_leave_the_prefix(
    redis_url: str, unique_prefix: str
) -> None:
    glob_prefix = unique_prefix + "p*["  # glob metacharacters in the prefix match only themselves
    neighbour = unique_prefix + "px["
    async with (
        RedisCache(redis_url, prefix=glob_prefix) as mine,
        RedisCache(redis_url, prefix=neighbour) as theirs,
    ):
        await mine.set("a", 1, tags=["t"])
        await theirs.set("a", 2)
        await theirs.set("b", 3)
        assert await mine.invalidate_pattern("*") == 1  # its key, not its tag index
        await mine.set("a", 1, tags=["t"])
        await mine.clear()
        assert await theirs.get_many(["a", "b"]) == {"a": 2, "b": 3}
        assert await mine.invalidate_tags("t") == 0  # clear() took the index too
        await theirs.clear()


async def test_clear_without_a_prefix_refuses_to_empty_the_database(redis_url: str) -> None:
    async with RedisCache(redis_url) as cache:
        with pytest.raises(ConfigurationError, match="give the cache a prefix"):
            await cache.clear()


async def test_a_tagged_counter_counts_exactly_and_keeps_its_tag(
    redis_url: str, unique_prefix: str
) -> None:
    async with RedisCache(redis_url, prefix=unique_prefix) as cache:
        await cache.set("n", 5, ttl=100, tags=["counters"])
        results = await asyncio.gather(*(cache.incr("n") for _ in range(20)))
        assert sorted(results) == list(range(6, 26))
        assert 99 <= (await cache.get_ttl("n") or 0) <= 100  # the TTL is kept
        assert await cache.invalidate_tags("counters") == 1
        await cache.set("text", "abc", tags=["t"])
        with pytest.raises(ValidationError, match="not an int"):
            await cache.incr("text")
        await cache.set("big", 2**63 - 1, tags=["t"])
        with pytest.raises(ValidationError, match="64-bit"):
            await cache.incr("big")
        assert await cache.get_many(["text", "big"]) == {"text": "abc", "big": 2**63 - 1}
        assert await cache.invalidate_tags("t") == 2  # a refused incr keeps the tags
        await cache.clear()


async def test_expire_keeps_the_tag_index_alive_as_long_as_the_entry(
    redis_url: str, unique_prefix: str
) -> None:
    async with RedisCache(redis_url, prefix=unique_prefix) as cache:
        await cache.set("k", 1, ttl=10, tags=["t"])
        assert await cache.expire("k", 1000)
        index_ttl = await cache.client.pttl(unique_prefix + "\x00tag:t")
        assert index_ttl > 900_000
        assert await cache.expire("k", 0)
        assert await cache.client.pttl(unique_prefix + "\x00tag:t") == -1
        await cache.clear()


async def test_an_injected_client_can_stay_open(redis_url: str, unique_prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    async with RedisCache(client=client, prefix=unique_prefix, close_client=False) as cache:
        await cache.set("k", "v")
        assert cache.url is None
    assert await client.get(unique_prefix + "k") is not None  # still usable
    await client.delete(unique_prefix + "k")
    await client.aclose()


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        (42, "redis_url must be a string"),
        ("", "redis_url cannot be empty"),
        ("   ", "redis_url cannot be empty"),
        ("http://localhost", "redis_url must start with 'redis://'"),
        ("localhost:6379", "redis_url must start with 'redis://'"),
        ("redis://", "must include host information"),
        ("unix://", "socket path"),
    ],
)
def test_bad_urls_are_refused_with_the_documented_messages(url: Any, phrase: str) -> None:
    with pytest.raises(ValidationError, match=phrase):
        validate_redis_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "rediss://user:pw@example.com:6380/1",
        "unix:///tmp/redis.sock",
        "redis+cluster://127.0.0.1:7000",
        "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/2",
    ],
)
async def test_every_scheme_builds_a_client_without_connecting(url: str) -> None:
    client = client_from_url(url)
    assert client is not None
    await client.aclose()


def test_a_sentinel_url_needs_its_service_name() -> None:
    with pytest.raises(ConfigurationError, match="service name"):
        client_from_url("redis+sentinel://127.0.0.1:26379")


def _connected_clients(server: RedisServer) -> int:
    info = server.command("INFO", "clients")
    return int(info["connected_clients"])


async def test_each_event_loop_gets_a_client_closed_as_that_loop_ends(
    redis_server: RedisServer,
) -> None:
    baseline = _connected_clients(redis_server)
    async with RedisCache(redis_server.url, prefix="loops:") as cache:
        await cache.set("k", "home")
        assert _connected_clients(redis_server) == baseline + 1

        async def elsewhere() -> tuple[object, int]:
            value = await cache.get("k")
            return value, _connected_clients(redis_server)

        # Three threads, one after another, each running (and ending) its own loop.
        for _ in range(3):
            value, during = await asyncio.to_thread(asyncio.run, elsewhere())
            assert value == "home"
            assert during == baseline + 2  # its own connection, beside the home loop's
            assert _connected_clients(redis_server) == baseline + 1  # closed with its loop
    assert _connected_clients(redis_server) == baseline


async def test_an_injected_client_refuses_a_second_live_loop(
    redis_url: str, unique_prefix: str
) -> None:
    import redis.asyncio as aioredis

    async with RedisCache(client=aioredis.Redis.from_url(redis_url), prefix=unique_prefix) as cache:
        await cache.set("k", "v")
        with pytest.raises(ConfigurationError, match="give it a URL"):
            await asyncio.to_thread(asyncio.run, cache.get("k"))
        assert await cache.get("k") == "v"  # still fine in its own loop
        await cache.delete("k")


async def test_get_many_under_a_non_ascii_prefix_finds_what_set_stored(redis_url: str) -> None:
    # get_many encodes its keys itself (to bytes, in one go); set leaves it to redis-py.
    async with RedisCache(redis_url, prefix="café:ünï:") as cache:
        await cache.set_many({"a": 1, "b": 2})
        await cache.set("c", 3)
        assert await cache.get_many(["a", "b", "c", "missing"]) == {"a": 1, "b": 2, "c": 3}
        assert await cache.get_many([]) == {}
        await cache.clear()
