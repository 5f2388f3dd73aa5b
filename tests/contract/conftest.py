"""The caches the contract suite runs against.

Each entry of :data:`SUBJECTS` builds one cache and a way to move its time
forward. Memory caches take a :class:`FakeClock`; a Redis-backed subject can
implement ``advance`` by shortening every key's PTTL by the same amount. To put a
new cache under contract, add a builder here — the tests do not change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from stratacache import (
    CacheInterface,
    CacheManager,
    ClientOptions,
    GenericRedisCache,
    InMemoryCache,
    RedisCache,
)
from stratacache._keys import escape_glob, namespace_prefix
from stratacache.caches._tenant import TenantCache
from stratacache.testing import FakeClock

from _support import Subject

DEFAULT_TTL = 300
WALL_START = 1_700_000_000.0  # a fake wall clock for the Redis-backed subjects' stamps
# The contract is about semantics: generous timeouts, so a loaded machine stalling the
# event loop for a quarter second is not mistaken for a failing Redis (fail-safe would
# then turn a write into a miss). tests/faults/ exercises the default timeouts.
ROOMY = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)


async def _memory(eviction: str) -> Subject:
    clock = FakeClock(1_000.0)

    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    cache = InMemoryCache(
        max_size=10_000,
        default_ttl=DEFAULT_TTL,
        clock=clock,
        eviction=eviction,  # type: ignore[arg-type]
    )
    return Subject(cache, advance)


async def _age(client: Any, prefix: str, seconds: float) -> None:
    """Age every key under ``prefix`` by shortening its PTTL (Redis has no fake clock)."""
    async for key in client.scan_iter(match=escape_glob(prefix) + "*", count=500):
        millis = await client.pttl(key)
        if millis > 0:
            remaining = millis - round(seconds * 1000)
            if remaining > 0:
                await client.pexpire(key, remaining)
            else:
                await client.unlink(key)


async def _redis(request: pytest.FixtureRequest, url_fixture: str = "redis_url") -> Subject:
    server = request.getfixturevalue(url_fixture)
    url = server if isinstance(server, str) else server.url
    prefix = request.getfixturevalue("unique_prefix")
    wall = FakeClock(WALL_START)
    cache = RedisCache(url, prefix=prefix, default_ttl=DEFAULT_TTL, options=ROOMY, wall_clock=wall)

    async def advance(seconds: float) -> None:
        wall.advance(seconds)  # get_or_set's freshness stamps
        await _age(cache.client, prefix, seconds)

    return Subject(cache, advance)


async def _two_tier(request: pytest.FixtureRequest, url_fixture: str = "redis_url") -> Subject:
    server = request.getfixturevalue(url_fixture)
    namespace = request.getfixturevalue("unique_prefix")
    clock, wall = FakeClock(1_000.0), FakeClock(WALL_START)
    cache = GenericRedisCache(
        server if isinstance(server, str) else server.url,
        namespace=namespace,
        default_ttl=DEFAULT_TTL,
        memory_cache_size=10_000,
        clock=clock,
        options=ROOMY,
        wall_clock=wall,
    )

    async def advance(seconds: float) -> None:
        clock.advance(seconds)  # the memory tier's clock
        wall.advance(seconds)  # get_or_set's freshness stamps
        await _age(cache.client, namespace_prefix(namespace), seconds)

    return Subject(cache, advance)


async def _manager(request: pytest.FixtureRequest) -> Subject:
    prefix = request.getfixturevalue("unique_prefix")
    clock, wall = FakeClock(1_000.0), FakeClock(WALL_START)
    local = InMemoryCache(10_000, DEFAULT_TTL, clock=clock)
    remote = RedisCache(
        request.getfixturevalue("redis_url"),
        prefix=prefix,
        default_ttl=DEFAULT_TTL,
        options=ROOMY,
        wall_clock=wall,
    )
    cache = CacheManager(local, remote, namespace="orders")

    async def advance(seconds: float) -> None:
        clock.advance(seconds)
        wall.advance(seconds)
        await _age(remote.client, prefix, seconds)

    return Subject(cache, advance, max_key_length=1024 - len("orders:"))


# A tenant id full of glob, escape and separator characters: the view must still keep
# every key, pattern and tag inside it.
HOSTILE_TENANT = "t*?[x]\\:{1} \u200f"


async def _tenant() -> Subject:
    memory = await _memory("lru")
    cache = TenantCache(memory.cache, HOSTILE_TENANT, namespace="app", owns_cache=True)
    return Subject(cache, memory.advance, max_key_length=cache.max_key_length)


async def _tenant_two_tier(request: pytest.FixtureRequest) -> Subject:
    shared = await _two_tier(request)
    cache = TenantCache(shared.cache, HOSTILE_TENANT, owns_cache=True)
    return Subject(cache, shared.advance, max_key_length=cache.max_key_length)


SUBJECTS: dict[str, Callable[[pytest.FixtureRequest], Awaitable[Subject]]] = {
    "memory": lambda _: _memory("lru"),
    "memory-tinylfu": lambda _: _memory("tinylfu"),
    "redis": _redis,
    "redis-cluster": lambda request: _redis(request, "redis_cluster"),
    "redis-sentinel": lambda request: _redis(request, "redis_sentinel"),
    "two-tier": _two_tier,
    "two-tier-cluster": lambda request: _two_tier(request, "redis_cluster"),
    "manager": _manager,
    "tenant": lambda _: _tenant(),
    "tenant-two-tier": _tenant_two_tier,
}
MARKS = {
    "redis": [pytest.mark.redis],
    "redis-cluster": [pytest.mark.redis, pytest.mark.slow],
    "redis-sentinel": [pytest.mark.redis, pytest.mark.slow],
    "two-tier": [pytest.mark.redis],
    "two-tier-cluster": [pytest.mark.redis, pytest.mark.slow],
    "manager": [pytest.mark.redis],
    "tenant-two-tier": [pytest.mark.redis],
}


@pytest.fixture(params=[pytest.param(name, marks=MARKS.get(name, [])) for name in sorted(SUBJECTS)])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    built = await SUBJECTS[request.param](request)
    async with built.cache:
        yield built


@pytest.fixture
def cache(subject: Subject) -> CacheInterface:
    return subject.cache
