"""``scan_keys``: paginated key browsing, the same promises from every cache.

Pages are bounded by ``count``; walking the cursors to ``"0"`` returns every live key
of the cache once, as the caller wrote it (no namespace, prefix or tenant part),
never an internal key or an expired one; patterns select what
``invalidate_pattern`` would remove; a cursor the cache did not hand out is refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import CacheInterface, ValidationError
from stratacache.caches._interface import MAX_SCAN_COUNT, SCAN_DONE

from _support import Subject


async def _walk(cache: CacheInterface, pattern: str = "*", count: int = 100) -> list[str]:
    """Every key ``scan_keys`` returns for ``pattern``, checking each page's bound."""
    keys: list[str] = []
    cursor: str | int = 0
    for _ in range(100_000):
        cursor, page = await cache.scan_keys(pattern, cursor=cursor, count=count)
        assert isinstance(cursor, str)
        assert len(page) <= count
        keys += page
        if cursor == SCAN_DONE:
            return keys
    raise AssertionError("the scan never ended")


async def test_pages_return_every_key_exactly_once(cache: CacheInterface) -> None:
    expected = {f"item:{i:04d}" for i in range(250)}
    await cache.set_many(dict.fromkeys(expected, "v"))

    keys = await _walk(cache, count=100)

    assert len(keys) == len(set(keys))
    assert set(keys) == expected


async def test_one_key_per_page_still_ends(cache: CacheInterface) -> None:
    await cache.set_many({f"k{i}": i for i in range(7)})
    keys = await _walk(cache, count=1)
    assert sorted(keys) == sorted(f"k{i}" for i in range(7))


async def test_patterns_select_what_invalidate_pattern_would(cache: CacheInterface) -> None:
    keys = ["user:1", "user:22", "user:", "order:1", "xuser:1", "us*er:1", "user:\u00e9"]
    await cache.set_many(dict.fromkeys(keys, 1))

    assert sorted(await _walk(cache, "user:*")) == ["user:", "user:1", "user:22", "user:\u00e9"]
    assert sorted(await _walk(cache, "user:?")) == ["user:1"]
    assert await _walk(cache, "us\\*er:*") == ["us*er:1"]
    assert sorted(await _walk(cache, "[ox]*")) == ["order:1", "xuser:1"]
    assert await _walk(cache, "nothing:*") == []

    removed = await cache.invalidate_pattern("user:*")
    assert removed == 4
    assert sorted(await _walk(cache)) == ["order:1", "us*er:1", "xuser:1"]


async def test_internal_and_expired_keys_are_never_listed(subject: Subject) -> None:
    cache = subject.cache
    await cache.set("tagged", 1, tags=["t1", "t2"])
    await cache.set("short", 1, ttl=10)
    await cache.set("long", 1, ttl=1000)
    await subject.advance(20)

    assert sorted(await _walk(cache)) == ["long", "tagged"]


async def test_an_empty_cache_has_no_keys(cache: CacheInterface) -> None:
    assert await _walk(cache, count=MAX_SCAN_COUNT) == []


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"count": 0}, "count"),
        ({"count": MAX_SCAN_COUNT + 1}, "count"),
        ({"count": True}, "count"),
        ({"count": "10"}, "count"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": 7}, "cursor"),
        ({"cursor": None}, "cursor"),
        ({"cursor": "x" * 10_000}, "cursor"),
    ],
)
async def test_bad_arguments_are_refused(
    cache: CacheInterface, arguments: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        await cache.scan_keys("*", **arguments)


@pytest.mark.parametrize("pattern", ["", "a\x00b", 5])
async def test_bad_patterns_are_refused(cache: CacheInterface, pattern: Any) -> None:
    with pytest.raises(ValidationError, match="pattern"):
        await cache.scan_keys(pattern)


# -- Redis specifics: keys stratacache did not write, and forged cursors --------------------


@pytest.mark.redis
async def test_redis_scan_skips_keys_that_are_not_utf8_and_refuses_forged_cursors(
    redis_url: str, unique_prefix: str, redis_sync: Any
) -> None:
    from stratacache import ClientOptions, RedisCache

    options = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)
    async with RedisCache(redis_url, prefix=unique_prefix, options=options) as cache:
        await cache.set("mine", 1)
        redis_sync.set(unique_prefix.encode() + b"\xff\xfe-foreign", b"x", ex=60)
        assert await _walk(cache) == ["mine"]
        for forged in ("r12x", "rabc", "r", "r" + "9" * 25, "r1-2", "k" + "A" * 8):
            with pytest.raises(ValidationError, match="cursor"):
                await cache.scan_keys(cursor=forged)
        redis_sync.delete(unique_prefix.encode() + b"\xff\xfe-foreign")
        await cache.clear()


@pytest.mark.redis
@pytest.mark.slow
async def test_cluster_cursors_name_a_primary_and_its_cursor(
    redis_cluster: Any, unique_prefix: str
) -> None:
    from stratacache import ClientOptions, RedisCache

    options = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)
    async with RedisCache(redis_cluster.url, prefix=unique_prefix, options=options) as cache:
        await cache.set_many({f"k{i}": i for i in range(60)})
        cursor, page = await cache.scan_keys(count=5)
        assert cursor.startswith("r")
        assert len(page) <= 5
        node, _, position = cursor[1:].partition("-")
        assert node.isdigit()
        assert position.isdigit()
        for forged in ("r99-0", "r12", "r-1", "r0-x"):
            with pytest.raises(ValidationError, match="cursor"):
                await cache.scan_keys(cursor=forged)
        assert sorted(await _walk(cache, count=7)) == sorted(f"k{i}" for i in range(60))
        await cache.clear()
