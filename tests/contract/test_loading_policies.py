"""Contract: get_or_set's policies (stale windows, XFetch, jitter, lease, loader timeout).

Time moves by ``subject.advance``, which moves every clock the cache reads: the
memory tier's, the wall clock its freshness stamps use, and Redis's TTLs.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Callable
from typing import Any

import pytest

from stratacache import CacheInterface, ValidationError

from _support import Subject


async def _eventually(check: Callable[[], Any], what: str) -> None:
    """Yield to the event loop until ``check()`` (awaited if async) is true; bounded."""
    for _ in range(100_000):
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


def _failing() -> Any:
    raise LookupError("the source is down")


async def test_a_stamped_entry_reads_back_as_its_bare_value(cache: CacheInterface) -> None:
    value = {"name": "Ada", "tags": ["x"]}
    loaded = await cache.get_or_set("k", lambda: value, 10, stale_while_revalidate=30, beta=1.0)
    assert loaded == value
    assert await cache.get("k") == value
    assert await cache.get("k") == value  # a two-tier cache answers this one from memory
    assert await cache.get_many(["k"]) == {"k": value}
    assert await cache.get_or_set("k", _failing) == value  # a plain get_or_set: fresh


async def test_stale_while_revalidate_serves_the_old_value_and_reloads_once(
    subject: Subject,
) -> None:
    cache = subject.cache
    await cache.get_or_set("k", lambda: "v1", 10, stale_while_revalidate=30)
    await subject.advance(11)  # past the TTL, inside the window
    calls = 0
    release = asyncio.Event()

    async def reload() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "v2"

    answers = await asyncio.gather(
        *(cache.get_or_set("k", reload, 10, stale_while_revalidate=30) for _ in range(20))
    )
    assert answers == ["v1"] * 20  # nobody waited for the reload
    release.set()

    async def reloaded() -> bool:
        return bool(await cache.get("k") == "v2")

    await _eventually(reloaded, "the background reload stored v2")
    assert calls == 1
    assert await cache.get_or_set("k", _failing, 10, stale_while_revalidate=30) == "v2"


async def test_past_the_stale_window_the_caller_waits_for_the_load(subject: Subject) -> None:
    cache = subject.cache
    await cache.get_or_set("k", lambda: "v1", 10, stale_while_revalidate=5)
    await subject.advance(16)
    assert await cache.get_or_set("k", lambda: "v2", 10, stale_while_revalidate=5) == "v2"


async def test_stale_if_error_serves_the_old_value_while_the_loader_fails(
    subject: Subject,
) -> None:
    cache = subject.cache
    await cache.get_or_set("k", lambda: "v1", 10, stale_if_error=60)
    await subject.advance(30)
    assert await cache.get_or_set("k", _failing, 10, stale_if_error=60) == "v1"
    await subject.advance(45)  # v1 expired 65 s ago: beyond its 60 s window
    with pytest.raises(LookupError):
        await cache.get_or_set("k", _failing, 10, stale_if_error=60)


async def test_while_loads_fail_callers_get_the_stale_value_at_once_and_one_retry_a_second(
    subject: Subject,
) -> None:
    cache = subject.cache
    await cache.get_or_set("k", lambda: "v1", 10, stale_if_error=600)
    await subject.advance(20)
    calls = 0
    source_up = False

    async def load() -> str:
        nonlocal calls
        calls += 1
        if not source_up:
            raise LookupError("the source is down")
        return "v2"

    assert await cache.get_or_set("k", load, 10, stale_if_error=600) == "v1"  # waited, failed
    for _ in range(20):  # within a second: nobody waits for, or runs, the loader
        assert await cache.get_or_set("k", load, 10, stale_if_error=600) == "v1"
    assert calls == 1
    source_up = True
    await subject.advance(1)
    assert await cache.get_or_set("k", load, 10, stale_if_error=600) == "v1"  # retry behind it

    async def recovered() -> bool:
        return bool(await cache.get("k") == "v2")

    await _eventually(recovered, "the background retry stored v2")
    assert calls == 2


async def test_without_stale_if_error_an_expired_entry_does_not_hide_an_error(
    subject: Subject,
) -> None:
    cache = subject.cache
    await cache.get_or_set("k", lambda: "v1", 10, stale_while_revalidate=5)
    await subject.advance(16)
    with pytest.raises(LookupError):
        await cache.get_or_set("k", _failing, 10, stale_while_revalidate=5)


async def test_xfetch_recomputes_a_slow_loaders_entry_before_it_expires(
    subject: Subject,
) -> None:
    cache = subject.cache

    async def slow_load() -> str:
        await subject.advance(2)  # the loader "takes" 2 s: delta in XFetch's formula
        return "v1"

    await cache.get_or_set("k", slow_load, 100, beta=1.0)
    await subject.advance(99)  # 1 s left: XFetch recomputes with probability 1 - e^-0.5
    random.seed(1)
    answers = [await cache.get_or_set("k", lambda: "v2", 100, beta=1.0) for _ in range(10)]
    assert answers[0] == "v1"  # an early recomputation never makes a caller wait

    async def recomputed() -> bool:
        return bool(await cache.get("k") == "v2")

    await _eventually(recomputed, "an early recomputation stored v2")
    assert (await cache.get_ttl("k") or 0) > 1  # before the old entry expired


async def test_ttl_jitter_shortens_each_ttl_by_up_to_its_fraction(cache: CacheInterface) -> None:
    random.seed(7)
    for i in range(20):
        await cache.get_or_set(f"k{i}", lambda: "v", 100, ttl_jitter=0.5)
    ttls = [await cache.get_ttl(f"k{i}") for i in range(20)]
    assert all(ttl is not None and 50 <= ttl <= 100 for ttl in ttls)
    assert len(set(ttls)) > 5  # spread out, not all expiring together


async def test_a_leased_load_runs_once_and_leaves_no_key_behind(cache: CacheInterface) -> None:
    calls = 0
    release = asyncio.Event()

    async def load() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "v"

    tasks = [asyncio.create_task(cache.get_or_set("k", load, lease=5)) for _ in range(50)]
    await _eventually(lambda: calls == 1, "the loader started")
    _, listed = await cache.scan_keys("*")
    assert listed == []  # a lease is never one of the cache's keys
    release.set()
    assert await asyncio.gather(*tasks) == ["v"] * 50
    assert calls == 1
    _, listed = await cache.scan_keys("*")
    assert listed == ["k"]


async def test_a_loader_that_overruns_its_timeout_fails_every_waiter(
    cache: CacheInterface,
) -> None:
    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    results = await asyncio.gather(
        *(cache.get_or_set("k", hang, loader_timeout=0.05) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(result, TimeoutError) for result in results)
    assert "loader_timeout=0.05" in str(results[0])
    assert not await cache.exists("k")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stale_while_revalidate": -1}, "stale_while_revalidate must be from 0"),
        ({"stale_if_error": float("nan")}, "stale_if_error must be a finite number"),
        ({"stale_if_error": "60"}, "stale_if_error must be a finite number"),
        ({"beta": True}, "beta must be a finite number"),
        ({"beta": 101}, "beta must be from 0 to at most 100"),
        ({"ttl_jitter": 1}, "ttl_jitter must be from 0 to below 1"),
        ({"lease": 0}, "lease must be more than 0 seconds"),
        ({"lease": 1, "loader_timeout": 5}, "must be at least loader_timeout"),
        ({"loader_timeout": 0}, "loader_timeout must be more than 0 seconds"),
        ({"tags": "users"}, "tags must be an iterable of str"),
    ],
)
async def test_bad_policy_options_are_refused_before_anything_runs(
    cache: CacheInterface, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        await cache.get_or_set("k", _failing, 10, **options)
    assert not await cache.exists("k")
