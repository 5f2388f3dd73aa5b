"""AIResponseCache against a real Redis: round trips, operation TTLs, invalidation, stats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from stratacache import ClientOptions
from stratacache._keys import namespace_prefix
from stratacache.caches._ai import AIResponseCache

pytestmark = pytest.mark.redis

ROOMY = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)
DEFAULT_TTL = 300
TTLS = {"summarize": 7200, "sentiment": 0}


@pytest.fixture
async def cache(redis_url: str, unique_prefix: str) -> AsyncIterator[AIResponseCache]:
    async with AIResponseCache(
        redis_url,
        namespace=unique_prefix,
        default_ttl=DEFAULT_TTL,
        operation_ttls=TTLS,
        text_hash_threshold=100,
        options=ROOMY,
    ) as ai:
        yield ai


@pytest.fixture
async def other(redis_url: str, unique_prefix: str) -> AsyncIterator[AIResponseCache]:
    """A second cache on the same namespace: another process, as far as keys go."""
    async with AIResponseCache(
        redis_url,
        namespace=unique_prefix,
        default_ttl=DEFAULT_TTL,
        operation_ttls=TTLS,
        text_hash_threshold=100,
        options=ROOMY,
    ) as ai:
        yield ai


def response(text: str, tokens: Any = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"result": text, "model": "m-1"}
    if tokens is not None:
        reply["metadata"] = {"tokens": tokens}
    return reply


def pttl(redis_sync: Any, namespace: str, key: str) -> int:
    return int(redis_sync.pttl(namespace_prefix(namespace) + key))


async def test_a_response_round_trips(cache: AIResponseCache, other: AIResponseCache) -> None:
    stored = response("a summary", tokens=12)
    await cache.cache_response("some text", "summarize", {"max_length": 50}, stored)
    assert await cache.get_cached_response("some text", "summarize", {"max_length": 50}) == stored
    # another instance (another process) finds it under the same key
    assert await other.get_cached_response("some text", "summarize", {"max_length": 50}) == stored
    assert await cache.get_cached_response("some text", "summarize", {"max_length": 51}) is None
    assert await cache.get_cached_response("other text", "summarize", {"max_length": 50}) is None


async def test_option_order_and_long_texts_still_hit(cache: AIResponseCache) -> None:
    long_text = "a long document. " * 200
    await cache.cache_response(long_text, "qa", {"a": 1, "b": 2}, {"answer": 42}, "why?")
    assert await cache.get_cached_response(long_text, "qa", {"b": 2, "a": 1}, "why?") == {
        "answer": 42
    }
    assert await cache.get_cached_response(long_text, "qa", {"b": 2, "a": 1}, "how?") is None
    assert long_text[:50] not in cache.build_key(long_text, "qa", {"a": 1}, "why?")


async def test_an_empty_response_is_a_hit_not_a_miss(cache: AIResponseCache) -> None:
    await cache.cache_response("t", "summarize", None, {})
    assert await cache.get_cached_response("t", "summarize") == {}
    assert cache.get_stats()["ai"]["operations"]["summarize"]["hits"] == 1


async def test_the_ttl_in_redis_is_the_operations(
    cache: AIResponseCache, redis_sync: Any, unique_prefix: str
) -> None:
    for operation in ("summarize", "sentiment", "questions"):
        await cache.cache_response("text", operation, None, response(operation))
    summarize = pttl(redis_sync, unique_prefix, cache.build_key("text", "summarize"))
    sentiment = pttl(redis_sync, unique_prefix, cache.build_key("text", "sentiment"))
    questions = pttl(redis_sync, unique_prefix, cache.build_key("text", "questions"))
    assert 7_100_000 < summarize <= 7_200_000
    assert sentiment == -1  # 0: never expires
    assert DEFAULT_TTL * 1000 - 100_000 < questions <= DEFAULT_TTL * 1000  # the default
    assert cache.ttl_for("summarize") == 7200
    assert cache.ttl_for("questions") == DEFAULT_TTL


async def test_keys_live_under_the_namespace_only(
    cache: AIResponseCache, redis_sync: Any, unique_prefix: str
) -> None:
    await cache.cache_response("text", "summarize", None, response("x"))
    key = cache.build_key("text", "summarize")
    assert key.startswith("ai_cache:")
    assert redis_sync.exists(namespace_prefix(unique_prefix) + key) == 1
    assert redis_sync.exists(key) == 0


async def test_a_key_at_the_length_bound_is_stored(cache: AIResponseCache) -> None:
    operation, options, question = "o" * 3000, {"p": "v" * 3000}, "q" * 3000
    await cache.cache_response("t" * 5000, operation, options, {"ok": True}, question)
    assert await cache.get_cached_response("t" * 5000, operation, options, question) == {"ok": True}


async def test_invalidate_by_operation_removes_only_that_operation(
    cache: AIResponseCache,
) -> None:
    for text in ("one", "two", "three"):
        await cache.cache_response(text, "summarize", None, response(text))
    await cache.cache_response("one", "sentiment", None, response("positive"))
    assert await cache.invalidate_by_operation("summarize") == 3
    for text in ("one", "two", "three"):
        assert await cache.get_cached_response(text, "summarize") is None
    assert await cache.get_cached_response("one", "sentiment") == response("positive")
    assert await cache.invalidate_by_operation("summarize") == 0
    assert cache.get_stats()["ai"]["operations"]["summarize"]["invalidations"] == 3


@pytest.mark.parametrize("glob", ["sum*", "s?mmarize", "[s]ummarize", "*"])
async def test_glob_characters_in_an_operation_match_only_itself(
    cache: AIResponseCache, glob: str
) -> None:
    await cache.cache_response("t", "summarize", None, response("real"))
    await cache.cache_response("t", glob, None, response("odd"))
    assert await cache.invalidate_by_operation(glob) == 1
    assert await cache.get_cached_response("t", "summarize") == response("real")
    assert await cache.get_cached_response("t", glob) is None


async def test_invalidation_reaches_another_processes_memory_tier(
    cache: AIResponseCache, other: AIResponseCache
) -> None:
    await cache.cache_response("t", "summarize", None, response("v1"))
    assert await other.get_cached_response("t", "summarize") == response("v1")  # now in its L1
    await cache.invalidate_by_operation("summarize")
    deadline = time.perf_counter() + 2.0
    while await other.get_cached_response("t", "summarize") is not None:
        assert time.perf_counter() < deadline, "the other memory tier kept the response"
        await asyncio.sleep(0.002)  # wall clock: waits for a pub/sub delivery, not a TTL


async def test_stats_by_operation_with_tokens_saved(cache: AIResponseCache) -> None:
    await cache.cache_response("a", "summarize", None, response("s1", tokens=12))
    await cache.cache_response("b", "summarize", None, response("s2", tokens=30))
    await cache.cache_response("c", "qa", None, response("q"), "why?")
    assert await cache.get_cached_response("a", "summarize") is not None
    assert await cache.get_cached_response("b", "summarize") is not None
    assert await cache.get_cached_response("b", "summarize") is not None
    assert await cache.get_cached_response("zzz", "summarize") is None
    assert await cache.get_cached_response("c", "qa", None, "why?") is not None
    ai = cache.get_stats()["ai"]
    summarize = ai["operations"]["summarize"]
    assert (summarize["hits"], summarize["misses"], summarize["sets"]) == (3, 1, 2)
    assert summarize["hit_rate"] == pytest.approx(0.75)
    assert summarize["tokens_saved"] == 12 + 30 + 30
    assert ai["operations"]["qa"]["tokens_saved"] == 0  # no metadata: nothing counted
    assert ai["operations"]["qa"]["hit_rate"] == 1.0
    assert ai["tokens_saved"] == 72
    assert ai["operation_ttls"] == TTLS
    assert ai["text_hash_threshold"] == 100


@pytest.mark.parametrize(
    "stored",
    [
        {"metadata": {"tokens": "many"}},
        {"metadata": {"tokens": -5}},
        {"metadata": {"tokens": True}},
        {"metadata": {"tokens": None}},
        {"metadata": [1, 2]},
        {"metadata": "tokens=5"},
        {"no": "metadata"},
        "a plain string",
        ["a", "list"],
        None,
    ],
)
async def test_garbage_metadata_is_tolerated(cache: AIResponseCache, stored: Any) -> None:
    await cache.cache_response("t", "summarize", None, stored)
    assert await cache.get_cached_response("t", "summarize") == stored
    assert cache.get_stats()["ai"]["operations"]["summarize"]["tokens_saved"] == 0


async def test_stats_by_text_size_tier(redis_url: str, unique_prefix: str) -> None:
    async with AIResponseCache(
        redis_url,
        namespace=unique_prefix,
        text_size_tiers={"short": 10, "long": 100},
        options=ROOMY,
    ) as sized:
        for text in ("tiny", "x" * 50, "y" * 500):
            await sized.cache_response(text, "summarize", None, response(text, tokens=1))
            await sized.get_cached_response(text, "summarize")
        await sized.get_cached_response("z" * 5000, "summarize")  # a miss, above every tier
        tiers = sized.get_stats()["ai"]["text_tiers"]
    assert list(tiers) == ["short", "long", "xlarge"]
    assert (tiers["short"]["sets"], tiers["short"]["hits"]) == (1, 1)
    assert (tiers["long"]["sets"], tiers["long"]["hits"]) == (1, 1)
    assert (tiers["xlarge"]["sets"], tiers["xlarge"]["hits"], tiers["xlarge"]["misses"]) == (
        1,
        1,
        1,
    )
    assert tiers["xlarge"]["hit_rate"] == 0.5
    assert tiers["short"]["tokens_saved"] == 1


async def test_the_parent_stats_stay_intact(cache: AIResponseCache) -> None:
    await cache.cache_response("t", "summarize", None, response("x"))
    await cache.get_cached_response("t", "summarize")
    await cache.get_cached_response("u", "summarize")
    stats = cache.get_stats()
    for key in ("hits", "misses", "hit_rate", "l1_hits", "sets", "redis_status", "circuit"):
        assert key in stats
    assert (stats["hits"], stats["misses"], stats["sets"]) == (1, 1, 1)
    assert stats["redis_status"] == "connected"
    full = await cache.get_cache_stats()
    assert full["backend"] == "two-tier"
    assert full["redis"]["status"] == "connected"
    assert full["ai"]["operations"]["summarize"]["hits"] == 1


class RecordingMonitor:
    def __init__(self) -> None:
        self.key_generations: list[tuple[float, int, str]] = []

    def record_key_generation_time(self, duration: float, text_length: int, operation: str) -> None:
        self.key_generations.append((duration, text_length, operation))


class BrokenMonitor:
    def record_key_generation_time(self, *args: object) -> None:
        raise RuntimeError("monitor down")


async def test_key_generation_is_reported_to_the_monitor(
    redis_url: str, unique_prefix: str
) -> None:
    monitor = RecordingMonitor()
    async with AIResponseCache(
        redis_url, namespace=unique_prefix, performance_monitor=monitor, options=ROOMY
    ) as ai:
        await ai.cache_response("hello", "summarize", None, response("x"))
        await ai.get_cached_response("hello", "summarize")
    assert [(length, op) for _, length, op in monitor.key_generations] == [
        (5, "summarize"),
        (5, "summarize"),
    ]
    assert all(duration >= 0 for duration, _, _ in monitor.key_generations)


async def test_a_failing_monitor_never_fails_the_cache(redis_url: str, unique_prefix: str) -> None:
    async with AIResponseCache(
        redis_url, namespace=unique_prefix, performance_monitor=BrokenMonitor(), options=ROOMY
    ) as ai:
        await ai.cache_response("hello", "summarize", None, response("x"))
        assert await ai.get_cached_response("hello", "summarize") == response("x")


async def test_stats_stay_bounded_however_many_operations_callers_invent(
    cache: AIResponseCache,
) -> None:
    for number in range(1005):
        await cache.get_cached_response("t", f"op-{number}")
    operations = cache.get_stats()["ai"]["operations"]
    assert len(operations) == 1001
    assert operations["(other)"]["misses"] == 5


@pytest.mark.parametrize(("tokens", "counted"), [(12.0, 12), (7.9, 7), (float("inf"), 0)])
async def test_float_token_counts_are_whole_tokens(
    cache: AIResponseCache, tokens: float, counted: int
) -> None:
    await cache.cache_response("t", "summarize", None, {"metadata": {"tokens": tokens}})
    await cache.get_cached_response("t", "summarize")
    assert cache.get_stats()["ai"]["operations"]["summarize"]["tokens_saved"] == counted
