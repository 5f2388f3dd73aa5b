"""Stateful properties of ``InMemoryCache`` against pure-Python models.

Three machines drive the public API with a :class:`~stratacache.testing.FakeClock`:

* :class:`LruCacheMachine` mirrors the cache in an exact model (an ordered dict of
  value and deadline): it predicts every hit and miss, which key each write evicts,
  every return value and every counter in ``get_stats()``.
* :class:`BoundedBytesMachine` (``max_bytes``) and :class:`TinyLfuMachine`
  (``eviction="tinylfu"``) use a looser model: the cache may drop any entry at any
  time, but what it serves must be the last value written, never expired, and its
  entries and bytes must stay within their bounds.

The cache is async; each machine drives it with its own event loop, closed in
``teardown``. Stats are checked when the clock is about to move rather than in an
invariant, on purpose: ``get_stats()`` purges expired entries, and calling it after
every step would keep the lazy expiry paths (a read, ``exists``, a write finding
expired entries) from ever running.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import math
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

import stratacache
from stratacache.testing import FakeClock

from _support import scribble

T = TypeVar("T")

MISSING = stratacache.MISSING
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INF = math.inf

# Keys share prefixes so the glob patterns below select interesting subsets; "x*"
# holds a glob metacharacter and must match only itself under "x[*]".
KEYS = ("u:1", "u:2", "u:3", "p:1", "p:2", "p:3", "x", "x*", "y")
# Patterns whose Redis-glob meaning equals fnmatch's (no backslashes, no "[!" / "[^").
PATTERNS = ("*", "u:*", "p:*", "*:1", "?:2", "[up]:1", "u:[12]", "x", "x*", "x[*]", "zz*", "?")

CLEAR = "<clear()>"  # stands for clear() among the patterns

keys = st.sampled_from(KEYS)
key_lists = st.lists(keys, max_size=4)
patterns_or_clear = st.sampled_from((*PATTERNS, CLEAR))
ttls = st.one_of(st.none(), st.sampled_from([0, 1, 2, 3, 5, 60]))
default_ttls = st.sampled_from([0, 1, 3, 5, 60])
advances = st.sampled_from([0.5, 1, 1, 2, 3, 5, 10])
# After the clock moves, look at what just expired through get(), through exists(),
# or not at all (leaving it to be found by a later read or purged by a write).
probes = st.sampled_from(["get", "get", "exists", "later"])
# Big deltas grow an int's footprint (max_bytes) or leave the int64 range (refused).
deltas = st.one_of(
    st.integers(-3, 3), st.sampled_from([2**31, 2**62, -(2**62), INT64_MAX, 2**63, INT64_MIN - 1])
)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.tuples(inner, inner),
        st.sets(st.integers(-5, 5) | st.text(max_size=3), max_size=3),
        st.frozensets(st.integers(-5, 5) | st.text(max_size=3), max_size=3),
    ),
    max_leaves=6,
)

# One bug at a time: shrinking several distinct failures of a 50-step machine can
# take minutes, past the suite's per-test timeout.
STATEFUL_SETTINGS = settings(
    max_examples=200, stateful_step_count=50, deadline=None, report_multiple_bugs=False
)
BOUNDED_SETTINGS = settings(STATEFUL_SETTINGS, max_examples=100, stateful_step_count=40)


def same(a: Any, b: Any) -> bool:
    """Equal, and of exactly the same type all the way down (True is not 1, -0.0 not 0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    return bool(a == b)


def deadline_for(ttl: int | None, default_ttl: int, now: float) -> float:
    """The model of TTLs: None is the default, 0 never expires, else now + ttl."""
    seconds = default_ttl if ttl is None else ttl
    return INF if seconds == 0 else now + seconds


class _LoopMachine(RuleBasedStateMachine):
    """Owns a private event loop, closed (with the cache) in ``teardown``."""

    cache: stratacache.InMemoryCache | None

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.cache = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    @property
    def c(self) -> stratacache.InMemoryCache:
        assert self.cache is not None
        return self.cache

    def teardown(self) -> None:
        try:
            if self.cache is not None:
                self.run(self.cache.aclose())
        finally:
            self.loop.close()


# -- exact LRU model ---------------------------------------------------------------------


class LruModel:
    """What an LRU cache with TTLs holds: live entries, least recently used first.

    Expired entries are dropped as soon as the clock passes their deadline. The cache
    drops them lazily, but it purges them before inserting, so they never cause the
    eviction of a live entry, and an expired entry behaves like an absent one.
    """

    def __init__(self, max_size: int, default_ttl: int) -> None:
        self.max_size = max_size
        self.default_ttl = default_ttl
        self.now = 0.0
        self.data: OrderedDict[str, tuple[Any, float]] = OrderedDict()
        self.hits = self.misses = self.sets = self.deletes = 0
        self.evictions = self.invalidations = self.expired = 0

    def advance(self, seconds: float) -> list[str]:
        """Move the clock; returns the keys that just expired."""
        self.now += seconds
        expired = [k for k, (_, deadline) in self.data.items() if deadline <= self.now]
        for key in expired:
            del self.data[key]
        self.expired += len(expired)
        return expired

    def put(self, key: str, value: Any, deadline: float) -> None:
        self.data.pop(key, None)
        self.data[key] = (value, deadline)
        while len(self.data) > self.max_size:
            self.data.popitem(last=False)
            self.evictions += 1

    def set(self, key: str, value: Any, ttl: int | None) -> None:
        self.put(key, value, deadline_for(ttl, self.default_ttl, self.now))
        self.sets += 1

    def get(self, key: str) -> Any:
        if key not in self.data:
            self.misses += 1
            return MISSING
        self.hits += 1
        self.data.move_to_end(key)
        return self.data[key][0]

    def delete(self, key: str) -> bool:
        removed = self.data.pop(key, None) is not None
        self.deletes += removed
        return removed

    def ttl_of(self, key: str) -> int | None:
        if key not in self.data:
            return None
        deadline = self.data[key][1]
        return 0 if deadline == INF else max(1, math.ceil(deadline - self.now))


class LruCacheMachine(_LoopMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model = LruModel(1, 0)
        self.last_expirations = 0

    @initialize(max_size=st.integers(1, 6), default_ttl=default_ttls)
    def make_cache(self, max_size: int, default_ttl: int) -> None:
        self.cache = stratacache.InMemoryCache(
            max_size=max_size, default_ttl=default_ttl, clock=self.clock
        )
        self.model = LruModel(max_size, default_ttl)

    def check_membership(self) -> None:
        """After a write, exactly the model's keys are live: the right one was evicted.

        A write has just purged every expired entry, so these ``exists`` calls expire
        nothing and (being ``exists``) refresh nothing: they leave the state as it was.
        """
        for key in KEYS:
            assert self.run(self.c.exists(key)) is (key in self.model.data), (
                f"{key!r}: the model holds {list(self.model.data)} (LRU first)"
            )

    def check_stats(self) -> None:
        stats = self.c.get_stats()
        model = self.model
        assert stats["entries"] == len(model.data) <= model.max_size
        assert stats["max_size"] == model.max_size
        assert stats["hits"] == model.hits
        assert stats["misses"] == model.misses
        assert stats["sets"] == model.sets
        assert stats["deletes"] == model.deletes
        assert stats["evictions"] == model.evictions
        assert stats["invalidations"] == model.invalidations
        lookups = model.hits + model.misses
        assert stats["hit_rate"] == pytest.approx(model.hits / lookups if lookups else 0.0)
        assert 0.0 <= stats["hit_rate"] <= 1.0
        # An entry that expired and was then overwritten or deleted before anything
        # looked at it may go uncounted, so this is a bound, not an equality.
        assert self.last_expirations <= stats["expirations"] <= model.expired
        self.last_expirations = stats["expirations"]
        assert stats["decode_errors"] == 0

    # -- writes --

    @rule(key=keys, value=values, ttl=ttls)
    def set(self, key: str, value: Any, ttl: int | None) -> None:
        sent = copy.deepcopy(value)
        self.run(self.c.set(key, sent, ttl))
        self.model.set(key, value, ttl)
        scribble(sent)  # the caller mutating what it stored changes nothing cached
        self.check_membership()

    @rule(mapping=st.dictionaries(keys, values, min_size=1, max_size=4), ttl=ttls)
    def set_many(self, mapping: dict[str, Any], ttl: int | None) -> None:
        sent = copy.deepcopy(mapping)
        self.run(self.c.set_many(sent, ttl))
        for key, value in mapping.items():
            self.model.set(key, value, ttl)
        scribble(sent)
        self.check_membership()

    @rule(key=keys, delta=deltas)
    def incr(self, key: str, delta: int) -> None:
        entry = self.model.data.get(key)
        if entry is not None and type(entry[0]) is not int:
            with pytest.raises(stratacache.ValidationError):
                self.run(self.c.incr(key, delta))
            return
        current = 0 if entry is None else entry[0]
        if not INT64_MIN <= current + delta <= INT64_MAX:
            with pytest.raises(stratacache.ValidationError):
                self.run(self.c.incr(key, delta))
            self.check_membership()  # a refused incr creates and evicts nothing
            return
        assert self.run(self.c.incr(key, delta)) == current + delta
        if entry is None:  # a new counter lives default_ttl
            deadline = deadline_for(None, self.model.default_ttl, self.model.now)
            self.model.put(key, current + delta, deadline)
            self.check_membership()
        else:  # an existing one keeps its deadline
            self.model.data[key] = (current + delta, entry[1])
        # Whether incr itself refreshes recency is pinned by
        # test_incr_refreshes_recency; reading the counter back refreshes it for
        # sure, so this machine's exact LRU model holds either way.
        got = self.run(self.c.get(key, MISSING))
        assert same(got, self.model.get(key))

    @rule(key=keys, ttl=ttls)
    def expire(self, key: str, ttl: int | None) -> None:
        live = key in self.model.data
        assert self.run(self.c.expire(key, ttl)) is live
        if live:  # a new deadline, same place in the LRU order
            value = self.model.data[key][0]
            self.model.data[key] = (
                value,
                deadline_for(ttl, self.model.default_ttl, self.model.now),
            )

    @rule(batch=st.lists(keys, min_size=1, max_size=3))
    def delete(self, batch: list[str]) -> None:
        if len(batch) == 1:
            assert self.run(self.c.delete(batch[0])) is self.model.delete(batch[0])
            return
        expected = sum(self.model.data.pop(key, None) is not None for key in set(batch))
        self.model.deletes += expected
        assert self.run(self.c.delete_many(batch)) == expected

    @rule(pattern=patterns_or_clear)
    def invalidate(self, pattern: str) -> None:
        if pattern == CLEAR:
            self.run(self.c.clear())
            self.model.data.clear()
            return
        doomed = [key for key in self.model.data if fnmatch.fnmatchcase(key, pattern)]
        for key in doomed:
            del self.model.data[key]
        self.model.invalidations += len(doomed)
        assert self.run(self.c.invalidate_pattern(pattern)) == len(doomed)

    @rule(seconds=advances, probe=probes)
    def advance(self, seconds: float, probe: str) -> None:
        # Stats here, not after every step: get_stats() purges expired entries, and
        # checking just before the clock moves leaves every entry that the move
        # expires to the lazy paths (reads, exists, writes) until the next move.
        self.check_stats()
        self.clock.advance(seconds)
        expired = self.model.advance(seconds)
        for key in expired:  # what just expired is gone, seen through either path
            if probe == "get":
                assert self.run(self.c.get(key, MISSING)) is MISSING, f"{key!r} expired"
                self.model.misses += 1
            elif probe == "exists":
                assert not self.run(self.c.exists(key)), f"{key!r} expired"

    # -- reads --

    @rule(key=keys, sentinel=st.booleans())
    def get(self, key: str, sentinel: bool) -> None:
        if sentinel:  # MISSING tells a miss from a cached None
            got = self.run(self.c.get(key, MISSING))
            expected = self.model.get(key)
        else:  # with the default default, both read as None
            got = self.run(self.c.get(key))
            expected = self.model.get(key)
            expected = None if expected is MISSING else expected
        assert same(got, expected), f"get({key!r}) returned {got!r}, model says {expected!r}"
        scribble(got)  # the caller mutating what it got changes nothing cached

    @rule(batch=key_lists)
    def get_many(self, batch: list[str]) -> None:
        got = self.run(self.c.get_many(batch))
        expected: dict[str, Any] = {}
        for key in batch:
            value = self.model.get(key)
            if value is not MISSING:
                expected[key] = value
        assert got.keys() == expected.keys()
        assert all(same(got[key], expected[key]) for key in expected)

    @rule(key=keys)
    def exists(self, key: str) -> None:
        # No move to most-recent: a later eviction would betray it.
        assert self.run(self.c.exists(key)) is (key in self.model.data)

    @rule(key=keys)
    def get_ttl(self, key: str) -> None:
        assert self.run(self.c.get_ttl(key)) == self.model.ttl_of(key)

    @rule(key=st.sampled_from(["", "a\x00b", "k" * 1025]), ttl=st.sampled_from([-1, 1.5]))
    def invalid_arguments(self, key: str, ttl: Any) -> None:
        # Refused before anything happens: the model, unchanged, is checked later.
        with pytest.raises(stratacache.ValidationError):
            self.run(self.c.get(key, MISSING))
        with pytest.raises(stratacache.ValidationError):
            self.run(self.c.set(key, 1))
        with pytest.raises(stratacache.ValidationError):
            self.run(self.c.set(KEYS[0], 1, ttl))


TestLruCacheMachine = LruCacheMachine.TestCase
TestLruCacheMachine.settings = STATEFUL_SETTINGS


# -- bounded caches: what is served is right, bounds hold ------------------------------------


class BoundedModel:
    """What the cache may hold: for each key, the last value written and its deadline.

    The cache may have dropped any of them (evicted, refused for size, or not admitted
    by TinyLFU); a key missing here must be a miss.
    """

    def __init__(self, default_ttl: int) -> None:
        self.default_ttl = default_ttl
        self.now = 0.0
        self.data: dict[str, tuple[Any, float]] = {}

    def live(self, key: str) -> tuple[Any, float] | None:
        entry = self.data.get(key)
        if entry is not None and entry[1] <= self.now:
            del self.data[key]
            return None
        return entry


class _BoundedMachine(_LoopMachine):
    """Rules shared by the ``max_bytes`` and ``tinylfu`` machines."""

    def __init__(self) -> None:
        super().__init__()
        self.model = BoundedModel(0)
        self.gets = 0

    def served(self, key: str, got: Any) -> None:
        """Check a value the cache served for ``key``, or forget the key on a miss."""
        entry = self.model.live(key)
        if got is MISSING:
            self.model.data.pop(key, None)
            return
        assert entry is not None, f"{key!r} served {got!r}: deleted, never written or expired"
        assert same(got, entry[0]), f"{key!r} served {got!r}, last written {entry[0]!r}"

    @rule(key=keys, value=values, ttl=ttls)
    def set(self, key: str, value: Any, ttl: int | None) -> None:
        sent = copy.deepcopy(value)
        self.run(self.c.set(key, sent, ttl))
        scribble(sent)
        self.model.data[key] = (value, deadline_for(ttl, self.model.default_ttl, self.model.now))
        self.within_bounds()

    @rule(key=keys, value=st.one_of(st.text(max_size=400), st.binary(max_size=600)))
    def set_large(self, key: str, value: Any) -> None:
        self.run(self.c.set(key, value))
        self.model.data[key] = (value, deadline_for(None, self.model.default_ttl, self.model.now))
        self.within_bounds()

    @rule(key=keys, delta=deltas)
    def incr(self, key: str, delta: int) -> None:
        # exists() (which neither refreshes nor evicts) tells which branch incr takes.
        present = self.run(self.c.exists(key))
        entry = self.model.live(key)
        assert not present or entry is not None, f"{key!r} exists but was never written"
        if not present:
            self.model.data.pop(key, None)
            entry = None
        if entry is not None and type(entry[0]) is not int:
            with pytest.raises(stratacache.ValidationError):
                self.run(self.c.incr(key, delta))
            return
        current = 0 if entry is None else entry[0]
        if not INT64_MIN <= current + delta <= INT64_MAX:
            with pytest.raises(stratacache.ValidationError):
                self.run(self.c.incr(key, delta))
            return
        assert self.run(self.c.incr(key, delta)) == current + delta
        deadline = (
            deadline_for(None, self.model.default_ttl, self.model.now)
            if entry is None
            else entry[1]
        )
        self.model.data[key] = (current + delta, deadline)

    @rule(key=keys, ttl=ttls)
    def expire(self, key: str, ttl: int | None) -> None:
        entry = self.model.live(key)
        if self.run(self.c.expire(key, ttl)):
            assert entry is not None, f"expire({key!r}) found a key never written"
            self.model.data[key] = (
                entry[0],
                deadline_for(ttl, self.model.default_ttl, self.model.now),
            )
        else:
            self.model.data.pop(key, None)

    @rule(key=keys)
    def delete(self, key: str) -> None:
        entry = self.model.live(key)
        removed = self.run(self.c.delete(key))
        assert not removed or entry is not None
        self.model.data.pop(key, None)
        assert self.run(self.c.get(key, MISSING)) is MISSING
        self.gets += 1

    @rule(pattern=patterns_or_clear)
    def invalidate(self, pattern: str) -> None:
        if pattern == CLEAR:
            self.run(self.c.clear())
            self.model.data.clear()
            assert self.c.get_stats()["entries"] == 0
            assert self.c.get_stats()["memory_usage_bytes"] == 0
            return
        doomed = [k for k in KEYS if fnmatch.fnmatchcase(k, pattern) and self.model.live(k)]
        assert self.run(self.c.invalidate_pattern(pattern)) <= len(doomed)
        for key in doomed:
            del self.model.data[key]

    @rule(seconds=advances, probe=probes)
    def advance(self, seconds: float, probe: str) -> None:
        self.within_bounds()  # before the move: see LruCacheMachine.advance
        self.clock.advance(seconds)
        self.model.now += seconds
        expired = [k for k, (_, deadline) in self.model.data.items() if deadline <= self.model.now]
        for key in expired:  # what just expired is gone, seen through either path
            del self.model.data[key]
            if probe == "get":
                assert self.run(self.c.get(key, MISSING)) is MISSING, f"{key!r} expired"
                self.gets += 1
            elif probe == "exists":
                assert not self.run(self.c.exists(key)), f"{key!r} expired"

    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        # Half the time read keys the cache may hold: most of the others miss anyway.
        known = sorted(key for key in KEYS if self.model.live(key) is not None)
        use_known: bool = data.draw(st.booleans(), label="known")
        pool = known if known and use_known else list(KEYS)
        batch = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        for key in batch:
            got = self.run(self.c.get(key, MISSING))
            self.gets += 1
            self.served(key, got)
            scribble(got)

    @rule(key=keys)
    def exists(self, key: str) -> None:
        present = self.run(self.c.exists(key))
        entry = self.model.live(key)
        assert not present or entry is not None, f"{key!r} exists: deleted, unwritten or expired"
        if not present:
            self.model.data.pop(key, None)

    def within_bounds(self) -> None:
        stats = self.c.get_stats()
        live = sum(self.model.live(key) is not None for key in KEYS)
        assert stats["entries"] <= min(self.c.max_size, live)
        if stats["max_bytes"] is not None:
            assert 0 <= stats["memory_usage_bytes"] <= stats["max_bytes"]
        if stats["entries"] == 0:
            assert stats["memory_usage_bytes"] == 0
        assert stats["hits"] + stats["misses"] == self.gets


class BoundedBytesMachine(_BoundedMachine):
    # An entry costs about 250 to 900 bytes here: room for none to a dozen of them.
    @initialize(
        max_size=st.sampled_from([1, 3, 8, 20]),
        max_bytes=st.sampled_from([250, 400, 700, 1000, 1500, 2500, 4000]),
        default_ttl=default_ttls,
    )
    def make_cache(self, max_size: int, max_bytes: int, default_ttl: int) -> None:
        self.cache = stratacache.InMemoryCache(
            max_size=max_size, default_ttl=default_ttl, max_bytes=max_bytes, clock=self.clock
        )
        self.model = BoundedModel(default_ttl)


class TinyLfuMachine(_BoundedMachine):
    @initialize(max_size=st.integers(1, 6), default_ttl=default_ttls)
    def make_cache(self, max_size: int, default_ttl: int) -> None:
        self.cache = stratacache.InMemoryCache(
            max_size=max_size, default_ttl=default_ttl, eviction="tinylfu", clock=self.clock
        )
        self.model = BoundedModel(default_ttl)


TestBoundedBytesMachine = BoundedBytesMachine.TestCase
TestBoundedBytesMachine.settings = BOUNDED_SETTINGS
TestTinyLfuMachine = TinyLfuMachine.TestCase
TestTinyLfuMachine.settings = BOUNDED_SETTINGS


# -- pinned examples ---------------------------------------------------------------------


async def test_contract_lru_example_and_exists_does_not_refresh() -> None:
    cache = stratacache.InMemoryCache(max_size=3, clock=FakeClock())
    for key in ("key1", "key2", "key3"):
        await cache.set(key, key)
    for key in ("key1", "key2", "key3"):
        assert await cache.get(key) == key
    assert await cache.exists("key1")  # must not save key1
    await cache.set("key4", "key4")
    assert await cache.get("key1", MISSING) is MISSING
    assert [await cache.get(k, MISSING) for k in ("key2", "key3", "key4")] == [
        "key2",
        "key3",
        "key4",
    ]
    assert cache.get_stats()["evictions"] == 1


async def test_incr_refreshes_recency() -> None:
    # A counter bumped on every request is the most recently used key: an LRU cache
    # must not evict it first (Redis INCR, cachetools and cashews all refresh it).
    # Otherwise a rate limiter's counter resets under memory pressure.
    cache = stratacache.InMemoryCache(max_size=2, clock=FakeClock())
    await cache.incr("requests")
    await cache.set("a", 1)
    await cache.incr("requests")  # "requests" is now the most recently used
    await cache.set("b", 2)  # so "a" must go
    assert await cache.get("a", MISSING) is MISSING
    assert await cache.get("requests", MISSING) == 2


async def test_incr_growing_an_int_never_exceeds_max_bytes() -> None:
    # Size one cache to hold exactly one small counter, then grow the counter: the
    # bigger int costs more bytes, and max_bytes must still bound the total.
    probe = stratacache.InMemoryCache()
    await probe.set("k", 1)
    one_entry = probe.get_stats()["memory_usage_bytes"]
    cache = stratacache.InMemoryCache(max_bytes=one_entry)
    await cache.set("k", 1)
    assert cache.get_stats()["memory_usage_bytes"] == one_entry
    await cache.incr("k", 2**40)
    stats = cache.get_stats()
    assert stats["memory_usage_bytes"] <= stats["max_bytes"]


async def test_refused_incr_changes_nothing() -> None:
    cache = stratacache.InMemoryCache(max_size=1, clock=FakeClock())
    await cache.set("keep", "me")
    with pytest.raises(stratacache.ValidationError):
        await cache.incr("counter", 2**63)  # 0 + 2**63 leaves the int64 range
    assert await cache.get("counter", MISSING) is MISSING  # not created as 0
    assert await cache.get("keep", MISSING) == "me"  # and nothing evicted for it
    assert cache.get_stats()["evictions"] == 0


async def test_incr_refused_by_max_bytes_leaves_no_phantom_bytes() -> None:
    # A counter too big for max_bytes is refused; its bytes must not stay counted,
    # or rejected incrs leak "memory" until every set evicts everything, and then
    # eviction runs out of entries to evict.
    cache = stratacache.InMemoryCache(max_bytes=300, clock=FakeClock())
    long_key = "a-key-long-enough-to-be-refused-by-max-bytes"
    for _ in range(100):
        await cache.incr(long_key, 2**31)
    stats = cache.get_stats()
    assert (stats["entries"], stats["memory_usage_bytes"]) == (0, 0)
    await cache.set("a", 1)
    assert await cache.get("a", MISSING) == 1


async def test_hit_rate_is_a_fraction_and_cached_none_is_a_hit() -> None:
    cache = stratacache.InMemoryCache(clock=FakeClock())
    await cache.set("none", None)
    assert await cache.get("none", MISSING) is None
    assert await cache.get("absent", MISSING) is MISSING
    stats = cache.get_stats()
    assert (stats["hits"], stats["misses"], stats["hit_rate"]) == (1, 1, 0.5)


async def test_ttl_boundary_is_exact() -> None:
    clock = FakeClock()
    cache = stratacache.InMemoryCache(default_ttl=10, clock=clock)
    await cache.set("default", "d")
    await cache.set("short", "s", ttl=3)
    await cache.set("forever", "f", ttl=0)
    clock.advance(2.5)
    assert await cache.get("short") == "s"
    clock.advance(0.5)  # now == set time + ttl: expired
    assert await cache.get("short", MISSING) is MISSING
    assert not await cache.exists("short")
    assert await cache.get("default") == "d"
    clock.advance(7)
    assert await cache.get("default", MISSING) is MISSING
    clock.advance(10**6)
    assert await cache.get("forever") == "f"
    assert await cache.get_ttl("forever") == 0
