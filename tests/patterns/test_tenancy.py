"""Tenancy: the key format, isolation of hostile tenant ids, versions and per-tenant stats."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stratacache import (
    ClientOptions,
    GenericRedisCache,
    InfrastructureError,
    InMemoryCache,
    RedisCache,
    ValidationError,
)
from stratacache._keys import glob_matcher
from stratacache.caches._tenant import MAX_TENANT_ID_LENGTH, CacheKeyBuilder, TenantCache
from stratacache.testing import FakeClock

ROOMY = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)

# -- CacheKeyBuilder ------------------------------------------------------------------


ZUM = CacheKeyBuilder("zum")
UUID1, UUID2 = uuid.UUID(int=1), uuid.UUID(int=2)


@pytest.mark.parametrize(
    ("builder", "call", "expected"),
    [
        (ZUM, lambda b: b.build("user", 5, tenant_id=1), "zum:v1:t:1:user:5"),
        (ZUM, lambda b: b.build("user", 5), "zum:v1:user:5"),
        (CacheKeyBuilder("zum", 3), lambda b: b.build("u", tenant_id="acme"), "zum:v3:t:acme:u"),
        (ZUM, lambda b: b.build("u", 5, tenant_id=1, include_version=False), "zum:t:1:u:5"),
        (ZUM, lambda b: b.build("user", include_version=False), "zum:user"),
        (CacheKeyBuilder(), lambda b: b.build("user", 5, tenant_id=1), "v1:t:1:user:5"),
        (CacheKeyBuilder(), lambda b: b.build("user", 5), "v1:user:5"),
        (ZUM, lambda b: b.build(tenant_id=7), "zum:v1:t:7"),
        (
            CacheKeyBuilder("a:b"),
            lambda b: b.build("c:d", "e\\", tenant_id="f:g"),
            "a\\:b:v1:t:f\\:g:c\\:d:e\\\\",
        ),
        (ZUM, lambda b: b.build("o", UUID1, tenant_id=UUID2), f"zum:v1:t:{UUID2}:o:{UUID1}"),
        (ZUM, lambda b: b.prefix(1), "zum:v1:t:1:"),
        (ZUM, lambda b: b.prefix(), "zum:v1:"),
        (ZUM, lambda b: b.pattern("user:*", tenant_id="a*"), "zum:v1:t:a\\*:user:*"),
    ],
)
def test_the_key_format_is_the_contracts(
    builder: CacheKeyBuilder, call: Callable[[CacheKeyBuilder], str], expected: str
) -> None:
    assert call(builder) == expected


def test_a_builder_shows_its_settings() -> None:
    builder = CacheKeyBuilder("zum", 2)
    assert (builder.namespace, builder.version) == ("zum", 2)
    assert repr(builder) == "CacheKeyBuilder(namespace='zum', version=2)"


def test_int_and_str_ids_name_the_same_tenant() -> None:
    builder = CacheKeyBuilder("zum")
    assert builder.build("k", tenant_id=1) == builder.build("k", tenant_id="1")


@pytest.mark.parametrize(
    ("tenant_id", "phrase"),
    [
        ("", "must not be empty"),
        ("a\x00b", "NUL"),
        ("x" * (MAX_TENANT_ID_LENGTH + 1), f"at most {MAX_TENANT_ID_LENGTH}"),
        ("\ud800", "surrogates"),
        (True, "not bool"),
        (1.5, "not float"),
        (["a"], "not list"),
        (b"a", "not bytes"),
    ],
)
def test_ids_that_cannot_be_isolated_are_refused(tenant_id: Any, phrase: str) -> None:
    with pytest.raises(ValidationError, match=phrase):
        CacheKeyBuilder("zum").build("k", tenant_id=tenant_id)
    with pytest.raises(ValidationError, match=phrase):
        TenantCache(InMemoryCache(), tenant_id)


@pytest.mark.parametrize(
    ("call", "phrase"),
    [
        (lambda: CacheKeyBuilder("zum").build("t", 1, "user"), "tenants' keyspace"),
        (lambda: CacheKeyBuilder("zum").build("v2", "x", include_version=False), "versioned"),
        (lambda: CacheKeyBuilder("zum").build("a\x00"), "NUL"),
        (lambda: CacheKeyBuilder("zum").build(1.5), "not float"),  # type: ignore[arg-type]
        (lambda: CacheKeyBuilder("zum").build("x" * 1100), "at most 1024"),
        (lambda: CacheKeyBuilder("zum", version=-1), "version"),
        (lambda: CacheKeyBuilder("zum", version=True), "version"),
        (lambda: CacheKeyBuilder(5), "namespace must be a str"),  # type: ignore[arg-type]
        (lambda: CacheKeyBuilder("a\x00"), "NUL"),
    ],
)
def test_keys_that_would_collide_or_cannot_be_stored_are_refused(
    call: Callable[[], object], phrase: str
) -> None:
    with pytest.raises((ValidationError, TypeError), match=phrase):
        call()


def test_reserved_parts_are_fine_where_they_cannot_collide() -> None:
    builder = CacheKeyBuilder("zum")
    assert builder.build("t", tenant_id=1) == "zum:v1:t:1:t"
    assert builder.build("v2") == "zum:v1:v2"
    assert builder.build("x", "t") == "zum:v1:x:t"


def test_a_tenant_pattern_matches_only_that_tenant() -> None:
    builder = CacheKeyBuilder("zum")
    keys = {
        tenant: builder.build("user", 1, tenant_id=tenant) for tenant in ("a*", "ab", "a", "a\\")
    }
    matcher = glob_matcher(builder.pattern("*", tenant_id="a*"))
    assert [t for t, key in keys.items() if matcher.fullmatch(key.encode())] == ["a*"]


# -- hostile tenant ids -----------------------------------------------------------------

HOSTILE_CHARS = [
    "*", "?", "[", "]", "\\", ":", "{", "}", " ", "^", "-", "\u200f", "\u202e", "\t",
    "t", "v1", "g0", "a", "é", "version",
]  # fmt: skip
_hostile_text = st.lists(st.sampled_from(HOSTILE_CHARS), min_size=1, max_size=8).map("".join)
_valid_ids: st.SearchStrategy[Any] = st.one_of(
    _hostile_text,
    st.text(
        st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=6
    ),
    st.integers(-3, 1000),
    st.uuids(),
    st.text(st.sampled_from(HOSTILE_CHARS[:9]), min_size=200, max_size=MAX_TENANT_ID_LENGTH - 5),
)
_refused_ids: st.SearchStrategy[Any] = st.one_of(
    _hostile_text.map(lambda text: text + "\x00"),
    _hostile_text.map(lambda text: "\udc80" + text),
    st.text(st.sampled_from(HOSTILE_CHARS[:9]), min_size=MAX_TENANT_ID_LENGTH + 1, max_size=400),
    st.just(""),
)
# One id in ten is one that must be refused (one_of would pick each branch equally often).
tenant_ids = st.sampled_from(range(10)).flatmap(lambda n: _refused_ids if n == 9 else _valid_ids)


def _related(tenant: Any) -> st.SearchStrategy[Any]:
    """Ids built from ``tenant`` to attack it: extended, cut, wrapped in glob or escapes."""
    text = str(tenant)
    return st.sampled_from(
        [
            text + ":",
            text + "*",
            text + "\\",
            "*" + text,
            text[:-1] or "x",
            text + ":g0",
            text + "?",
        ]
    )


tenant_pairs = st.one_of(
    st.tuples(tenant_ids, tenant_ids),
    tenant_ids.flatmap(lambda tenant: st.tuples(st.just(tenant), _related(tenant))),
).filter(lambda pair: str(pair[0]) != str(pair[1]))  # one tenant twice proves nothing


KEYS = ["k", "*", "a:b", "x\\", "[", "version", "g0:k", "t:1:k", "é \u200f"]


def _refused(tenant: Any) -> bool:
    text = str(tenant)
    lone_surrogates = any("\ud800" <= char <= "\udfff" for char in text)
    return not text or "\x00" in text or len(text) > MAX_TENANT_ID_LENGTH or lone_surrogates


Attack = Callable[[TenantCache], Awaitable[object]]
ATTACKS: list[tuple[str, Attack, bool]] = [  # name, operation on A, does it remove all of A
    ("delete_pattern *", lambda view: view.delete_pattern("*"), True),
    ("clear", lambda view: view.clear(), True),
    ("bump_version", lambda view: view.bump_version(), True),
    ("invalidate_tags", lambda view: view.invalidate_tags("shared"), True),
    ("delete_many", lambda view: view.delete_many(KEYS), True),
    ("pattern *\\**", lambda view: view.delete_pattern("*\\**"), False),
    ("pattern [^x]*", lambda view: view.delete_pattern("[^x]*"), False),
]


async def _isolation_scenario(cache: Any, first: Any, second: Any) -> str:
    """Two tenants write the same keys; an attack by the first leaves the second intact."""
    views = []
    for tenant in (first, second):
        if _refused(tenant):
            with pytest.raises(ValidationError):
                TenantCache(cache, tenant)
            return "refused"
        views.append(TenantCache(cache, tenant))
    a, b = views
    assert not a.prefix.startswith(b.prefix)
    assert not b.prefix.startswith(a.prefix)
    for view, owner in ((a, "A"), (b, "B")):
        for key in KEYS:
            await view.set(key, f"{owner}:{key}", tags=["shared", key])
    assert await a.get_many(KEYS) == {key: f"A:{key}" for key in KEYS}
    assert await b.get_many(KEYS) == {key: f"B:{key}" for key in KEYS}
    for _, attack, removes_all in ATTACKS:
        await attack(a)
        assert await b.get_many(KEYS) == {key: f"B:{key}" for key in KEYS}
        if removes_all:
            assert await a.get_many(KEYS) == {}
        for key in KEYS:  # A writes again for the next attack
            await a.set(key, f"A:{key}", tags=["shared", key])
    return "isolated"


@settings(max_examples=1300, deadline=None)
@given(pair=tenant_pairs)
def test_1000_hostile_tenant_ids_never_reach_each_other_in_memory(pair: tuple[Any, Any]) -> None:
    cache = InMemoryCache(max_size=10_000)
    event(asyncio.run(_isolation_scenario(cache, *pair)))


@settings(max_examples=3000, deadline=None)
@given(pair=st.tuples(_valid_ids, _valid_ids), namespaces=st.tuples(_hostile_text, _hostile_text))
def test_distinct_tenants_have_prefixes_that_are_not_prefixes_of_each_other(
    pair: tuple[Any, Any], namespaces: tuple[str, str]
) -> None:
    (first, second), (ns1, ns2) = pair, namespaces
    one = CacheKeyBuilder(ns1).prefix(first)
    two = CacheKeyBuilder(ns2).prefix(second)
    if (ns1, str(first)) == (ns2, str(second)):
        assert one == two
    else:
        assert not one.startswith(two)
        assert not two.startswith(one)


@pytest.mark.redis
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pair=tenant_pairs)
def test_hostile_tenant_ids_never_reach_each_other_in_redis(
    redis_prefix: str, redis_url: str, pair: tuple[Any, Any]
) -> None:
    async def scenario() -> None:
        async with RedisCache(redis_url, prefix=redis_prefix, options=ROOMY) as cache:
            await _isolation_scenario(cache, *pair)

    asyncio.run(scenario())


@pytest.fixture
def redis_prefix(redis_url: str, unique_prefix: str, redis_sync: Any) -> Iterator[str]:
    """A unique prefix, and every key under it removed afterwards."""
    yield unique_prefix
    pattern = unique_prefix.replace("\\", "\\\\").replace("*", "\\*") + "*"
    keys = list(redis_sync.scan_iter(match=pattern, count=1000))
    if keys:
        redis_sync.unlink(*keys)


# -- TenantCache ------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def shared(clock: FakeClock) -> InMemoryCache:
    return InMemoryCache(max_size=10_000, default_ttl=300, clock=clock)


async def test_entries_live_under_the_tenant_prefix(shared: InMemoryCache) -> None:
    view = TenantCache(shared, 42, namespace="zum")
    assert view.cache is shared
    assert "42" in repr(view)
    assert view.prefix == "zum:v1:t:42:"
    await view.set("user:5", "ann")
    generation = await view.current_version()
    assert await shared.get(f"zum:v1:t:42:g{generation}:user:5") == "ann"
    assert view.key_builder.build("x", tenant_id=42).startswith(view.prefix)


async def test_bump_version_hides_every_entry_at_once_for_every_view(
    shared: InMemoryCache, clock: FakeClock
) -> None:
    writer, reader = TenantCache(shared, "acme"), TenantCache(shared, "acme")
    await writer.set_many({f"k{n}": n for n in range(50)}, ttl=60)
    assert await reader.get("k1") == 1
    before = await writer.current_version()
    after = await writer.bump_version()
    assert after > before
    assert await reader.current_version() == after
    assert await reader.get_many([f"k{n}" for n in range(50)]) == {}
    await reader.set("k1", "new")
    assert await writer.get("k1") == "new"
    # The old generation's entries are still stored, and simply age out.
    assert shared.get_stats()["entries"] == 50 + 2  # + the new entry and the version key
    clock.advance(60)
    assert shared.get_stats()["entries"] == 2


async def test_bump_version_costs_a_constant_number_of_operations(shared: InMemoryCache) -> None:
    view = TenantCache(shared, "acme")
    await view.set_many({f"k{n}": n for n in range(2000)})
    before = shared.get_stats()
    await view.bump_version()
    after = shared.get_stats()
    assert after["deletes"] == before["deletes"]  # nothing was deleted one by one
    assert after["entries"] == before["entries"]


async def test_a_lost_version_key_never_brings_old_entries_back(shared: InMemoryCache) -> None:
    view = TenantCache(shared, "acme")
    await view.set("k", "generation 1")
    first = await view.current_version()
    await view.bump_version()
    await view.set("k", "generation 2")
    await shared.delete(view.prefix + "version")  # evicted, expired or flushed
    assert await view.get("k") is None  # neither generation is visible again
    assert await view.current_version() not in (first, first + 1)


async def test_the_version_key_persists(shared: InMemoryCache, clock: FakeClock) -> None:
    view = TenantCache(shared, "acme")
    version = await view.bump_version()
    await view.set("k", 1, ttl=0)
    clock.advance(10 * 365 * 24 * 3600)
    assert await view.current_version() == version
    assert await view.get("k") == 1


async def test_a_corrupt_version_key_is_reported(shared: InMemoryCache) -> None:
    view = TenantCache(shared, "acme")
    await shared.set(view.prefix + "version", "not a number")
    with pytest.raises(ValidationError, match="holds a str"):
        await view.get("k")


async def test_concurrent_first_uses_agree_on_one_generation(shared: InMemoryCache) -> None:
    views = [TenantCache(shared, "fresh") for _ in range(50)]
    versions = await asyncio.gather(*(view.current_version() for view in views))
    assert len(set(versions)) == 1


async def test_clear_removes_this_tenant_of_every_generation_only(shared: InMemoryCache) -> None:
    mine, other = TenantCache(shared, "a"), TenantCache(shared, "a:b")
    await shared.set("plain", 1)
    await mine.set("old", 1)
    await mine.bump_version()
    await mine.set("new", 2)
    await other.set("new", 3)
    await mine.clear()
    assert await mine.get_many(["old", "new"]) == {}
    assert await other.get("new") == 3
    assert await shared.get("plain") == 1
    assert shared.get_stats()["entries"] == 4  # plain, other's entry, both version keys


async def test_delete_pattern_applies_the_glob_within_the_tenant(shared: InMemoryCache) -> None:
    star, plain = TenantCache(shared, "*"), TenantCache(shared, "x")
    for view in (star, plain):
        await view.set_many({"user:1": 1, "user:2": 2, "post:1": 3})
    assert await star.delete_pattern("user:*") == 2
    assert await star.get_many(["user:1", "user:2", "post:1"]) == {"post:1": 3}
    assert await plain.get_many(["user:1", "user:2", "post:1"]) == {
        "user:1": 1,
        "user:2": 2,
        "post:1": 3,
    }
    with pytest.raises(ValidationError, match="empty"):
        await star.delete_pattern("")
    with pytest.raises(ValidationError, match="needs a mapping"):
        await star.set_many([("k", 1)])  # type: ignore[arg-type]


async def test_tags_are_confined_to_the_tenant(shared: InMemoryCache) -> None:
    a, b = TenantCache(shared, "a"), TenantCache(shared, "b")
    await a.set("k", 1, tags=["users"])
    await b.set("k", 2, tags=["users"])
    await shared.set("global", 3, tags=["users"])
    assert await a.invalidate_tags("users") == 1
    assert await b.get("k") == 2
    assert await shared.get("global") == 3


async def test_a_load_that_races_a_bump_is_not_served_afterwards(shared: InMemoryCache) -> None:
    view = TenantCache(shared, "acme")
    started, release = asyncio.Event(), asyncio.Event()

    async def load_old_data() -> str:
        started.set()
        await release.wait()
        return "computed before the bump"

    loading = asyncio.create_task(view.get_or_set("report", load_old_data))
    await started.wait()
    await view.bump_version()
    release.set()
    assert await loading == "computed before the bump"
    assert await view.get("report") is None  # stored under the old generation


async def test_views_of_one_tenant_share_a_load(shared: InMemoryCache) -> None:
    calls = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 7

    views = [TenantCache(shared, "acme") for _ in range(10)]
    await views[0].current_version()
    tasks = [asyncio.create_task(view.get_or_set("k", load)) for view in views]
    for _ in range(100):
        await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*tasks) == [7] * 10
    assert calls == 1


async def test_stats_are_per_view_and_reports_hide_other_tenants(shared: InMemoryCache) -> None:
    a, b = TenantCache(shared, "a"), TenantCache(shared, "b")
    await a.set("k", 1)
    await a.get("k")
    await a.get("missing")
    await b.set_many({"x": 1, "y": 2, "z": 3})
    stats = a.get_stats()
    assert (stats["hits"], stats["misses"], stats["sets"], stats["hit_rate"]) == (1, 1, 1, 0.5)
    assert stats["tenant_id"] == "a"
    report = await b.get_cache_stats()
    assert report["keys"] == 3
    assert report["tenant"]["sets"] == 3
    assert report["memory"] == {"status": "active"}
    assert report["redis"] == {"status": "disabled"}
    assert report["version"] == await b.current_version()


async def test_long_keys_and_patterns_get_clear_messages(shared: InMemoryCache) -> None:
    view = TenantCache(shared, "t" * 200, namespace="app")
    room = view.max_key_length
    assert room == 1024 - len(view.prefix) - len("g:") - 19
    await view.set("k" * room, 1)
    assert await view.get("k" * room) == 1
    with pytest.raises(ValidationError, match=f"at most {room} characters"):
        await view.set("k" * (room + 1), 1)
    with pytest.raises(ValidationError, match="at most 1024"):
        await view.get("k" * 1025)
    with pytest.raises(ValidationError, match="patterns of this tenant view must be at most"):
        await view.delete_pattern("*" * 1000)
    with pytest.raises(ValidationError, match="too long"):
        TenantCache(shared, "t" * 256, namespace="n" * 800)


async def test_a_closed_view_leaves_a_shared_cache_open(shared: InMemoryCache) -> None:
    view = TenantCache(shared, "a")
    assert await view.connect() is True
    await view.set("k", 1)
    await view.aclose()
    await view.aclose()
    with pytest.raises(InfrastructureError, match="closed"):
        await view.get("k")
    with pytest.raises(InfrastructureError, match="closed"):
        await view.bump_version()
    await shared.set("still", "open")


async def test_an_owning_view_closes_its_cache(clock: FakeClock) -> None:
    inner = InMemoryCache(clock=clock)
    async with TenantCache(inner, "a", owns_cache=True) as view:
        await view.set("k", 1)
    with pytest.raises(InfrastructureError, match="closed"):
        await inner.get("k")


async def test_views_nest(shared: InMemoryCache) -> None:
    region = TenantCache(shared, "eu")
    customer, neighbour = TenantCache(region, "acme"), TenantCache(region, "globex")
    await customer.set("k", 1)
    await neighbour.set("k", 2)
    await customer.clear()
    assert await neighbour.get("k") == 2
    await region.bump_version()
    assert await neighbour.get("k") is None


def test_only_caches_can_be_wrapped() -> None:
    with pytest.raises(ValidationError, match="CacheInterface"):
        TenantCache("redis://localhost", "a")  # type: ignore[arg-type]


async def test_a_down_redis_degrades_to_misses_and_a_bump_fails_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="stratacache")  # warned at WARNING once a process
    options = ClientOptions(connect_timeout=0.2, operation_timeout=0.2)
    async with RedisCache("redis://127.0.0.1:1/0", prefix="down:", options=options) as down:
        view = TenantCache(down, "acme")
        await view.set("k", 1)  # fail-safe: dropped, no exception
        assert await view.get("k", "default") == "default"
        assert view.get_stats()["version_unavailable"] >= 1
        with pytest.raises(InfrastructureError):
            await view.bump_version()
    assert "serving from an empty generation" in caplog.text


@pytest.mark.redis
async def test_a_bump_reaches_another_process_memory_tier_quickly(
    redis_url: str, unique_prefix: str
) -> None:
    async with (
        GenericRedisCache(redis_url, namespace=unique_prefix, options=ROOMY) as one,
        GenericRedisCache(redis_url, namespace=unique_prefix, options=ROOMY) as two,
    ):
        here, there = TenantCache(one, "acme"), TenantCache(two, "acme")
        await here.set("k", "v")
        assert await there.get("k") == "v"  # now in two's memory tier, version key too
        await here.bump_version()
        started = time.perf_counter()
        while await there.get("k") is not None:
            assert time.perf_counter() - started < 0.05, "still served after 50 ms"
            await asyncio.sleep(0.0005)  # wall clock: a real pub/sub delivery
        await one.clear()


@pytest.mark.redis
@pytest.mark.parametrize("two_tier", [False, True], ids=["redis", "two-tier"])
async def test_processes_racing_to_start_a_tenant_agree_at_once(
    redis_url: str, unique_prefix: str, two_tier: bool
) -> None:
    """Caches of their own (as in separate processes): nothing single-flights them."""

    def cache() -> RedisCache | GenericRedisCache:
        if two_tier:
            return GenericRedisCache(redis_url, namespace=unique_prefix, options=ROOMY)
        return RedisCache(redis_url, prefix=unique_prefix, options=ROOMY)

    async with cache() as one, cache() as two, cache() as three:
        views = [TenantCache(shared, "fresh") for shared in (one, two, three)]
        # Every view's first write races the others' to start the generation.
        await asyncio.gather(*(view.incr("hits") for view in views))
        generations = {await view.current_version() for view in views}
        assert len(generations) == 1
        assert [await view.get("hits") for view in views] == [3, 3, 3]
        await one.clear()
