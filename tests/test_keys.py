"""Keys and patterns: Redis glob semantics, escaping and injective namespacing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratacache import InMemoryCache, ValidationError
from stratacache._keys import escape_glob, glob_matcher, namespace_prefix

GLOB_ALPHABET = st.sampled_from(["a", "b", "é", "*", "?", "[", "]", "^", "-", "\\", ":"])
KEY_ALPHABET = st.sampled_from(["a", "b", "é", "*", "?", "[", "]", "-", "\\", ":", "^"])
patterns = st.lists(GLOB_ALPHABET, min_size=1, max_size=7).map("".join)
keys = st.lists(KEY_ALPHABET, min_size=1, max_size=5).map("".join)


@pytest.mark.redis
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pattern=patterns, candidates=st.lists(keys, min_size=1, max_size=8, unique=True))
def test_memory_patterns_select_exactly_what_redis_selects(
    redis_sync: Any, unique_prefix: str, pattern: str, candidates: list[str]
) -> None:
    """Differential test: the memory tier's matcher against Redis's own SCAN MATCH."""
    prefix = unique_prefix
    redis_sync.mset({prefix + key: "1" for key in candidates})
    try:
        found = {
            key.decode()[len(prefix) :]
            for key in redis_sync.scan_iter(match=prefix + pattern, count=1000)
        }
    finally:
        redis_sync.delete(*(prefix + key for key in candidates))

    async def memory_selection() -> set[str]:
        cache = InMemoryCache()
        await cache.set_many({key: key for key in candidates})
        await cache.invalidate_pattern(pattern)
        return set(candidates) - set(await cache.get_many(candidates))

    assert asyncio.run(memory_selection()) == found


@given(text=st.text(min_size=1, max_size=20), other=st.text(min_size=1, max_size=20))
def test_an_escaped_text_matches_only_itself(text: str, other: str) -> None:
    matcher = glob_matcher(escape_glob(text))
    assert matcher.fullmatch(text.encode())
    assert (matcher.fullmatch(other.encode()) is not None) == (other == text)


names = st.text(alphabet=st.sampled_from(["a", ":", "\\", "*"]), min_size=1, max_size=6)
suffixes = st.text(alphabet=st.sampled_from(["a", ":", "\\", "*"]), max_size=6)


@given(ns1=names, key1=suffixes, ns2=names, key2=suffixes)
def test_distinct_namespace_and_key_pairs_never_collide(
    ns1: str, key1: str, ns2: str, key2: str
) -> None:
    if (ns1, key1) != (ns2, key2):
        assert namespace_prefix(ns1) + key1 != namespace_prefix(ns2) + key2


def test_an_empty_namespace_adds_no_prefix() -> None:
    assert namespace_prefix("") == ""
    assert namespace_prefix("app") == "app:"
    assert namespace_prefix("a:b\\") == "a\\:b\\\\:"


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("[abc", "b", True),  # an unterminated class ends with the pattern, as in Redis
        ("[a-]", "]", True),  # 'a-]' is the range ']'..'a'
        ("[z-a]", "m", True),  # reversed ranges swap
        ("[]", "a", False),
        ("[^]", "a", True),
        ("a\\", "a\\", True),  # a trailing backslash is literal
        ("?", "é", False),  # '?' is one byte; 'é' is two
        ("??", "é", True),
        ("a**b", "ab", True),
        ("[é-a", "b", False),  # ranges compare signed chars: 0xA9 sorts below 'a'
        ("[é-a]*", "é", True),  # é's first byte 0xC3 is a member
    ],
)
def test_redis_glob_corner_cases(pattern: str, key: str, matches: bool) -> None:
    assert (glob_matcher(pattern).fullmatch(key.encode()) is not None) == matches


async def test_lone_surrogates_are_refused_in_keys_patterns_and_tags() -> None:
    cache = InMemoryCache()
    lone = "caf\udce9"  # what bytes decoded with errors="surrogateescape" look like
    for call in (
        cache.get(lone),
        cache.invalidate_pattern(lone + "*"),
        cache.set("k", 1, tags=[lone]),
    ):
        with pytest.raises(ValidationError, match="lone surrogate"):
            await call
    await cache.set("café ✓", 1, tags=["ünïcode"])  # real non-ASCII text is fine
    assert await cache.invalidate_tags("ünïcode") == 1
