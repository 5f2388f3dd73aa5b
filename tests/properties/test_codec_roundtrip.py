"""Round trips and tampering: the value semantics of CONTRACT §1, as properties.

Every type §1 lists, nested any way, reads back equal *and of exactly the same type
all the way down* (a tuple in a list stays a tuple, ``True`` is not ``1``, ``1.0`` is
not ``1``), through every codec configuration (plain, compressed, signed pickle,
signed pickle compressed) and through ``InMemoryCache``. Stored bytes that are
garbage, truncated, flipped, unsigned, signed for another key or with another
secret raise ``UndecodableValue`` — and never run code.

``stratacache._codec.UndecodableValue`` is the one private import: it is what
``Codec.decode`` promises to raise, and the caches turn it into a miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime as dt
import enum
import logging
import math
import pickle
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, PrivateAttr

import stratacache
from stratacache import Codec
from stratacache._codec import UndecodableValue

from _support import scribble

MISSING = stratacache.MISSING
SECRET = b"k" * 32
OTHER_SECRET = b"o" * 32
KEY = "some:key"

# -- registered types ------------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: str = ""


@dataclasses.dataclass(frozen=True)
class Box:
    """A frozen dataclass holding any §1 value, possibly another registered one."""

    value: Any
    tag: str = "box"


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Order(BaseModel):
    id: int
    items: list[str]
    point: Point | None = None


class Holder(BaseModel):
    """A pydantic model holding any §1 value, with extra fields allowed."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    value: Any = None
    note: str = ""


REGISTERED: tuple[type, ...] = (Point, Box, Color, Level, Order, Holder)


def make_codec(**options: Any) -> Codec:
    return Codec(types=REGISTERED, **options)


CODECS: dict[str, Callable[[], Codec]] = {
    "msgpack": make_codec,
    "msgpack+zstd": lambda: make_codec(compression_threshold=0),
    "pickle": lambda: make_codec(serializer="pickle", pickle_key=SECRET),
    "pickle+zstd": lambda: make_codec(
        serializer="pickle", pickle_key=SECRET, compression_threshold=0
    ),
}

# -- exact comparison --------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal and of identical type recursively; NaN equals NaN, -0.0 is not 0.0."""
    if type(a) is not type(b):
        return False
    kind = type(a)
    if kind is float:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if kind is Decimal:  # str() keeps sign, exponent, NaN payloads; == raises on sNaN
        return str(a) == str(b)
    if kind in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if kind is dict:
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if kind in (set, frozenset):
        unmatched = list(b)
        for x in a:
            match = next((i for i, y in enumerate(unmatched) if same(x, y)), None)
            if match is None:
                return False
            del unmatched[match]
        return not unmatched
    if kind in (dt.datetime, dt.time):
        naive_a, naive_b = a.replace(tzinfo=None), b.replace(tzinfo=None)
        return (
            naive_a == naive_b
            and a.fold == b.fold
            and same_tz(a.tzinfo, b.tzinfo, a.replace(fold=0) if kind is dt.datetime else None)
        )
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, BaseModel):
        return (
            a.model_fields_set == b.model_fields_set
            and all(same(getattr(a, name), getattr(b, name)) for name in type(a).model_fields)
            and same(a.__pydantic_extra__, b.__pydantic_extra__)
            and same(a.__pydantic_private__, b.__pydantic_private__)
        )
    if isinstance(a, enum.Enum):
        return a is b
    return bool(a == b)


def same_tz(a: dt.tzinfo | None, b: dt.tzinfo | None, when: dt.datetime | None) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, zoneinfo.ZoneInfo):
        assert isinstance(b, zoneinfo.ZoneInfo)
        return a.key == b.key
    if a is None or b is None:
        return a is b
    return a.utcoffset(when) == b.utcoffset(when) and a.tzname(when) == b.tzname(when)


def _scribble_registered(obj: Any) -> None:
    """Reach inside the registered test classes too."""
    if type(obj) is Point:
        obj.x += 1
    elif type(obj) is Box:
        scribble(obj.value, _scribble_registered)
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            scribble(getattr(obj, name), _scribble_registered)
        if type(obj) is Holder:
            obj.note += "scribbled"


# -- strategies ---------------------------------------------------------------------------

offsets = st.timedeltas(
    min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
)
tzinfos: st.SearchStrategy[Any] = st.one_of(
    st.just(dt.timezone.utc),
    offsets.map(dt.timezone),
    st.builds(dt.timezone, offsets, st.text(min_size=1, max_size=5)),  # named: "CET"
    st.timezones(),  # zoneinfo.ZoneInfo
)
datetimes: st.SearchStrategy[Any] = st.one_of(st.datetimes(), st.datetimes(timezones=tzinfos))
times: st.SearchStrategy[Any] = st.one_of(st.times(), st.times(timezones=tzinfos))
big_ints = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**40]),
)
# st.floats() rarely draws these inside a large one_of: ask for them outright.
special_floats = st.sampled_from(
    [0.0, -0.0, math.inf, -math.inf, math.nan, -math.nan, 5e-324, -1.7976931348623157e308, 0.1]
)
exotic_decimals = st.sampled_from(
    [
        Decimal("-0"),
        Decimal("0E-7"),
        Decimal("-0E+5"),
        Decimal("1.000"),
        Decimal("1E+999999"),
        Decimal("-1E-999999"),
        Decimal("NaN"),
        Decimal("-NaN123"),
        Decimal("sNaN"),
        Decimal("-sNaN7"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
    ]
)
decimals = st.one_of(st.decimals(allow_nan=True, allow_infinity=True), exotic_decimals)

# Values usable in sets and as dict keys (no NaN: it never equals itself).
hashables: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        big_ints,
        st.floats(allow_nan=False),
        st.text(max_size=10),
        st.binary(max_size=10),
        st.dates(),
        datetimes,
        st.timedeltas(),
        st.uuids(),
        st.decimals(allow_nan=False),
    ),
    lambda inner: st.one_of(
        st.tuples(inner, inner), st.frozensets(inner, max_size=3), st.lists(inner).map(tuple)
    ),
    max_leaves=4,
)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    big_ints,
    st.floats(),
    special_floats,
    st.text(),
    st.binary(),
    st.dates(),
    datetimes,
    times,
    st.timedeltas(),
    st.uuids(),
    decimals,
    st.sampled_from(Color),
    st.sampled_from(Level),
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=5), inner, max_size=3),
        st.dictionaries(st.one_of(big_ints, hashables), inner, max_size=3),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.builds(Box, inner, st.text(max_size=5)),
        st.builds(Point, st.integers(), st.floats(allow_nan=False), st.text(max_size=5)),
        st.builds(Holder, value=inner, note=st.text(max_size=5)),
        st.builds(
            lambda v, extra: Holder.model_validate({"value": v, "extra": extra}), inner, inner
        ),
        st.builds(
            Order,
            id=st.integers(),
            items=st.lists(st.text(max_size=5), max_size=3),
            point=st.none() | st.builds(Point, st.integers(), st.floats(allow_nan=False)),
        ),
    )


values: st.SearchStrategy[Any] = st.recursive(scalars, _containers, max_leaves=12)

ROUNDTRIP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- round trips --------------------------------------------------------------------------


# Always tried, whatever the random draws: the cases most likely to lose a type.
PINNED: list[Any] = [
    [-0.0, math.nan, math.inf, True, 1, 1.0, 2**64, -(2**63) - 1],
    {"t": (1, [2, (3,)]), 1: {frozenset({(1, 2)}), None}, (1, "a"): b"\x00"},
    [Decimal("-0"), Decimal("sNaN"), Decimal("-NaN123"), Decimal("1E+999999")],
    dt.datetime(2021, 10, 31, 2, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    dt.time(1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=-3, seconds=1), "X")),
    Box(Holder(value=(Color.RED, Level.HIGH), note="n")),
]


@pytest.mark.parametrize("name", sorted(CODECS))
@ROUNDTRIP
@given(value=values)
@example(value=PINNED)
def test_roundtrip_is_exact(name: str, value: Any) -> None:
    codec = CODECS[name]()
    data = codec.encode(value, KEY)
    assert type(data) is bytes
    back = codec.decode(data, KEY)
    assert same(back, value), f"{value!r} came back as {back!r}"


@ROUNDTRIP
@given(value=values)
@example(value=PINNED)
def test_plain_and_compressed_codecs_read_each_other(value: Any) -> None:
    plain, compressing = make_codec(), make_codec(compression_threshold=0)
    assert same(compressing.decode(plain.encode(value, KEY), KEY), value)
    assert same(plain.decode(compressing.encode(value, KEY), KEY), value)


@ROUNDTRIP
@given(value=values)
@example(value=PINNED)
def test_roundtrip_through_the_cache_is_exact_and_unaliased(value: Any) -> None:
    async def check() -> None:
        cache = stratacache.InMemoryCache(codec=make_codec())
        sent = copy.deepcopy(value)
        await cache.set(KEY, sent)
        scribble(sent, _scribble_registered)  # the caller mutating what it stored...
        first = await cache.get(KEY, MISSING)
        assert same(first, value), f"{value!r} came back as {first!r}"
        scribble(first, _scribble_registered)  # ...or what it got back...
        second = await cache.get(KEY, MISSING)
        assert same(second, value)  # ...changes nothing cached
        assert cache.get_stats()["decode_errors"] == 0

    asyncio.run(check())


def test_same_tells_types_apart() -> None:
    # The comparison the properties rely on must be able to fail.
    assert not same(True, 1)
    assert not same(1.0, 1)
    assert not same(-0.0, 0.0)
    assert not same([(1, 2)], [[1, 2]])
    assert not same({1}, frozenset({1}))
    assert not same({"a": (1,)}, {"a": [1]})
    assert not same(Decimal("1.0"), Decimal("1.00"))
    assert not same(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2024, 1, 1))
    assert not same(dt.datetime(2024, 1, 1, fold=1), dt.datetime(2024, 1, 1))
    assert not same(Point(1, 2.0), Point(1, 2))
    assert not same(Holder(value=(1,)), Holder(value=[1]))
    assert same(float("nan"), float("nan"))
    assert same({(1, "a"), None}, {None, (1, "a")})


# -- failures to encode -------------------------------------------------------------------


@dataclasses.dataclass
class Unregistered:
    n: int


class Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (Unregistered(1), "Unregistered"),
        (Opaque(), "Opaque"),
        ([1, {"nested": Opaque()}], "Opaque"),
        ({Opaque(): 1}, "Opaque"),
    ],
)
async def test_unsupported_values_raise_a_serialization_error_naming_type_and_fix(
    value: Any, type_name: str
) -> None:
    codec = make_codec()
    with pytest.raises(stratacache.SerializationError) as info:
        codec.encode(value, KEY)
    assert isinstance(info.value, TypeError)
    assert type_name in str(info.value)
    assert "register" in str(info.value)
    cache = stratacache.InMemoryCache(codec=codec)
    with pytest.raises(TypeError, match=type_name):
        await cache.set(KEY, value)
    assert await cache.get(KEY, MISSING) is MISSING


@pytest.mark.parametrize(
    "value",
    [
        bytearray(b"abc"),
        memoryview(b"abc"),
        [bytearray(b"x")],
        (1, {"a": [memoryview(b"x")]}),
        {memoryview(b"k"): 1},
        {memoryview(b"k")},
        Box(bytearray(b"x")),
        Holder(value={"deep": (bytearray(b"x"),)}),
    ],
    ids=repr,
)
async def test_bytes_like_types_are_refused_or_kept_never_turned_into_bytes(value: Any) -> None:
    # msgpack packs any buffer as bin, which reads back as bytes: a silent type change.
    codec = make_codec()
    try:
        data = codec.encode(value, KEY)
    except stratacache.SerializationError:
        pass
    else:
        back = codec.decode(data, KEY)
        assert same(back, value), f"{value!r} came back as {back!r}"
    cache = stratacache.InMemoryCache(codec=codec)
    try:
        await cache.set(KEY, value)
    except stratacache.SerializationError:
        return
    back = await cache.get(KEY)
    assert same(back, value), f"{value!r} came back as {back!r}"


def test_pickle_keys_shorter_than_32_bytes_are_refused() -> None:
    for short in (b"k" * 31, "a short secret", b""):
        with pytest.raises(stratacache.ConfigurationError):
            Codec(serializer="pickle", pickle_key=short)
        with pytest.raises(stratacache.ConfigurationError):
            Codec(serializer="pickle", pickle_key=SECRET, previous_pickle_keys=[short])
    with pytest.raises(stratacache.ConfigurationError):
        Codec(serializer="pickle")  # no key at all


# -- tampering ---------------------------------------------------------------------------

CALLS: list[object] = []


def recorder(*args: object) -> None:
    """Stands in for os.system: what a malicious pickle would call."""
    CALLS.append(args)


class Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (recorder, ("rm -rf /",))


@pytest.fixture
def calls() -> list[object]:
    CALLS.clear()
    return CALLS


def all_codecs() -> list[Codec]:
    return [factory() for factory in CODECS.values()]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_garbage_never_crashes_and_never_runs_code(data: bytes) -> None:
    CALLS.clear()
    for codec in all_codecs():
        with contextlib.suppress(UndecodableValue):
            codec.decode(data, KEY)
        if data[:1] in (b"\x03", b"\x04"):  # pickle headers: no valid signature by chance
            with pytest.raises(UndecodableValue):
                codec.decode(data, KEY)
    assert CALLS == []


@pytest.mark.parametrize("name", sorted(CODECS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, cut=st.integers(min_value=0))
def test_truncated_encodings_are_undecodable(name: str, value: Any, cut: int) -> None:
    codec = CODECS[name]()
    data = codec.encode(value, KEY)
    if data[:1] in b"-0123456789":
        return  # a plain decimal int: any prefix of digits is another valid int
    truncated = data[: cut % len(data)]
    with pytest.raises(UndecodableValue):
        codec.decode(truncated, KEY)


@pytest.mark.parametrize("name", ["pickle", "pickle+zstd"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, position=st.integers(min_value=1), bit=st.integers(0, 7))
def test_any_flipped_bit_in_a_signed_pickle_is_undecodable(
    name: str, value: Any, position: int, bit: int
) -> None:
    codec = CODECS[name]()
    data = bytearray(codec.encode(value, KEY))
    if data[0] not in (0x03, 0x04):
        return  # a plain decimal int is never pickled
    position %= len(data)
    data[position] ^= 1 << bit
    with pytest.raises(UndecodableValue):
        codec.decode(bytes(data), KEY)


@pytest.mark.parametrize("name", ["msgpack", "msgpack+zstd"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_a_flipped_bit_elsewhere_is_a_value_or_undecodable_never_a_crash(
    name: str, value: Any, position: int, bit: int
) -> None:
    # msgpack carries no checksum: a flipped bit may well decode to another value,
    # but decoding must fail only with UndecodableValue.
    codec = CODECS[name]()
    data = bytearray(codec.encode(value, KEY))
    data[position % len(data)] ^= 1 << bit
    with contextlib.suppress(UndecodableValue):
        codec.decode(bytes(data), KEY)


def test_the_exploit_is_live(calls: list[object]) -> None:
    # Proves the payload below would run code if anything unpickled it.
    pickle.loads(pickle.dumps(Exploit()))
    assert calls == [("rm -rf /",)]


def _framings(payload: bytes) -> list[bytes]:
    import zstandard

    compressed = zstandard.ZstdCompressor().compress(payload)
    return [
        b"\x03" + payload,  # no signature at all
        b"\x03" + bytes(32) + payload,  # a zero signature
        b"\x03" + b"\xff" * 32 + payload,
        b"\x04" + bytes(32) + compressed,
        b"\x04" + compressed,
        b"\x80" + payload[1:],  # a raw pickle, no header byte
        payload,
    ]


def test_unsigned_or_badly_signed_pickles_never_run(calls: list[object]) -> None:
    payload = pickle.dumps(Exploit(), protocol=pickle.HIGHEST_PROTOCOL)
    for codec in all_codecs():
        for data in _framings(payload):
            with pytest.raises(UndecodableValue):
                codec.decode(data, KEY)
    assert calls == []


def test_a_signature_is_bound_to_the_key(calls: list[object]) -> None:
    signer = make_codec(serializer="pickle", pickle_key=SECRET)
    data = signer.encode(Exploit(), "user:1")
    assert calls == []
    for codec in all_codecs():
        with pytest.raises(UndecodableValue):
            codec.decode(data, "user:2")  # moved to another key
    assert calls == []


def test_a_pickle_signed_with_another_secret_never_runs(calls: list[object]) -> None:
    foreign = make_codec(serializer="pickle", pickle_key=OTHER_SECRET)
    data = foreign.encode(Exploit(), KEY)
    readers = [
        make_codec(serializer="pickle", pickle_key=SECRET),
        make_codec(serializer="pickle", pickle_key=SECRET, compression_threshold=0),
        make_codec(),  # no pickle_key at all
    ]
    for codec in readers:
        with pytest.raises(UndecodableValue):
            codec.decode(data, KEY)
    assert calls == []


def test_key_rotation_reads_old_secrets_and_writes_with_the_new_one() -> None:
    old = make_codec(serializer="pickle", pickle_key=SECRET)
    rotated = make_codec(
        serializer="pickle", pickle_key=OTHER_SECRET, previous_pickle_keys=[SECRET]
    )
    value = {"point": Point(1, 2.5), "when": dt.date(2024, 2, 29), "ids": (1, 2)}
    assert same(rotated.decode(old.encode(value, KEY), KEY), value)
    written = rotated.encode(value, KEY)
    assert same(rotated.decode(written, KEY), value)
    assert same(
        make_codec(serializer="pickle", pickle_key=OTHER_SECRET).decode(written, KEY), value
    )
    with pytest.raises(UndecodableValue):
        old.decode(written, KEY)  # new writes are signed with the new secret only


# -- undecodable data in the cache: a miss, counted, logged once ---------------------------


class Schema:
    """Flip ``drifted`` to make Versioned's constructor refuse what it once accepted."""

    drifted = False


@dataclasses.dataclass
class Versioned:
    n: int

    def __post_init__(self) -> None:
        if Schema.drifted:
            raise ValueError("Versioned changed shape since this was cached")


async def test_undecodable_entries_are_misses_counted_and_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stratacache")
    cache = stratacache.InMemoryCache(codec=Codec(types=[Versioned]))
    await cache.set("a", Versioned(1))
    await cache.set("b", Versioned(2))
    await cache.set("c", Versioned(3))
    assert await cache.get("c") == Versioned(3)
    monkeypatch.setattr(Schema, "drifted", True)

    assert await cache.get("a", "default") == "default"
    assert await cache.get("b", MISSING) is MISSING
    stats = cache.get_stats()
    assert stats["decode_errors"] == 2
    assert stats["misses"] == 2
    assert stats["hits"] == 1
    assert not await cache.exists("a")  # the undecodable entry is gone
    assert await cache.get_many(["b", "c"]) == {}
    assert cache.get_stats()["decode_errors"] == 3

    monkeypatch.setattr(Schema, "drifted", False)
    assert await cache.get("a", MISSING) is MISSING  # removed, not merely unreadable
    warnings = [
        r
        for r in caplog.records
        if r.name.startswith("stratacache") and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


# -- compression ---------------------------------------------------------------------------


def test_large_compressible_values_are_stored_smaller_and_stay_readable() -> None:
    value = {"rows": [{"name": "stratacache", "n": i % 7, "tags": ("a", "b")} for i in range(400)]}
    plain, compressing = make_codec(), make_codec(compression_threshold=1000, compression_level=6)
    small, large = compressing.encode(value, KEY), plain.encode(value, KEY)
    assert len(small) < len(large) / 4
    assert small[0] == 0x02
    assert large[0] == 0x01
    assert same(plain.decode(small, KEY), value)  # old codec reads new data
    assert same(compressing.decode(large, KEY), value)  # new codec reads old data
    tiny = compressing.encode([1, 2], KEY)
    assert tiny[0] == 0x01  # under the threshold: left alone
    signed = make_codec(serializer="pickle", pickle_key=SECRET, compression_threshold=1000)
    packed = signed.encode(value, KEY)
    assert packed[0] == 0x04
    assert len(packed) < len(large) / 4
    assert same(make_codec(serializer="pickle", pickle_key=SECRET).decode(packed, KEY), value)


# -- exactness edge cases (each names what it pins) ------------------------------------


def test_a_named_fixed_offset_timezone_keeps_its_name() -> None:
    # timezone(offset, name) is a datetime.timezone like any other; its name shows in
    # str(), strftime("%Z") and tzname(). Round-trip it exactly, or refuse it.
    cet = dt.timezone(dt.timedelta(hours=1), "CET")
    value = dt.datetime(2024, 1, 15, 12, 30, tzinfo=cet)
    codec = make_codec()
    try:
        back = codec.decode(codec.encode(value, KEY), KEY)
    except stratacache.SerializationError:
        return
    assert back.tzname() == "CET", f"{value.tzname()!r} came back as {back.tzname()!r}"
    assert same(back, value)


def test_a_zoneinfo_loaded_from_a_file_is_never_silently_dropped() -> None:
    # ZoneInfo.from_file() zones have key=None. Encoding them as "no tzinfo" turns an
    # aware datetime into a naive one that compares unequal to the original.
    path = Path("/usr/share/zoneinfo/Europe/Paris")
    if not path.exists():
        pytest.skip("no system tz database")
    with path.open("rb") as file:
        paris = zoneinfo.ZoneInfo.from_file(file)
    value = dt.datetime(2024, 6, 1, 12, tzinfo=paris)
    codec = make_codec()
    try:
        back = codec.decode(codec.encode(value, KEY), KEY)
    except stratacache.SerializationError:
        return
    assert back.tzinfo is not None, f"came back naive: {back!r}"
    assert back == value
    assert back.utcoffset() == value.utcoffset()


@dataclasses.dataclass
class WithDerived:
    """A dataclass with a field its __init__ does not take."""

    n: int
    hits: int = dataclasses.field(init=False, default=0)


def test_dataclass_fields_outside_init_round_trip() -> None:
    value = WithDerived(1)
    value.hits = 5
    codec = Codec(types=[WithDerived])
    try:
        back = codec.decode(codec.encode(value, KEY), KEY)
    except stratacache.SerializationError:
        return
    assert back == value, f"{value!r} came back as {back!r}"


class Session(BaseModel):
    user: str
    _token: str = PrivateAttr(default="")


def test_pydantic_private_attributes_round_trip() -> None:
    # Private attributes take part in pydantic's ==: dropping them breaks equality.
    value = Session(user="ann")
    value._token = "abc"
    codec = Codec(types=[Session])
    try:
        back = codec.decode(codec.encode(value, KEY), KEY)
    except stratacache.SerializationError:
        return
    assert back == value, (
        f"private state {value.__pydantic_private__!r} came back as {back.__pydantic_private__!r}"
    )
