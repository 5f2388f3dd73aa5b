"""Auto-pipelining: concurrent GETs and SETs share pipelines; nobody gets another's reply."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from stratacache import (
    CacheInterface,
    ClientOptions,
    Codec,
    ConfigurationError,
    GenericRedisCache,
    RedisCache,
    ValidationError,
)

from redis_servers import RedisCluster, RedisSentinel, RedisServer

pytestmark = pytest.mark.redis

ROOMY = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)
EAGER = ClientOptions(connect_timeout=2.0, operation_timeout=2.0, pipeline_after=1)
"""Pipelines everything that finds one command in flight."""


async def _each_task_writes_and_reads_its_own_keys(cache: CacheInterface, tasks: int) -> None:
    async def worker(task: int) -> list[tuple[int, object]]:
        wrong = []
        for round_ in range(10):
            key = f"t{task}:{round_ % 3}"
            await cache.set(key, [task, round_])
            got = await cache.get(key)
            if got != [task, round_]:
                wrong.append((task, got))
        return wrong

    results = await asyncio.gather(*(worker(n) for n in range(tasks)))
    assert [w for w in results if w] == []


async def test_two_hundred_tasks_share_pipelines_on_a_few_connections(
    redis_server: RedisServer,
) -> None:
    options = ClientOptions(connect_timeout=2.0, operation_timeout=2.0, pipeline_after=3)
    async with RedisCache(redis_server.url, prefix="p:", options=options) as cache:
        await _each_task_writes_and_reads_its_own_keys(cache, tasks=200)
        stats = cache.get_stats()
        # Our pipelines and direct commands together used at most 3 connections (the
        # inspection client is the one more).
        clients = int(redis_server.info("clients")["connected_clients"])
    assert stats["errors"] == 0
    assert stats["sets"] == 2_000
    assert stats["hits"] == 2_000
    assert stats["pipelined"] > 3_000  # of 4,000 commands, nearly all went in pipelines
    assert clients <= 3 + 1


async def test_two_tier_reads_writes_and_invalidations_are_pipelined(
    redis_server: RedisServer,
) -> None:
    """A set is SET + PUBLISH (with a memory tier); a read without one is GET + PTTL.

    Writes made while a PUBLISH is out share the next one.
    """
    options = ClientOptions(connect_timeout=2.0, operation_timeout=2.0, pipeline_after=2)
    async with (
        GenericRedisCache(redis_server.url, namespace="w", options=options) as writer,
        GenericRedisCache(redis_server.url, namespace="w", options=options) as watcher,
        GenericRedisCache(
            redis_server.url, namespace="w", options=options, enable_memory_cache=False
        ) as reader,
    ):
        await watcher.set("t0:0", "old")
        assert await watcher.get("t0:0") == "old"  # now in the watcher's memory tier
        await _each_task_writes_and_reads_its_own_keys(writer, tasks=200)
        got = await asyncio.gather(*(reader.get(f"t{n}:0") for n in range(200)))
        assert got == [[n, 9] for n in range(200)]
        await reader.set_many({f"many{n}": n for n in range(100)})
        assert await writer.get_many([f"many{n}" for n in range(100)]) == {
            f"many{n}": n for n in range(100)
        }
        for _ in range(200):  # bounded: the writer's pipelined PUBLISH reaches the watcher
            if await watcher.get("t0:0") == [0, 9]:
                break
            await asyncio.sleep(0.01)  # wall-clock: the invalidation message in flight
        assert await watcher.get("t0:0") == [0, 9]
        written, read = writer.get_stats(), reader.get_stats()
        heard = watcher.get_stats()["invalidations_received"]
    assert written["errors"] == read["errors"] == 0
    assert written["pipelined"] > 1_900  # nearly all of its 2,000 SETs
    assert heard < 200  # the keys of 2,000 writes, in a few messages (see _bus)
    assert read["pipelined"] > 300  # of 200 x (GET + PTTL) and 100 SETs


async def test_a_command_group_fails_as_one_caller(redis_server: RedisServer) -> None:
    async with GenericRedisCache(
        redis_server.url, namespace="g", options=EAGER, enable_memory_cache=False
    ) as cache:
        for n in range(20):
            await cache.set(f"k{n}", n)
        await cache.set("list", "placeholder")
        [stored] = [key async for key in cache.client.scan_iter(match="*list")]
        await cache.client.delete(stored)
        await cache.client.rpush(stored, "x")  # its GET fails (WRONGTYPE), its PTTL does not
        keys = [f"k{n}" for n in range(10)] + ["list"] + [f"k{n}" for n in range(10, 20)]
        results = await asyncio.gather(*(cache.get(key, "default") for key in keys))
        stats = cache.get_stats()
    assert results == [*range(10), "default", *range(10, 20)]
    assert stats["errors_by_class"] == {"ResponseError": 1}
    assert stats["pipelined"] == 2 * 20  # every get but the first: GET + PTTL


async def test_concurrent_get_many_calls_share_pipelines(
    redis_url: str, unique_prefix: str
) -> None:
    async with RedisCache(redis_url, prefix=unique_prefix, options=EAGER) as cache:
        await cache.set_many({f"k{n}": n for n in range(100)})
        groups = [[f"k{n}" for n in range(start, start + 10)] for start in range(0, 100, 10)]
        found = await asyncio.gather(*(cache.get_many(group) for group in groups))
        assert found == [{key: int(key[1:]) for key in group} for group in groups]
        assert cache.get_stats()["pipelined"] == 9  # every MGET but the first
        await cache.clear()


async def test_a_caller_alone_is_never_pipelined(redis_url: str, unique_prefix: str) -> None:
    async with RedisCache(redis_url, prefix=unique_prefix, options=ROOMY) as cache:
        for n in range(50):
            await cache.set(f"k{n}", n)
            assert await cache.get(f"k{n}") == n
        assert cache.get_stats()["pipelined"] == 0
        await cache.clear()


async def test_callers_cancelled_while_queued_have_their_commands_dropped(
    redis_url: str, unique_prefix: str
) -> None:
    async with RedisCache(redis_url, prefix=unique_prefix, options=EAGER) as cache:
        await cache.set_many({f"k{n}": n for n in range(100)})
        tasks = [asyncio.create_task(cache.get(f"k{n}")) for n in range(100)]
        await asyncio.sleep(0)  # every task runs to its first wait: k0 sent, the rest queued
        for task in tasks[1::2]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results[0::2] == list(range(0, 100, 2))
        assert all(isinstance(r, asyncio.CancelledError) for r in results[1::2])
        assert cache.get_stats()["pipelined"] == 49  # k2 ... k98: the cancelled went nowhere
        await cache.clear()


async def test_an_error_reply_fails_only_its_own_command(
    redis_url: str, unique_prefix: str
) -> None:
    async with RedisCache(redis_url, prefix=unique_prefix, options=EAGER) as cache:
        await cache.set_many({f"k{n}": n for n in range(20)})
        await cache.client.rpush(unique_prefix + "list", "x")  # GET on it: WRONGTYPE
        keys = [f"k{n}" for n in range(10)] + ["list"] + [f"k{n}" for n in range(10, 20)]
        results = await asyncio.gather(*(cache.get(key, "default") for key in keys))
        assert results == [*range(10), "default", *range(10, 20)]
        stats = cache.get_stats()
        assert stats["errors_by_class"] == {"ResponseError": 1}
        assert stats["pipelined"] == 20
        await cache.clear()


async def test_closing_lets_commands_already_asked_for_finish(
    redis_url: str, unique_prefix: str
) -> None:
    cache = RedisCache(redis_url, prefix=unique_prefix, options=EAGER)
    await cache.set("k", "v")
    gets = [asyncio.create_task(cache.get("k", "default")) for _ in range(20)]
    await asyncio.sleep(0)  # one sent, 19 queued
    await cache.aclose()
    assert all(get.done() for get in gets)
    assert [get.result() for get in gets] == ["v"] * 20
    assert cache.get_stats()["errors"] == 0
    async with RedisCache(redis_url, prefix=unique_prefix, options=ROOMY) as cleaner:
        await cleaner.clear()


async def test_closing_fails_what_a_hung_server_never_answers(redis_server: RedisServer) -> None:
    # The first GET times out at 1.5 s; the pipeline of the other 19 is then out, and
    # aclose() gives up waiting on it at 2 s: it is cancelled, its callers get a miss.
    options = ClientOptions(connect_timeout=1.5, operation_timeout=1.5, pipeline_after=1)
    cache = RedisCache(redis_server.url, prefix="hung:", options=options)
    await cache.set("k", "v")
    redis_server.pause(10)  # CLIENT PAUSE: commands wait, unanswered
    gets = [asyncio.create_task(cache.get("k", "default")) for _ in range(20)]
    await asyncio.sleep(0.05)  # wall-clock: the first GET is out, waiting on the server
    started = time.perf_counter()
    await cache.aclose()
    closing = time.perf_counter() - started
    assert all(get.done() for get in gets)
    assert [get.result() for get in gets] == ["default"] * 20  # a miss: nothing raised
    assert 1.9 <= closing <= 4.0  # DRAIN_SECONDS, not the pause's 10 s


async def test_kept_connections_killed_by_the_server_are_replaced_without_an_error(
    redis_server: RedisServer,
) -> None:
    """Redis dropped them (a restart, an idle timeout, CLIENT KILL): one retry each."""
    async with RedisCache(redis_server.url, prefix="kept:", options=ROOMY) as cache:
        await cache.set_many({f"k{n}": n for n in range(50)})
        assert await asyncio.gather(*(cache.get(f"k{n}") for n in range(50))) == [*range(50)]
        killed = redis_server.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        got = await asyncio.gather(*(cache.get(f"k{n}") for n in range(50)))
        await cache.set("after", "kill")
        assert await cache.get("after") == "kill"
        stats = cache.get_stats()
    assert killed >= 1
    assert got == [*range(50)]
    assert stats["errors"] == 0


async def test_closing_gives_the_kept_connections_back_to_an_injected_clients_pool(
    redis_server: RedisServer,
) -> None:
    import redis.asyncio as aioredis

    pool = aioredis.ConnectionPool.from_url(redis_server.url, max_connections=4)
    client = aioredis.Redis.from_pool(pool)
    try:
        async with RedisCache(client=client, prefix="inj:", close_client=False) as cache:
            await cache.set("k", "v")
            assert await asyncio.gather(*(cache.get("k") for _ in range(40))) == ["v"] * 40
        # Had the cache kept its 4 connections, the pool would have none left to lend.
        stored = Codec().encode("v", "k")
        assert await asyncio.gather(*(client.get("inj:k") for _ in range(4))) == [stored] * 4
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"decode_responses": True}, "decode_responses=False"),
        ({"encoding": "latin-1"}, "'utf-8', not 'latin-1'"),
    ],
)
async def test_a_client_that_would_read_other_bytes_is_refused(
    redis_url: str, settings: dict[str, object], message: str
) -> None:
    """Its reads would all miss, or its keys differ from the cache's UTF-8 ones."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, **settings)
    try:
        with pytest.raises(ConfigurationError, match=re.escape(message)):
            RedisCache(client=client, prefix="refused:")
        with pytest.raises(ConfigurationError, match=re.escape(message)):
            GenericRedisCache(redis_client=client, namespace="refused")
    finally:
        await client.aclose()


async def test_cluster_pipelines_span_slots(redis_cluster: RedisCluster) -> None:
    async with RedisCache(redis_cluster.url, prefix="pc:", options=ROOMY) as cache:
        await _each_task_writes_and_reads_its_own_keys(cache, tasks=100)
        stats = cache.get_stats()
        await cache.clear()
    assert stats["errors"] == 0
    assert stats["pipelined"] > 1_000


async def test_sentinel_pipelines(redis_sentinel: RedisSentinel) -> None:
    async with RedisCache(redis_sentinel.url, prefix="ps:", options=ROOMY) as cache:
        await _each_task_writes_and_reads_its_own_keys(cache, tasks=100)
        stats = cache.get_stats()
        await cache.clear()
    assert stats["errors"] == 0
    assert stats["pipelined"] > 1_000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pipeline_after", 0),
        ("pipeline_after", 2.5),
        ("max_connections", True),
        ("retries", -1),
        ("operation_timeout", 0),
        ("operation_timeout", float("inf")),
        ("connect_timeout", "1"),
    ],
)
def test_bad_client_options_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        ClientOptions(**{field: value})  # type: ignore[arg-type]
