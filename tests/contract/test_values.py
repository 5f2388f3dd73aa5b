"""Contract: values round-trip exactly and keys are validated, for every cache."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from stratacache import MISSING, CacheInterface, SerializationError, ValidationError

from _support import Subject

VALUES: list[Any] = [
    "text",
    "",
    "ünïcødé ✓",
    b"\x00\xffbytes",
    0,
    -(2**70),
    3.25,
    True,
    None,
    [1, "two", [3.0]],
    {"nested": {"list": [1, 2], "none": None}},
    (1, (2, "three")),
    {1, 2, 3},
    frozenset({"a"}),
    dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc),
    dt.date(2024, 2, 29),
    dt.time(23, 59, 59),
    dt.timedelta(days=-1, seconds=5),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("-1.10E+5"),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
async def test_values_round_trip_with_their_type(cache: CacheInterface, value: Any) -> None:
    await cache.set("k", value)
    got = await cache.get("k", MISSING)
    assert got == value
    assert type(got) is type(value)


async def test_missing_key_returns_default(cache: CacheInterface) -> None:
    assert await cache.get("absent") is None
    assert await cache.get("absent", "fallback") == "fallback"


async def test_cached_none_is_a_hit_not_a_miss(cache: CacheInterface) -> None:
    await cache.set("none", None)
    assert await cache.get("none", MISSING) is None
    assert await cache.exists("none")
    assert cache.get_stats()["hits"] == 1


async def test_mutating_stored_or_returned_objects_never_changes_the_cache(
    cache: CacheInterface,
) -> None:
    original = {"items": [1, 2]}
    await cache.set("doc", original)
    original["items"].append(3)
    first = await cache.get("doc")
    first["items"].append(4)
    assert await cache.get("doc") == {"items": [1, 2]}


async def test_overwrite_replaces_value(cache: CacheInterface) -> None:
    await cache.set("k", "old")
    await cache.set("k", {"new": True})
    assert await cache.get("k") == {"new": True}


@pytest.mark.parametrize(
    ("key", "phrase"),
    [
        ("", "empty"),
        ("x" * 1025, "at most 1024"),
        ("a\x00b", "NUL"),
        (42, "must be str"),
        (b"bytes", "must be str"),
        (None, "must be str"),
    ],
)
async def test_invalid_keys_raise_validation_error(
    cache: CacheInterface, key: Any, phrase: str
) -> None:
    for operation in (
        cache.get(key),
        cache.set(key, 1),
        cache.delete(key),
        cache.exists(key),
        cache.get_ttl(key),
        cache.incr(key),
    ):
        with pytest.raises(ValidationError, match=phrase):
            await operation


async def test_validation_error_is_a_value_error(cache: CacheInterface) -> None:
    with pytest.raises(ValueError, match="empty"):
        await cache.get("")


async def test_longest_valid_key_works(subject: Subject) -> None:
    cache = subject.cache
    key = "k" * subject.max_key_length
    await cache.set(key, "v")
    assert await cache.get(key) == "v"


async def test_unhashable_key_is_a_validation_error(cache: CacheInterface) -> None:
    with pytest.raises(ValidationError):
        await cache.get(["not", "a", "key"])  # type: ignore[arg-type]


class Opaque:
    pass


async def test_unsupported_value_raises_serialization_error_naming_type_and_fix(
    cache: CacheInterface,
) -> None:
    with pytest.raises(SerializationError, match=r"Opaque.*register") as raised:
        await cache.set("k", {"inner": Opaque()})
    assert isinstance(raised.value, TypeError)
    assert await cache.get("k", MISSING) is MISSING


async def test_self_referencing_value_raises_serialization_error(cache: CacheInterface) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError):
        await cache.set("k", loop)


async def test_many_operations(cache: CacheInterface) -> None:
    await cache.set_many({"a": 1, "b": [2], "c": None})
    assert await cache.get_many(["a", "b", "c", "missing"]) == {"a": 1, "b": [2], "c": None}
    assert await cache.delete_many(["a", "c", "missing"]) == 2
    assert await cache.get_many(["a", "b"]) == {"b": [2]}


async def test_set_many_stores_nothing_when_one_value_is_bad(cache: CacheInterface) -> None:
    with pytest.raises(SerializationError):
        await cache.set_many({"good": 1, "bad": Opaque()})
    assert await cache.get("good") is None


async def test_a_single_string_is_not_taken_for_a_list_of_keys(cache: CacheInterface) -> None:
    with pytest.raises(ValidationError, match="not a single str"):
        await cache.get_many("abc")
    with pytest.raises(ValidationError, match="not a single str"):
        await cache.delete_many("abc")


async def test_delete_reports_whether_something_was_removed(cache: CacheInterface) -> None:
    await cache.set("k", 1)
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert not await cache.exists("k")


async def test_incr_counts_from_zero_and_keeps_ints(cache: CacheInterface) -> None:
    assert await cache.incr("n") == 1
    assert await cache.incr("n", 5) == 6
    assert await cache.incr("n", -10) == -4
    assert await cache.get("n") == -4


async def test_incr_of_a_new_counter_by_a_large_delta_is_exact(cache: CacheInterface) -> None:
    # Lua numbers are doubles: 10**15 must not come back as "1e+15".
    assert await cache.incr("big", 10**15) == 10**15
    assert await cache.incr("big", 2**62) == 10**15 + 2**62
    assert await cache.get("big") == 10**15 + 2**62


async def test_incr_refuses_non_integers(cache: CacheInterface) -> None:
    await cache.set("text", "abc")
    with pytest.raises(ValidationError, match="not an int"):
        await cache.incr("text")
    with pytest.raises(ValidationError, match="delta must be an int"):
        await cache.incr("n", 1.5)  # type: ignore[arg-type]


async def test_incr_refuses_to_leave_the_64_bit_range(cache: CacheInterface) -> None:
    await cache.set("big", 2**63 - 1)
    with pytest.raises(ValidationError, match="64-bit"):
        await cache.incr("big")
    assert await cache.get("big") == 2**63 - 1
