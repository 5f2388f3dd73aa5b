"""@cached: keys, single-flight, invalidation, methods, and sync callers."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime as dt
import enum
import inspect
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from stratacache import InMemoryCache, SerializationError, ValidationError
from stratacache._decorators import RAW_ARGUMENTS_LIMIT, cached
from stratacache.caches._tenant import TenantCache
from stratacache.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def cache(clock: FakeClock) -> InMemoryCache:
    return InMemoryCache(max_size=1000, default_ttl=300, clock=clock)


class Calls:
    """Records the arguments each real call of a cached function received."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def __len__(self) -> int:
        return len(self.args)

    def __call__(self, *args: Any) -> None:
        self.args.append(args)


# -- async functions ----------------------------------------------------------------


async def test_an_async_function_runs_once_then_hits(cache: InMemoryCache) -> None:
    calls = Calls()

    @cached(cache)
    async def square(n: int) -> dict[str, int]:
        calls(n)
        return {"square": n * n}

    assert await square(3) == {"square": 9}
    assert await square(3) == {"square": 9}
    assert await square(4) == {"square": 16}
    assert calls.args == [(3,), (4,)]
    assert await cache.get(square.key_for(3)) == {"square": 9}


async def test_defaults_and_keyword_order_share_one_entry(cache: InMemoryCache) -> None:
    calls = Calls()

    @cached(cache)
    async def fetch(a: int, b: int = 2, *, c: str = "x") -> str:
        calls(a, b, c)
        return f"{a}{b}{c}"

    for call in (fetch(1), fetch(1, 2), fetch(1, b=2), fetch(b=2, a=1), fetch(c="x", a=1)):
        assert await call == "12x"
    assert len(calls) == 1
    assert await fetch(1, 3) == "13x"
    assert await fetch(1, c="y") == "12y"
    assert len(calls) == 3
    assert fetch.key_for(1) == fetch.key_for(b=2, c="x", a=1)


async def test_var_args_and_kwargs_are_part_of_the_key(cache: InMemoryCache) -> None:
    calls = Calls()

    @cached(cache)
    async def join(*parts: str, **options: int) -> str:
        calls(parts, options)
        return "-".join(parts) + str(sorted(options.items()))

    await join("a", "b", x=1, y=2)
    await join("a", "b", y=2, x=1)  # keyword order is irrelevant
    await join("a", "b", x=1)
    await join("b", "a", x=1, y=2)  # positional order is not
    assert len(calls) == 3


async def test_a_failing_call_is_not_cached_and_the_next_call_retries(
    cache: InMemoryCache,
) -> None:
    attempts = Calls()

    @cached(cache)
    async def flaky(n: int) -> int:
        attempts(n)
        if len(attempts) == 1:
            raise LookupError("database down")
        return n

    with pytest.raises(LookupError, match="database down"):
        await flaky(1)
    assert not await cache.exists(flaky.key_for(1))
    assert await flaky(1) == 1
    assert len(attempts) == 2


async def test_100_concurrent_calls_run_the_function_once(cache: InMemoryCache) -> None:
    calls = Calls()
    release = asyncio.Event()

    @cached(cache)
    async def slow(n: int) -> list[int]:
        calls(n)
        await release.wait()
        return [n]

    tasks = [asyncio.create_task(slow(7)) for _ in range(100)]
    await _until(lambda: cache.get_stats()["misses"] >= 100)
    release.set()
    results = await asyncio.gather(*tasks)
    assert len(calls) == 1
    assert results == [[7]] * 100
    results[0].append(8)  # every caller holds its own copy
    assert results[1] == [7]


async def test_an_error_reaches_every_concurrent_caller(cache: InMemoryCache) -> None:
    calls = Calls()
    release = asyncio.Event()

    @cached(cache)
    async def broken(n: int) -> int:
        calls(n)
        await release.wait()
        raise RuntimeError("boom")

    tasks = [asyncio.create_task(broken(1)) for _ in range(20)]
    await _until(lambda: cache.get_stats()["misses"] >= 20)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert len(calls) == 1
    assert all(isinstance(result, RuntimeError) for result in results)


async def test_ttl_expires_entries(cache: InMemoryCache, clock: FakeClock) -> None:
    calls = Calls()

    @cached(cache, ttl=10)
    async def now(n: int) -> int:
        calls(n)
        return len(calls)

    assert await now(1) == 1
    assert await cache.get_ttl(now.key_for(1)) == 10
    clock.advance(9)
    assert await now(1) == 1
    clock.advance(1)
    assert await now(1) == 2


async def test_ttl_may_depend_on_the_arguments(cache: InMemoryCache) -> None:
    @cached(cache, ttl=lambda n: n * 10)
    async def value(n: int) -> int:
        return n

    await value(3)
    await value(0)
    assert await cache.get_ttl(value.key_for(3)) == 30
    assert await cache.get_ttl(value.key_for(0)) == 0  # never expires


async def test_static_and_computed_tags_invalidate(cache: InMemoryCache) -> None:
    calls = Calls()

    @cached(cache, tags=["users"])
    async def user(user_id: int) -> int:
        calls("user", user_id)
        return user_id

    @cached(cache, tags=lambda team: [f"team:{team}"])
    async def team(team: str) -> str:
        calls("team", team)
        return team

    await user(1)
    await team("a")
    await team("b")
    assert await cache.invalidate_tags("users", "team:a") == 2
    await user(1)
    await team("a")
    await team("b")  # still cached
    assert calls.args == [("user", 1), ("team", "a"), ("team", "b"), ("user", 1), ("team", "a")]


async def test_invalidate_forgets_one_result(cache: InMemoryCache) -> None:
    calls = Calls()

    @cached(cache)
    async def load(n: int) -> int:
        calls(n)
        return n

    await load(1)
    await load(2)
    assert await load.invalidate(1) is True
    assert await load.invalidate(1) is False
    await load(1)
    await load(2)
    assert calls.args == [(1,), (2,), (1,)]


async def test_the_cache_may_be_given_as_a_function(clock: FakeClock) -> None:
    caches: list[InMemoryCache] = []

    @cached(lambda: caches[0])
    async def double(n: int) -> int:
        return n * 2

    caches.append(InMemoryCache(clock=clock))  # built after the decorated function
    assert await double(2) == 4
    assert await caches[0].get(double.key_for(2)) == 4

    @cached(lambda: "not a cache")  # type: ignore[arg-type, return-value]
    async def wrong(n: int) -> int:
        return n

    with pytest.raises(ValidationError, match="not a CacheInterface"):
        await wrong(1)


async def test_works_over_a_tenant_view(cache: InMemoryCache) -> None:
    acme, other = TenantCache(cache, "acme"), TenantCache(cache, "other")
    current: list[TenantCache] = [acme]

    @cached(lambda: current[0])
    async def tenant_name(n: int) -> str:
        return f"{current[0].tenant_id}:{n}"

    assert await tenant_name(1) == "acme:1"
    current[0] = other
    assert await tenant_name(1) == "other:1"
    await acme.bump_version()
    current[0] = acme
    assert await acme.get(tenant_name.key_for(1)) is None
    assert await other.get(tenant_name.key_for(1)) == "other:1"


# -- keys ---------------------------------------------------------------------------


def test_values_of_different_types_get_different_keys(cache: InMemoryCache) -> None:
    @cached(cache)
    async def echo(value: Any) -> Any:
        return value

    values: list[Any] = [
        1, 1.0, True, "1", b"1", None, [1], (1,), {1}, frozenset({1}), {1: 1}, {"1": 1},
        Decimal("1"), Decimal("1.0"), 0.0, -0.0, "", [], (), set(), {},
        dt.date(2024, 1, 1), dt.datetime(2024, 1, 1), uuid.UUID(int=1), Colour.RED, Level.ONE,
        Point(1, 2), (1, 2), [1, 2], Pair(1, 2), complex(1, 0), bytearray(b"1"), Text("1"),
        Count(1), Ratio(1.0), dt.timedelta(days=1), dt.time(1), PurePosixPath("1"),
        PureWindowsPath("1"),
    ]  # fmt: skip
    keys = [echo.key_for(value) for value in values]
    assert len(set(keys)) == len(values)


def test_keys_are_readable_for_short_arguments_and_hashed_for_long_ones(
    cache: InMemoryCache,
) -> None:
    @cached(cache)
    async def search(query: str, page: int = 1) -> list[str]:
        return []

    assert search.key_for("shoes") == f'{__name__}.{search.__qualname__}:["shoes",1]'
    long_key = search.key_for("x" * RAW_ARGUMENTS_LIMIT)
    prefix, _, digest = long_key.partition(":")
    assert prefix == f"{__name__}.{search.__qualname__}"
    assert digest.startswith("#")
    assert len(digest) == 65
    assert search.key_for("x" * 10_000) != search.key_for("x" * 10_001)


def test_non_ascii_and_control_characters_are_escaped_in_keys(cache: InMemoryCache) -> None:
    @cached(cache, prefix="echo")
    async def echo(text: str) -> str:
        return text

    key = echo.key_for("é\x00\u202e")
    assert key.isascii()
    assert key == 'echo:["\\u00e9\\u0000\\u202e"]'
    assert echo.key_for("\ud800") != echo.key_for("\udc00")  # lone surrogates too


def test_prefix_replaces_the_function_name(cache: InMemoryCache) -> None:
    @cached(cache, prefix="users:v2")
    async def user(user_id: int) -> int:
        return user_id

    assert user.key_for(5) == "users\\:v2:[5]"


def test_keys_do_not_depend_on_hash_randomization(cache: InMemoryCache) -> None:
    script = (
        "from stratacache import InMemoryCache\n"
        "from stratacache._decorators import cached\n"
        "@cached(InMemoryCache(), prefix='fixed')\n"
        "async def f(a, b, c): ...\n"
        "print(f.key_for({'x', 'y', 'z', 'w'}, frozenset({1, 'a', (2, 'b')}), "
        "{'k': {'q', 'r'}, 1: [None]}))\n"
    )
    keys = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        keys.add(done.stdout.strip())
    assert len(keys) == 1
    assert next(iter(keys)).startswith("fixed:")


async def test_an_argument_without_a_stable_encoding_is_refused_by_name(
    cache: InMemoryCache,
) -> None:
    @cached(cache)
    async def query(conn: Any, sql: str) -> int:
        return 1

    with pytest.raises(SerializationError, match=r"argument 'conn' .*Opaque.*key=") as raised:
        await query(Opaque(), "select 1")
    assert raised.value.context == {
        "function": query.__qualname__,
        "argument": "conn",
        "type": "Opaque",
    }
    with pytest.raises(SerializationError, match="'conn'"):
        await query([1, {"nested": Opaque()}], "select 1")
    with pytest.raises(SerializationError, match="'conn'"):
        await query(lambda: 1, "select 1")


async def test_a_self_containing_argument_is_refused(cache: InMemoryCache) -> None:
    @cached(cache)
    async def size(items: list[Any]) -> int:
        return len(items)

    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(SerializationError, match="contains itself"):
        await size(loop)
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(SerializationError, match="nested too deeply"):
        await size(deep)


async def test_a_sentinel_default_stands_for_the_default(cache: InMemoryCache) -> None:
    unset = object()
    calls = Calls()

    @cached(cache)
    async def lookup(name: str, fallback: Any = unset) -> str:
        calls(name)
        return name if fallback is unset else str(fallback)

    assert await lookup("a") == "a"
    assert await lookup("a", unset) == "a"
    assert len(calls) == 1
    with pytest.raises(SerializationError):
        await lookup("a", object())  # another object is not the default


async def test_cache_key_hook_gives_objects_a_stable_key(cache: InMemoryCache) -> None:
    calls = Calls()

    @cached(cache)
    async def orders(customer: Customer) -> int:
        calls(customer.id)
        return customer.id

    await orders(Customer(1))
    await orders(Customer(1))  # another object, same key
    await orders(Customer(2))
    assert calls.args == [(1,), (2,)]


async def test_dataclasses_and_pydantic_models_are_encoded_by_value(
    cache: InMemoryCache,
) -> None:
    class Filter(BaseModel):
        tags: list[str]

    @cached(cache)
    async def search(point: Point, filters: Any) -> int:
        return point.x

    same = search.key_for(Point(1, 2), Filter(tags=["a"]))
    assert same == search.key_for(Point(1, 2), Filter(tags=["a"]))
    assert same != search.key_for(Point(1, 3), Filter(tags=["a"]))
    assert same != search.key_for(Point(1, 2), Filter(tags=["b"]))


async def test_custom_key_function_and_template(cache: InMemoryCache) -> None:
    @cached(cache, key=lambda user_id, **_: f"user:{user_id}")
    async def user(user_id: int, *, verbose: bool = False) -> str:
        return f"user {user_id}"

    @cached(cache, key="profile:{user_id}:{lang}")
    async def profile(user_id: int, lang: str = "en") -> str:
        return f"profile {user_id} {lang}"

    assert await user(5, verbose=True) == "user 5"
    assert await cache.get("user:5") == "user 5"
    assert await user(5) == "user 5"  # same key, though the arguments differ
    assert await profile(5) == "profile 5 en"
    assert await cache.get("profile:5:en") == "profile 5 en"
    assert profile.key_for(5, lang="fr") == "profile:5:fr"


async def test_a_bad_cache_key_hook_on_self_is_reported(cache: InMemoryCache) -> None:
    class Service:
        def __cache_key__(self) -> object:
            return object()

        @cached(cache)
        async def run(self) -> int:
            return 1

    with pytest.raises(SerializationError, match=r"Service.__cache_key__\(\) returned"):
        await Service().run()


def test_a_default_key_prefix_that_leaves_no_room_is_refused(cache: InMemoryCache) -> None:
    @cached(cache, prefix="p" * 1020)
    async def one(n: int) -> int:
        return n

    with pytest.raises(ValidationError, match="prefix= to @cached"):
        one.key_for(12345)


def test_bad_key_templates_fail_at_decoration(cache: InMemoryCache) -> None:
    async def user(user_id: int) -> int:
        return user_id

    with pytest.raises(ValidationError, match="'uid', which is not a parameter"):
        cached(cache, key="user:{uid}")(user)
    with pytest.raises(ValidationError, match="must name parameters"):
        cached(cache, key="user:{0}")(user)
    with pytest.raises(ValidationError, match="must name parameters"):
        cached(cache, key="user:{}")(user)
    with pytest.raises(ValidationError, match="malformed"):
        cached(cache, key="user:{user_id")(user)


async def test_keys_that_fail_at_call_time_are_validation_errors(cache: InMemoryCache) -> None:
    @cached(cache, key="user:{user_id.missing}")
    async def user(user_id: int) -> int:
        return user_id

    @cached(cache, key=lambda n: n)
    async def numbered(n: int) -> int:
        return n

    @cached(cache, key=lambda n: "")
    async def empty(n: int) -> int:
        return n

    with pytest.raises(ValidationError, match="key template"):
        await user(1)
    with pytest.raises(ValidationError, match="returned int, not str"):
        await numbered(1)
    with pytest.raises(ValidationError, match="empty"):
        await empty(1)


async def test_wrong_arguments_raise_type_error_naming_the_function(
    cache: InMemoryCache,
) -> None:
    @cached(cache)
    async def one(n: int) -> int:
        return n

    with pytest.raises(TypeError, match="one"):
        await one()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="one"):
        await one(1, 2)  # type: ignore[call-arg]


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.binary(max_size=3)
)
_HASHABLE = st.recursive(
    _SCALARS, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=2
)
VALUES = st.recursive(
    _HASHABLE,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.sets(_HASHABLE, max_size=3)
        | st.dictionaries(_HASHABLE, inner, max_size=3)
    ),
    max_leaves=8,
)


@given(values=st.lists(VALUES, min_size=2, max_size=2))
@settings(max_examples=500, deadline=None)
def test_keys_are_injective_over_typed_values(values: list[Any]) -> None:
    """Two arguments share a key exactly when they are equal values of equal types."""
    first, second = values
    same_key = echo_any.key_for(first) == echo_any.key_for(second)
    assert same_key == (_shape(first) == _shape(second))


# -- methods ------------------------------------------------------------------------


async def test_methods_share_results_across_instances_without_identity(
    cache: InMemoryCache,
) -> None:
    calls = Calls()

    class Service:
        @cached(cache)
        async def price(self, sku: str) -> int:
            calls(sku)
            return len(sku)

    first, second = Service(), Service()
    assert await first.price("abc") == 3
    assert await second.price("abc") == 3
    assert await Service.price(first, "abc") == 3
    assert len(calls) == 1
    assert first.price.key_for("abc") == Service.price.key_for(second, "abc")
    assert "0x" not in first.price.key_for("abc")  # no id() in the key
    assert await second.price.invalidate("abc") is True
    assert not await cache.exists(first.price.key_for("abc"))


async def test_instances_with_a_cache_key_keep_their_own_results(
    cache: InMemoryCache,
) -> None:
    class Repository:
        def __init__(self, tenant: str) -> None:
            self.tenant = tenant

        def __cache_key__(self) -> str:
            return self.tenant

        @cached(cache)
        async def count(self, table: str) -> str:
            return f"{self.tenant}.{table}"

    assert await Repository("a").count("users") == "a.users"
    assert await Repository("b").count("users") == "b.users"
    assert await Repository("a").count("users") == "a.users"


async def test_subclasses_and_classmethods_are_keyed_by_class_name(
    cache: InMemoryCache,
) -> None:
    class Base:
        kind = "base"

        @cached(cache)
        async def describe(self) -> str:
            return self.kind

        @classmethod
        @cached(cache)
        async def make(cls, n: int) -> str:
            return f"{cls.kind}{n}"

    class Child(Base):
        kind = "child"

    assert await Base().describe() == "base"
    assert await Child().describe() == "child"
    # mypy does not bind cls through a classmethod over a callable object (functools.cache
    # escapes only because its wrapper takes any arguments): the calls need an ignore.
    assert await Base.make(1) == "base1"  # type: ignore[call-arg, arg-type]
    assert await Child.make(1) == "child1"  # type: ignore[call-arg, arg-type]


def test_stacking_above_classmethod_is_refused(cache: InMemoryCache) -> None:
    with pytest.raises(ValidationError, match="below @classmethod"):
        cached(cache)(classmethod(lambda cls: 1))  # type: ignore[call-overload]


def test_metadata_and_signature_are_preserved(cache: InMemoryCache) -> None:
    async def fetch(user_id: int, *, full: bool = False) -> dict[str, int]:
        """Fetch a user."""
        return {}

    def render(name: str) -> str:
        """Render a name."""
        return name

    cached_fetch = cached(cache)(fetch)
    cached_render = cached(cache)(render)
    assert cached_fetch.__name__ == "fetch"
    assert cached_fetch.__doc__ == "Fetch a user."
    assert cached_fetch.__wrapped__ is fetch
    assert inspect.signature(cached_fetch) == inspect.signature(fetch)
    assert inspect.signature(cached_render) == inspect.signature(render)
    assert asyncio.iscoroutinefunction(cached_fetch)
    assert not asyncio.iscoroutinefunction(cached_render)
    assert "fetch" in repr(cached_fetch)

    class Thing:
        @cached(cache)
        async def method(self, n: int) -> int:
            return n

    assert list(inspect.signature(Thing().method).parameters) == ["n"]


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"ttl": -1}, "non-negative"),
        ({"ttl": 1.5}, "integer"),
        ({"key": 5}, "format string or a callable"),
        ({"key": ""}, "format string or a callable"),
        ({"tags": "users"}, "not a single str"),
        ({"tags": [""]}, "tag"),
        ({"prefix": ""}, "prefix"),
    ],
)
def test_bad_options_are_refused_at_decoration(
    cache: InMemoryCache, options: dict[str, Any], phrase: str
) -> None:
    with pytest.raises(ValidationError, match=phrase):
        cached(cache, **options)


def test_things_that_cannot_be_cached_are_refused(cache: InMemoryCache) -> None:
    with pytest.raises(ValidationError, match="CacheInterface"):
        cached("redis://localhost")  # type: ignore[arg-type]

    def numbers() -> Iterator[int]:
        yield 1

    async def stream() -> Any:
        yield 1

    with pytest.raises(ValidationError, match="generator"):
        cached(cache)(numbers)
    with pytest.raises(ValidationError, match="generator"):
        cached(cache)(stream)
    with pytest.raises(ValidationError, match="decorates functions"):
        cached(cache)(42)  # type: ignore[call-overload]


async def test_computed_tags_are_validated(cache: InMemoryCache) -> None:
    @cached(cache, tags=lambda n: f"n:{n}")  # a str, not a list of tags
    async def value(n: int) -> int:
        return n

    with pytest.raises(ValidationError, match="not a single str"):
        await value(1)


# -- sync functions ---------------------------------------------------------------------


def test_a_sync_function_runs_once_in_the_calling_thread(cache: InMemoryCache) -> None:
    calls = Calls()
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

    @cached(cache)
    def render(name: str) -> dict[str, Any]:
        calls(name, threading.get_ident(), request_id.get())
        return {"name": name}

    request_id.set("r-1")
    assert render("ann") == {"name": "ann"}
    assert render("ann") == {"name": "ann"}
    assert calls.args == [("ann", threading.get_ident(), "r-1")]
    assert render.invalidate("ann") is True
    assert render.invalidate("ann") is False
    render("ann")
    assert len(calls) == 2


def test_a_sync_failure_is_raised_and_not_cached(cache: InMemoryCache) -> None:
    calls = Calls()

    @cached(cache)
    def parse(text: str) -> int:
        calls(text)
        return int(text)

    for _ in range(2):
        with pytest.raises(ValueError, match="invalid literal"):
            parse("x")
    assert len(calls) == 2


def test_a_base_exception_in_the_loading_thread_lets_another_load(
    cache: InMemoryCache,
) -> None:
    class Stop(BaseException):
        pass

    calls = Calls()

    @cached(cache)
    def risky(n: int) -> int:
        calls(n)
        if len(calls) == 1:
            raise Stop
        return n

    with pytest.raises(Stop):
        risky(1)
    assert risky(1) == 1
    assert len(calls) == 2


def test_threads_calling_a_sync_function_load_it_once(cache: InMemoryCache) -> None:
    calls = Calls()
    release = threading.Event()
    results: list[int] = []

    @cached(cache)
    def slow(n: int) -> int:
        calls(n)
        assert release.wait(10)
        return n * 2

    threads = [threading.Thread(target=lambda: results.append(slow(21))) for _ in range(20)]
    for thread in threads:
        thread.start()
    for _ in range(10_000):  # until every thread waits on the one load
        if cache.get_stats()["misses"] >= 20:
            break
        release.wait(0.001)
    release.set()
    for thread in threads:
        thread.join(10)
    assert calls.args == [(21,)]
    assert results == [42] * 20


async def test_a_sync_function_may_be_called_from_a_running_loop(
    cache: InMemoryCache,
) -> None:
    calls = Calls()

    @cached(cache)
    def total(items: tuple[int, ...]) -> int:
        calls(items)
        return sum(items)

    assert total((1, 2, 3)) == 6
    assert total((1, 2, 3)) == 6
    assert len(calls) == 1
    assert await cache.get(total.key_for((1, 2, 3))) == 6


def test_sync_methods_bind_self(cache: InMemoryCache) -> None:
    class Greeter:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        @cached(cache, key="greet:{self.greeting}:{name}")
        def greet(self, name: str) -> str:
            return f"{self.greeting}, {name}"

    assert Greeter("hi").greet("ann") == "hi, ann"
    assert Greeter("yo").greet("ann") == "yo, ann"
    assert Greeter("hi").greet.key_for("ann") == "greet:hi:ann"


# -- helpers ----------------------------------------------------------------------------


class Opaque:
    pass


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    ONE = 1


class Text(str):
    pass


class Count(int):
    pass


class Ratio(float):
    pass


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class Pair:
    x: int
    y: int


class Customer:
    def __init__(self, customer_id: int) -> None:
        self.id = customer_id

    def __cache_key__(self) -> int:
        return self.id


@cached(InMemoryCache(), prefix="echo")
async def echo_any(value: Any) -> Any:
    return value


def _shape(value: Any) -> Any:
    """Equal exactly when the values are equal and of the same types, all the way down."""
    kind = type(value)
    if kind is float:
        return (kind, repr(value))  # -0.0 and 0.0 differ in their keys, deliberately
    if kind in (list, tuple):
        return (kind, tuple(_shape(item) for item in value))
    if kind in (set, frozenset):
        return (kind, frozenset(_shape(item) for item in value))
    if kind is dict:
        return (kind, frozenset((_shape(k), _shape(v)) for k, v in value.items()))
    return (kind, value)


async def _until(condition: Any) -> None:
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def test_the_echo_helper_is_a_cached_function() -> None:
    assert json.loads(echo_any.key_for([1, "a"]).partition(":")[2]) == [["list", 1, "a"]]


# -- loading policies ----------------------------------------------------------------


async def test_policies_apply_to_async_functions(cache: InMemoryCache, clock: FakeClock) -> None:
    version = 1

    @cached(cache, ttl=10, stale_while_revalidate=30)
    async def report(day: int) -> str:
        return f"v{version}"

    assert await report(1) == "v1"
    clock.advance(15)
    version = 2
    assert await report(1) == "v1"  # stale, served at once; a reload starts behind it
    for _ in range(1000):
        if await cache.get(report.key_for(1)) == "v2":
            break
        await asyncio.sleep(0)
    assert await report(1) == "v2"


def test_a_sync_function_reloads_in_the_background_in_a_worker_thread(
    cache: InMemoryCache, clock: FakeClock
) -> None:
    threads: list[str] = []
    version = 1

    @cached(cache, ttl=10, stale_while_revalidate=30)
    def price(item: str) -> int:
        threads.append(threading.current_thread().name)
        return version

    assert price("tea") == 1
    clock.advance(15)
    version = 2
    assert price("tea") == 1  # stale, at once
    for _ in range(1000):  # the reload runs on its own; wait for it, bounded
        if price("tea") == 2:
            break
        threading.Event().wait(0.005)
    assert price("tea") == 2
    assert threads[0] == threading.current_thread().name  # the caller's thread
    assert threads[1] != threading.current_thread().name  # a worker's


def test_a_sync_function_takes_stale_if_error(cache: InMemoryCache, clock: FakeClock) -> None:
    failing = False

    @cached(cache, ttl=10, stale_if_error=60)
    def price(item: str) -> int:
        if failing:
            raise LookupError("pricing service down")
        return 42

    assert price("tea") == 42
    clock.advance(20)
    failing = True
    assert price("tea") == 42  # expired, but the fresh load failed
    assert price("tea") == 42  # at once: the next retry is a second away


def test_loader_timeout_needs_an_async_function(cache: InMemoryCache) -> None:
    with pytest.raises(ValidationError, match="loader_timeout: only for async functions"):

        @cached(cache, loader_timeout=1)
        def sync(n: int) -> int:
            return n


def test_bad_policy_options_fail_at_decoration(cache: InMemoryCache) -> None:
    with pytest.raises(ValidationError, match="unknown get_or_set option"):
        cached(cache, stale_while_revalidat=5)
    with pytest.raises(ValidationError, match="stale_if_error must be from 0"):
        cached(cache, stale_if_error=-1)
