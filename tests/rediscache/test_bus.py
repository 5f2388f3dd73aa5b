"""The invalidation bus against real Redis servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from stratacache._bus import MAX_KEYS, InvalidationBus

from redis_servers import RedisServer

pytestmark = pytest.mark.redis


class Recorder:
    """Collects what a bus applies and counts its flushes."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, list[str]]] = []
        self.flushes = 0
        self.changed = asyncio.Event()

    async def apply(self, kind: str, items: list[str]) -> None:
        self.applied.append((kind, items))
        self.changed.set()

    async def flush(self) -> None:
        self.flushes += 1
        self.changed.set()


async def until(condition: Callable[[], bool], timeout: float) -> float:
    """Wait (bounded) for ``condition``; returns the seconds it took."""
    started = time.perf_counter()
    for _ in range(10_000):
        if condition():
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            break
        await asyncio.sleep(0.001)  # wall-clock: poll a real server's delivery
    raise AssertionError(f"not within {timeout} s")


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


Pair = tuple[InvalidationBus, Recorder, InvalidationBus, Recorder]


@pytest.fixture
async def pair(client: aioredis.Redis, unique_prefix: str) -> AsyncIterator[Pair]:
    """Two subscribed buses on one channel, each with the recorder it applies to."""
    channel = unique_prefix + "bus"
    a, b = Recorder(), Recorder()
    bus_a = InvalidationBus(lambda: client, channel, apply=a.apply, flush=a.flush)
    bus_b = InvalidationBus(lambda: client, channel, apply=b.apply, flush=b.flush)
    try:
        assert await bus_a.start()
        assert await bus_b.start()
        yield bus_a, a, bus_b, b
    finally:
        await bus_a.aclose()
        await bus_b.aclose()


async def test_others_hear_every_invalidation_and_nobody_hears_itself(pair: Pair) -> None:
    bus_a, a, _, b = pair
    for n in range(200):
        await bus_a.publish("keys", [f"k{n}"])
        await until(lambda n=n: len(b.applied) > n, timeout=1.0)  # type: ignore[misc]
    await bus_a.publish("pattern", ["user:*"])
    await bus_a.publish("tags", ["t1", "t2"])
    await bus_a.publish("clear")
    await until(lambda: len(b.applied) == 203, timeout=1.0)
    assert b.applied[-3:] == [("pattern", ["user:*"]), ("tags", ["t1", "t2"]), ("clear", [])]
    assert a.applied == []  # its own messages are not applied
    assert [items for _, items in b.applied[:200]] == [[f"k{n}"] for n in range(200)]


async def test_keys_invalidated_while_a_message_is_out_leave_together(pair: Pair) -> None:
    bus_a, _, _, b = pair
    # 2,500 writers at once: the first message goes alone; the 2,499 keys (one
    # twice) that waited for it leave in the next one, split at MAX_KEYS.
    keys = [f"k{n}" for n in range(2_500)]
    await asyncio.gather(
        *(bus_a.publish("keys", [key]) for key in keys), bus_a.publish("keys", ["k7"])
    )
    await until(lambda: sum(len(items) for _, items in b.applied) == 2_500, timeout=2.0)
    assert [len(items) for _, items in b.applied] == [1, MAX_KEYS, MAX_KEYS, 499]
    assert sorted(key for _, items in b.applied for key in items) == sorted(keys)
    assert bus_a.published == 4
    await bus_a.publish("keys", ["alone"])  # nothing out: sent at once
    await until(lambda: b.applied[-1] == ("keys", ["alone"]), timeout=1.0)


async def test_keys_waiting_for_a_failed_message_all_get_its_error() -> None:
    sent: list[bytes] = []

    async def failing(channel: str, message: bytes) -> None:
        sent.append(message)
        await asyncio.sleep(0)  # a round trip: the others join the next message meanwhile
        raise ConnectionError("Redis went away")

    recorder = Recorder()
    bus = InvalidationBus(
        lambda: None, "c", apply=recorder.apply, flush=recorder.flush, publish_with=failing
    )
    results = await asyncio.gather(
        *(bus.publish("keys", [f"k{n}"]) for n in range(10)), return_exceptions=True
    )
    assert [type(result) for result in results] == [ConnectionError] * 10
    assert len(sent) == 2  # the first key alone, then the nine that waited for it


async def test_malformed_messages_are_ignored(client: aioredis.Redis, unique_prefix: str) -> None:
    channel = unique_prefix + "bus"
    recorder = Recorder()
    bus = InvalidationBus(lambda: client, channel, apply=recorder.apply, flush=recorder.flush)
    sender = InvalidationBus(lambda: client, channel, apply=recorder.apply, flush=recorder.flush)
    try:
        assert await bus.start()
        await client.publish(channel, b"\xc1 not msgpack")
        await client.publish(channel, b"\x93\xa1x\xa4evil\x90")  # ["x", "evil", []]
        await sender.publish("keys", ["k"])
        await until(lambda: recorder.applied == [("keys", ["k"])], timeout=1.0)
        assert bus.connected
    finally:
        await bus.aclose()


@pytest.mark.slow
async def test_a_lost_subscription_flushes_then_resubscribes(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    recorder = Recorder()
    bus = InvalidationBus(lambda: client, "inv", apply=recorder.apply, flush=recorder.flush)
    try:
        assert await bus.start()
        flushes = recorder.flushes  # one on subscribing
        redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
        flushed_after = await until(lambda: recorder.flushes > flushes, timeout=1.5)
        assert flushed_after <= 1.5
        await until(lambda: bus.connected and recorder.flushes >= flushes + 2, timeout=2.0)
        await client.publish("inv", b"\x93\xa5other\xa4keys\x91\xa1k")  # from another origin
        await until(lambda: recorder.applied == [("keys", ["k"])], timeout=1.0)
        assert bus.losses == 1
    finally:
        await bus.aclose()
        await client.aclose()
