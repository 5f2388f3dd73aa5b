"""Contract: clear, patterns and tags remove exactly what they name."""

from __future__ import annotations

import pytest

from stratacache import CacheInterface, ValidationError


async def _fill(cache: CacheInterface, *keys: str) -> None:
    await cache.set_many({key: key for key in keys})


async def _remaining(cache: CacheInterface, *keys: str) -> set[str]:
    return set(await cache.get_many(keys))


@pytest.mark.parametrize(
    ("pattern", "removed"),
    [
        ("user:*", {"user:1", "user:22", "user:"}),
        ("user:?", {"user:1"}),
        ("user:[12]*", {"user:1", "user:22"}),
        ("user:[^1]*", {"user:22"}),
        ("*:1", {"user:1", "post:1"}),
        (r"lit\*", {"lit*"}),
        ("*", {"user:1", "user:22", "user:", "post:1", "lit*", "litx"}),
        ("nothing*", set()),
    ],
)
async def test_invalidate_pattern_follows_redis_glob_rules(
    cache: CacheInterface, pattern: str, removed: set[str]
) -> None:
    keys = ("user:1", "user:22", "user:", "post:1", "lit*", "litx")
    await _fill(cache, *keys)
    assert await cache.invalidate_pattern(pattern) == len(removed)
    assert await _remaining(cache, *keys) == set(keys) - removed


@pytest.mark.parametrize(
    ("pattern", "phrase"), [("", "empty"), ("a\x00", "NUL"), ("x" * 1025, "at most"), (5, "str")]
)
async def test_bad_patterns_raise_validation_error(
    cache: CacheInterface, pattern: object, phrase: str
) -> None:
    with pytest.raises(ValidationError, match=phrase):
        await cache.invalidate_pattern(pattern)  # type: ignore[arg-type]


async def test_tags_invalidate_every_tagged_entry(cache: CacheInterface) -> None:
    await cache.set("u1", 1, tags=["users", "team:a"])
    await cache.set("u2", 2, tags=["users"])
    await cache.set("p1", 3, tags=["posts"])
    await cache.set("plain", 4)
    assert await cache.invalidate_tags("users") == 2
    assert await _remaining(cache, "u1", "u2", "p1", "plain") == {"p1", "plain"}
    assert await cache.invalidate_tags("users") == 0


async def test_invalidating_several_tags_counts_each_entry_once(cache: CacheInterface) -> None:
    await cache.set("both", 1, tags=["a", "b"])
    await cache.set("a-only", 2, tags=["a"])
    assert await cache.invalidate_tags("a", "b", "never-used") == 2


async def test_overwriting_without_tags_drops_the_old_tags(cache: CacheInterface) -> None:
    await cache.set("k", 1, tags=["t"])
    await cache.set("k", 2)
    assert await cache.invalidate_tags("t") == 0
    assert await cache.get("k") == 2


async def test_get_or_set_can_tag_what_it_loads(cache: CacheInterface) -> None:
    assert await cache.get_or_set("k", lambda: "loaded", tags=["group"]) == "loaded"
    assert await cache.invalidate_tags("group") == 1


@pytest.mark.parametrize("tags", ["single-string", [""], ["ok", 5], [None]])
async def test_bad_tags_raise_validation_error(cache: CacheInterface, tags: object) -> None:
    with pytest.raises(ValidationError, match="tag"):
        await cache.set("k", 1, tags=tags)  # type: ignore[arg-type]
    assert not await cache.exists("k")


async def test_clear_removes_everything(cache: CacheInterface) -> None:
    await _fill(cache, "a", "b", "c")
    await cache.set("tagged", 1, tags=["t"])
    await cache.clear()
    assert await _remaining(cache, "a", "b", "c", "tagged") == set()
    assert await cache.invalidate_tags("t") == 0
    await cache.set("after", 1)
    assert await cache.get("after") == 1
