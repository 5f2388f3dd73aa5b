"""Contract: TTL semantics, identical for every cache."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import CacheInterface, ValidationError

from _support import Subject

TEN_YEARS = 10 * 365 * 24 * 3600


async def test_omitted_ttl_means_default_ttl(subject: Subject) -> None:
    default_ttl = subject.cache.default_ttl
    await subject.cache.set("k", "v")
    assert await subject.cache.get_ttl("k") == default_ttl
    await subject.advance(default_ttl - 1)
    assert await subject.cache.get("k") == "v"
    await subject.advance(1)
    assert await subject.cache.get("k") is None


async def test_explicit_ttl_expires_the_entry(subject: Subject) -> None:
    # Redis subjects age keys by shortening their PTTL while real time still flows:
    # leave each check a second of real time before the deadline.
    await subject.cache.set("k", {"a": 1}, ttl=5)
    await subject.advance(4.0)
    assert await subject.cache.get("k") == {"a": 1}
    await subject.advance(1.0)
    assert await subject.cache.get("k") is None
    assert not await subject.cache.exists("k")
    assert await subject.cache.get_ttl("k") is None


async def test_zero_ttl_never_expires(subject: Subject) -> None:
    await subject.cache.set("k", "forever", ttl=0)
    await subject.advance(TEN_YEARS)
    assert await subject.cache.get("k") == "forever"
    assert await subject.cache.get_ttl("k") == 0


@pytest.mark.parametrize(
    ("ttl", "phrase"),
    [(-1, "non-negative"), (1.5, "integer"), ("10", "integer"), (True, "integer")],
)
async def test_bad_ttls_raise_validation_error(
    cache: CacheInterface, ttl: Any, phrase: str
) -> None:
    with pytest.raises(ValidationError, match=phrase):
        await cache.set("k", "v", ttl=ttl)
    with pytest.raises(ValidationError, match=phrase):
        await cache.set_many({"k": "v"}, ttl=ttl)
    assert not await cache.exists("k")


async def test_get_ttl_rounds_up(subject: Subject) -> None:
    await subject.cache.set("k", "v", ttl=10)
    await subject.advance(9.01)  # 0.99 s left: rounds up to 1 (and leaves Redis a margin)
    assert await subject.cache.get_ttl("k") == 1


async def test_expire_sets_a_new_ttl(subject: Subject) -> None:
    await subject.cache.set("k", "v", ttl=10)
    assert await subject.cache.expire("k", 100)
    await subject.advance(50)
    assert await subject.cache.get("k") == "v"
    assert await subject.cache.get_ttl("k") == 50


async def test_expire_zero_makes_an_entry_persistent(subject: Subject) -> None:
    await subject.cache.set("k", "v", ttl=10)
    assert await subject.cache.expire("k", 0)
    await subject.advance(TEN_YEARS)
    assert await subject.cache.get("k") == "v"


async def test_expire_on_a_missing_or_expired_key_is_false(subject: Subject) -> None:
    assert not await subject.cache.expire("absent", 10)
    await subject.cache.set("k", "v", ttl=1)
    await subject.advance(1)
    assert not await subject.cache.expire("k", 10)
    assert await subject.cache.get("k") is None


async def test_incr_keeps_the_ttl_of_an_existing_counter(subject: Subject) -> None:
    await subject.cache.set("n", 1, ttl=10)
    await subject.cache.incr("n")
    await subject.advance(10)
    assert await subject.cache.get("n") is None


async def test_incr_of_an_expired_counter_starts_again(subject: Subject) -> None:
    await subject.cache.set("n", 41, ttl=1)
    await subject.advance(2)
    assert await subject.cache.incr("n") == 1


async def test_expired_entries_are_not_returned_by_get_many(subject: Subject) -> None:
    await subject.cache.set("short", 1, ttl=1)
    await subject.cache.set("long", 2, ttl=100)
    await subject.advance(1)
    assert await subject.cache.get_many(["short", "long"]) == {"long": 2}
