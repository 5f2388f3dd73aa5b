"""Fault tests: real redis-server processes killed and restarted under load.

Each test owns its server (never the shared one on 6379) and bounds every loop in
count and time. Sleeps marked "wall-clock" pace a real fault, not a TTL.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import time
from functools import partial
from pathlib import Path

import pytest

from stratacache import ClientOptions, GenericRedisCache, RedisCache

from redis_servers import RedisCluster, RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def test_kill_and_restart_under_32_tasks_loses_no_caller(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, prefix="fault:")
    errors: list[BaseException] = []
    slowest = 0.0
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        nonlocal slowest
        for i in range(100_000):
            if stop.is_set():
                return
            try:
                for operation in (partial(cache.set, f"k{n}", i), partial(cache.get, f"k{n}")):
                    started = time.perf_counter()
                    await operation()
                    slowest = max(slowest, time.perf_counter() - started)
            except BaseException as exc:  # anything reaching a caller is a failure
                errors.append(exc)
            await asyncio.sleep(0.002)  # wall-clock: pace the load

    async with cache:
        workers = [asyncio.create_task(worker(n)) for n in range(32)]
        await asyncio.sleep(0.2)  # wall-clock: load before the fault
        redis_server.kill()
        await asyncio.sleep(0.5)  # wall-clock: Redis stays down under load
        await asyncio.to_thread(redis_server.restart)
        restarted = time.perf_counter()
        inspector = redis_server.client()
        try:
            recovered = None
            for attempt in range(300):  # bounded: 300 x 10 ms
                await cache.set("probe", attempt)
                if inspector.get("fault:probe") == str(attempt).encode():
                    recovered = time.perf_counter() - restarted
                    break
                await asyncio.sleep(0.01)  # wall-clock: poll for the write
        finally:
            inspector.close()
            stop.set()
            await asyncio.gather(*workers)
        stats = cache.get_stats()

    assert errors == []
    assert slowest < 1.0, f"an operation took {slowest * 1000:.0f} ms"
    assert recovered is not None, "writes never reached the restarted server"
    assert recovered <= 2.0, f"writes resumed {recovered:.2f} s after the restart"
    assert stats["errors"] > 0  # the outage was seen, counted by class
    assert stats["circuit"] == "closed"


async def test_redis_down_at_start_attaches_when_it_comes_up(redis_server: RedisServer) -> None:
    redis_server.kill()
    async with RedisCache(redis_server.url, prefix="late:") as cache:
        assert await cache.connect() is False
        await asyncio.to_thread(redis_server.restart)
        up = time.perf_counter()
        attached = None
        for _ in range(300):  # bounded: 300 x 10 ms
            await cache.set("k", "v")
            if await cache.get("k") == "v":
                attached = time.perf_counter() - up
                break
            await asyncio.sleep(0.01)  # wall-clock: poll for the attach
        assert attached is not None
        assert attached <= 2.0
        assert (await cache.get_cache_stats())["redis"]["status"] == "connected"


def test_planted_pickles_and_garbage_are_misses_and_run_nothing(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    planted = {
        "pickle": b"\x03" + b"\x00" * 32 + pickle.dumps(Boom()),  # our header, no valid MAC
        "raw": pickle.dumps(Boom()),
        "msgpack-garbage": b"\x01\xc1 0xc1 is never valid msgpack",
        "zstd-garbage": b"\x02 not a zstd frame",
        "digits-garbage": b"12abc",
    }
    inspector = redis_server.client()
    try:
        inspector.mset({f"plant:{key}": data for key, data in planted.items()})
    finally:
        inspector.close()

    async def read_all() -> dict[str, object]:
        async with RedisCache(redis_server.url, prefix="plant:") as cache:
            found = {key: await cache.get(key, "miss") for key in planted}
            return {"found": found, "decode_errors": cache.get_stats()["decode_errors"]}

    result = asyncio.run(read_all())
    assert result["found"] == dict.fromkeys(planted, "miss")
    assert result["decode_errors"] == len(planted)
    assert not marker.exists()


async def test_a_hung_server_opens_the_breaker_and_calls_return_at_once(
    redis_server: RedisServer,
) -> None:
    """CLIENT PAUSE: the first calls time out, then the breaker answers without waiting."""
    errors: list[BaseException] = []
    after_open: list[float] = []
    stop = asyncio.Event()

    async with RedisCache(redis_server.url, prefix="hang:") as cache:

        async def worker(n: int) -> None:
            for _ in range(100_000):
                if stop.is_set():
                    return
                circuit_was_open = cache.get_stats()["circuit"] == "open"
                started = time.perf_counter()
                try:
                    await cache.get(f"k{n}")
                except BaseException as exc:
                    errors.append(exc)
                if circuit_was_open:
                    after_open.append(time.perf_counter() - started)
                await asyncio.sleep(0.002)  # wall-clock: pace the load

        redis_server.pause(2.5)
        workers = [asyncio.create_task(worker(n)) for n in range(32)]
        await asyncio.sleep(2.0)  # wall-clock: the server stays hung under load
        stop.set()
        await asyncio.gather(*workers)
        stats = cache.get_stats()

    assert errors == []
    assert stats["errors_by_class"]["TimeoutError"] >= 3
    assert len(after_open) > 1000
    after_open.sort()
    p99 = after_open[int(len(after_open) * 0.99)]
    assert p99 <= 0.05, f"p99 {p99 * 1000:.1f} ms while the breaker was open"


@pytest.mark.parametrize(
    ("setup", "error_class"),
    [
        (("CONFIG", "SET", "maxmemory", "1"), "OutOfMemoryError"),
        (("REPLICAOF", "127.0.0.1", "1"), "ReadOnlyError"),
    ],
    ids=["oom", "readonly"],
)
async def test_error_replies_are_counted_never_raised(
    redis_server: RedisServer, setup: tuple[str, ...], error_class: str
) -> None:
    redis_server.command(*setup)
    async with RedisCache(redis_server.url, prefix="err:") as cache:
        await cache.set("k", "v")  # refused by the server: dropped, counted
        stats = cache.get_stats()
        assert await cache.get("k") is None  # reads still work
    assert stats["errors_by_class"][error_class] == 1
    assert stats["redis_status"] == "error"


async def test_a_cluster_primary_killed_under_load_fails_over_without_errors(
    redis_cluster_with_replicas: RedisCluster,
) -> None:
    cluster = redis_cluster_with_replicas
    errors: list[BaseException] = []
    stop = asyncio.Event()

    async with RedisCache(cluster.url, prefix="failover:") as cache:

        async def worker(n: int) -> None:
            for i in range(100_000):
                if stop.is_set():
                    return
                try:
                    await cache.set(f"k{n}", i)
                    await cache.get(f"k{n}")
                except BaseException as exc:  # anything reaching a caller is a failure
                    errors.append(exc)
                await asyncio.sleep(0.005)  # wall-clock: pace the load

        workers = [asyncio.create_task(worker(n)) for n in range(32)]
        await asyncio.sleep(0.2)  # wall-clock: load before the fault
        await asyncio.to_thread(cluster.kill_primary_of, "failover:probe")
        killed = time.perf_counter()
        writable = None
        try:
            for attempt in range(1_000):  # bounded: 1,000 x 10 ms
                await cache.set("probe", attempt)
                if cache.get_stats()["circuit"] == "closed" and await cache.get("probe") == attempt:
                    writable = time.perf_counter() - killed
                    break
                await asyncio.sleep(0.01)  # wall-clock: poll for the failover
        finally:
            stop.set()
            await asyncio.gather(*workers)

    assert errors == []
    assert writable is not None, "the killed primary's slots never became writable"
    print(f"\nfailover: slots writable {writable:.2f} s after the kill")
    assert writable <= 5.0, f"slots writable only {writable:.2f} s after the kill"


async def _delaying_proxy(target: tuple[str, int], delay: float) -> asyncio.Server:
    """A loopback TCP proxy that holds every reply from Redis for ``delay`` seconds."""

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pause: float
    ) -> None:
        try:
            while data := await reader.read(65536):
                if pause:
                    await asyncio.sleep(pause)  # wall-clock: the slow network under test
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*target)
            await asyncio.gather(
                pipe(client_reader, server_writer, 0.0),
                pipe(server_reader, client_writer, delay),
            )
        except asyncio.CancelledError:
            client_writer.close()  # the proxy is closing: end quietly

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_cancelled_gets_never_hand_a_caller_another_callers_value(
    redis_server: RedisServer,
) -> None:
    proxy = await _delaying_proxy(("127.0.0.1", redis_server.port), delay=0.02)
    port = proxy.sockets[0].getsockname()[1]
    try:
        # Generous timeouts: a reply the slow proxy holds past the default 0.25 s on
        # a loaded machine would be a miss, which is not what this test is about.
        roomy = ClientOptions(connect_timeout=5.0, operation_timeout=5.0)
        url = f"redis://127.0.0.1:{port}/0"
        async with RedisCache(url, prefix="cancel:", options=roomy) as cache:
            await cache.set_many({f"k{n}": f"value-{n}" for n in range(50)})
            cancelled = 0
            for round_ in range(20):  # 20 rounds x 50 = 1,000 gets cancelled in flight
                tasks = [asyncio.create_task(cache.get(f"k{n}")) for n in range(50)]
                await asyncio.sleep(0.005)  # wall-clock: let the requests leave
                for task in tasks:
                    cancelled += task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                # Every later read must get its own key's value, never a stale reply.
                for n in range(0, 50, 7):
                    assert await cache.get(f"k{n}") == f"value-{n}", f"round {round_}"
            assert cancelled >= 900  # nearly all were still waiting on the slow replies
            wrong = [n for n in range(50) if await cache.get(f"k{n}") != f"value-{n}"]
            assert wrong == []
    finally:
        proxy.close()
        await proxy.wait_closed()


async def test_killing_the_clusters_pubsub_node_flushes_then_restores_coherence(
    redis_cluster_with_replicas: RedisCluster,
) -> None:
    """The node holding the invalidation subscription dies: L1s flush, then resubscribe."""
    cluster = redis_cluster_with_replicas
    roomy = ClientOptions(connect_timeout=1.0, operation_timeout=1.0)
    async with (
        GenericRedisCache(cluster.url, namespace="bus", options=roomy) as writer,
        GenericRedisCache(cluster.url, namespace="bus", options=roomy) as reader,
    ):
        await writer.set("k", "before")
        for _ in range(100):  # bounded: wait for the writer's invalidation to arrive
            if reader.get_stats()["invalidations_received"]:
                break
            await asyncio.sleep(0.01)  # wall-clock: a real pub/sub delivery
        assert await reader.get("k") == "before"  # now in the reader's memory tier
        assert reader.get_stats()["entries"] == 1
        # Kill the node the reader's subscription lives on.
        await asyncio.to_thread(_subscribed_node(cluster, "stratacache:invalidate:bus:").kill)
        killed = time.perf_counter()
        flushed = resubscribed = None
        for _ in range(1_000):  # bounded: 1,000 x 10 ms
            if flushed is None and reader.get_stats()["entries"] == 0:
                flushed = time.perf_counter() - killed
            if flushed is not None and reader.get_stats()["invalidation_channel"] == "connected":
                resubscribed = time.perf_counter() - killed
                break
            await asyncio.sleep(0.01)  # wall-clock: poll for the loss and the failover
        assert flushed is not None, "the reader's memory tier was never flushed"
        assert flushed <= 1.5, f"memory tier flushed only {flushed:.2f} s after the kill"
        assert resubscribed is not None, "the subscription never came back"
        print(f"\nbus on cluster: flushed {flushed:.2f} s, resubscribed {resubscribed:.2f} s")
        for _ in range(500):  # bounded: the writes resume once the slot fails over
            await writer.set("k", "after")
            if writer.get_stats()["circuit"] == "closed" and await writer.get("k") == "after":
                break
            await asyncio.sleep(0.01)  # wall-clock: wait for the failover
        else:
            raise AssertionError("writes never resumed after 500 attempts")
        assert await reader.get("k") == "after"  # promoted afresh, never the old copy
        await writer.set("k", "latest")
        for _ in range(100):  # bounded: 100 x 1 ms — the 50 ms staleness bound
            if await reader.get("k") == "latest":
                break
            await asyncio.sleep(0.001)  # wall-clock: a real pub/sub delivery
        else:
            raise AssertionError("the reader still serves 'after' 100 ms after the write")


def _subscribed_node(cluster: RedisCluster, channel: str) -> RedisServer:
    """The running node with a subscriber on ``channel`` (NUMSUB is per node)."""
    for server in cluster.running():
        _, count = server.command("PUBSUB", "NUMSUB", channel)
        if count:
            return server
    raise AssertionError(f"nobody subscribes to {channel!r}")
