"""The in-process tier: a bounded map with per-entry TTL and LRU or W-TinyLFU eviction.

Written by hand rather than built on cachetools or theine because the hit path must
stay within a few hundred nanoseconds (cachetools' ``TTLCache.__getitem__`` costs
several Python calls), the clock must be injectable (theine's timer is not), and
the tier must bound bytes as well as entries and index tags and patterns.

Thread safety: every mutation holds ``self._lock``. The LRU hit path does not —
``dict.get`` and ``OrderedDict.move_to_end`` are each atomic under the GIL, and a
concurrent removal between them only means the read is ordered before it. The
W-TinyLFU hit path takes the lock, because a hit may move a key between segments.

Expired entries are never returned: reads check the deadline. They are also purged
on writes (oldest deadline first, from a heap), so ``entries`` and memory figures
do not count the dead and an expired entry never pushes out a live one.
"""

from __future__ import annotations

import heapq
import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

from .._clock import Clock
from .._keys import NO_TAGS
from ._tinylfu import TinyLfuPolicy

__all__ = ["AS_IS", "COPY", "ENCODED", "Entry", "MemoryTier", "entry_size"]

INF = math.inf
ENTRY_OVERHEAD = 200
"""Bytes one entry costs beyond its key and value: the Entry, its dict slot, heap item."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# How a reader turns ``Entry.value`` into what it returns (the tier never looks):
AS_IS = 0  # an immutable value: return it
COPY = 1  # a flat dict, list or set of immutables: return a shallow copy
ENCODED = 2  # codec bytes: decode a fresh value

Eviction = Literal["lru", "tinylfu"]


class Entry:
    """One cached value, its deadline and bookkeeping.

    Entries are replaced, never rewritten, when a key is set again: lock-free
    readers then always see a matching ``value`` and ``form``.
    """

    __slots__ = ("expires_at", "form", "queued", "size", "tags", "value")

    def __init__(
        self, value: Any, form: int, expires_at: float, size: int, tags: frozenset[str]
    ) -> None:
        self.value = value
        self.form = form
        self.expires_at = expires_at
        self.size = size
        self.tags = tags
        self.queued: float | None = None  # the deadline this key has in the heap, if any


def entry_size(key: str, value: Any) -> int:
    """Estimated bytes an entry holds: key, value and bookkeeping."""
    return len(key) + sys.getsizeof(value) + ENTRY_OVERHEAD + 49  # 49: a str's header


class MemoryTier:
    """A bounded, thread-safe map from keys to :class:`Entry`, with TTL and eviction.

    ``max_size`` bounds entries; ``max_bytes`` (optional) bounds :func:`entry_size`
    summed over entries. An entry larger than ``max_bytes`` on its own is refused.

    ``entries`` and ``clock`` are public for one reader: an LRU cache's hit path may
    ``entries.get(key)``, check the deadline and ``entries.move_to_end(key)`` without
    the lock (see the module docstring). Everything else goes through the methods.
    """

    def __init__(
        self,
        max_size: int,
        *,
        clock: Clock,
        max_bytes: int | None = None,
        eviction: Eviction = "lru",
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        self.max_size = max_size
        self.max_bytes = max_bytes
        self.eviction = eviction
        self.evictions = 0
        self.expirations = 0
        self.rejections = 0
        self.bytes = 0
        self.clock = self._clock = clock
        self.entries = self._data = OrderedDict[str, Entry]()
        self._tags: dict[str, set[str]] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._on_evict = on_evict
        self._policy = TinyLfuPolicy(max_size) if eviction == "tinylfu" else None

    def __len__(self) -> int:
        return len(self._data)

    # -- reads ------------------------------------------------------------------

    def lookup(self, key: str) -> Entry | None:
        """Return the live entry for ``key`` and mark it used, or ``None``.

        Raises ``TypeError`` for an unhashable key; callers validate on a miss.
        """
        policy = self._policy
        if policy is not None:
            return self._lookup_tinylfu(key, policy)
        entry = self._data.get(key)
        if entry is None:
            return None
        expires_at = entry.expires_at
        if expires_at is not INF and expires_at <= self._clock():
            self._expire(key, entry)
            return None
        try:
            self._data.move_to_end(key)
        except KeyError:  # removed by another thread since .get(): the read came first
            return entry
        return entry

    def _lookup_tinylfu(self, key: str, policy: TinyLfuPolicy) -> Entry | None:
        with self._lock:
            policy.record(key)
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry.expires_at <= self._clock():
                self._remove_locked(key, entry)
                self.expirations += 1
                return None
            policy.on_hit(key)
            return entry

    def peek(self, key: str) -> Entry | None:
        """Return the live entry for ``key`` without marking it used."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._expire(key, entry)
            return None
        return entry

    def remaining(self, entry: Entry) -> float:
        """Seconds ``entry`` has left (``inf`` when it never expires)."""
        return entry.expires_at - self._clock()

    def keys(self) -> list[str]:
        """A snapshot of the live keys, least recently used first."""
        now = self._clock()
        with self._lock:
            return [key for key, entry in self._data.items() if entry.expires_at > now]

    def items(self) -> Iterator[tuple[str, Entry]]:
        """The live entries (a snapshot), least recently used first."""
        now = self._clock()
        with self._lock:
            snapshot = list(self._data.items())
        return ((key, entry) for key, entry in snapshot if entry.expires_at > now)

    def scan(
        self, after: str | None, count: int, matches: Callable[[str], object] | None = None
    ) -> tuple[list[str], bool]:
        """Up to ``count`` live keys after ``after`` in key order, and whether more follow.

        Keyset pagination: the next page starts after the last key of this one, so
        a scan that passes each page's last key back returns every key that lives
        throughout exactly once, however reads reorder the LRU meanwhile. Each page
        costs O(entries) (a snapshot, then a partial sort): fine for browsing,
        not for a hot path.
        """
        now = self._clock()
        with self._lock:
            snapshot = list(self._data.items())
        live: Iterable[str] = (key for key, entry in snapshot if entry.expires_at > now)
        if after is not None:
            live = (key for key in live if key > after)
        if matches is not None:
            live = filter(matches, live)
        page = heapq.nsmallest(count + 1, live)
        return page[:count], len(page) > count

    # -- writes -----------------------------------------------------------------

    def store(
        self,
        key: str,
        value: Any,
        *,
        form: int = AS_IS,
        size: int,
        ttl: float,
        tags: frozenset[str] = NO_TAGS,
    ) -> bool:
        """Store an entry living ``ttl`` seconds (0 = forever); False if refused.

        An entry over ``max_bytes`` is refused, and any older entry for the key
        removed, so a refused write never leaves a stale value readable.
        """
        now = self._clock()
        entry = Entry(value, form, now + ttl if ttl else INF, size, tags)
        with self._lock:
            return self._put(key, entry, now)

    def incr(self, key: str, delta: int, ttl: float) -> int:
        """Atomically add ``delta`` to an ``int`` entry; a missing key starts at 0.

        A new entry lives ``ttl`` seconds; an existing one keeps its deadline.
        Raises ``TypeError`` if the entry is not an int, ``OverflowError`` if the
        result leaves the signed 64-bit range (as Redis ``INCRBY`` does).
        """
        now = self._clock()
        with self._lock:
            entry = self._live_int(key, now)
            result: int = (0 if entry is None else entry.value) + delta
            if not INT64_MIN <= result <= INT64_MAX:
                raise OverflowError(result)
            size = entry_size(key, result)
            if entry is None:
                self._put(key, Entry(result, AS_IS, now + ttl if ttl else INF, size, NO_TAGS), now)
            else:  # an int is immutable: rewriting it in place is safe for readers
                self.bytes += size - entry.size
                entry.value, entry.size = result, size
                self._touch(key)
                if self.max_bytes is not None and self.bytes > self.max_bytes:
                    self._enforce_bounds()
            return result

    def start_counter(self, key: str, start: int) -> int:
        """Atomically: the ``int`` entry of ``key``, set to ``start`` (forever) if absent.

        Callers racing to start a counter all get the first one's ``start``.
        Raises ``TypeError`` if the entry is not an int.
        """
        now = self._clock()
        with self._lock:
            entry = self._live_int(key, now)
            if entry is not None:
                return int(entry.value)
            self._put(key, Entry(start, AS_IS, INF, entry_size(key, start), NO_TAGS), now)
            return start

    def _live_int(self, key: str, now: float) -> Entry | None:
        """The unexpired entry of ``key`` if any; ``TypeError`` unless it holds an int."""
        entry = self._data.get(key)
        if entry is None or entry.expires_at <= now:
            return None  # expired: as if absent
        if entry.form != AS_IS or type(entry.value) is not int:
            raise TypeError(type(entry.value).__name__)
        return entry

    def _put(self, key: str, entry: Entry, now: float) -> bool:
        # Overwrites are the common write: they replace the entry in place in the
        # ordering (LRU: move to the end; W-TinyLFU: count as a use).
        if self._deadlines and self._deadlines[0][0] <= now:
            self._purge_expired(now)
        data, policy = self._data, self._policy
        old = data.get(key)
        if old is not None:
            self.bytes -= old.size
            if old.tags:
                self._untag(key, old.tags)
            entry.queued = old.queued
        if self.max_bytes is not None and entry.size > self.max_bytes:
            if old is not None:
                del data[key]
                if policy is not None:
                    policy.remove(key)
            self.rejections += 1
            return False
        data[key] = entry
        self.bytes += entry.size
        for tag in entry.tags:
            self._tags.setdefault(tag, set()).add(key)
        self._queue_deadline(key, entry)
        if old is not None:
            self._touch(key)
        elif policy is not None:
            for victim in policy.insert(key):
                self._evict(victim)
        if len(data) > self.max_size or (
            self.max_bytes is not None and self.bytes > self.max_bytes
        ):
            self._enforce_bounds()
        return True

    def set_expiry(self, key: str, ttl: float) -> bool:
        """Give a live entry a new TTL (0 = forever); False if the key is absent."""
        now = self._clock()
        with self._lock:
            entry = self._data.get(key)
            if entry is None or entry.expires_at <= now:
                return False
            entry.expires_at = now + ttl if ttl else INF
            self._queue_deadline(key, entry)
            return True

    def remove(self, key: str) -> bool:
        """Remove ``key``; True if a live entry was removed."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return False
            self._remove_locked(key, entry)
            return entry.expires_at > self._clock()

    def remove_many(self, keys: Iterable[str]) -> int:
        """Remove every key in ``keys``; returns how many live entries went."""
        now = self._clock()
        removed = 0
        with self._lock:
            for key in keys:
                entry = self._data.get(key)
                if entry is not None:
                    self._remove_locked(key, entry)
                    removed += entry.expires_at > now
        return removed

    def remove_matching(self, matches: Callable[[str], bool]) -> int:
        """Remove every key for which ``matches(key)`` is true; returns the count."""
        with self._lock:
            doomed = [key for key in self._data if matches(key)]
        return self.remove_many(doomed)

    def remove_tagged(self, tags: Iterable[str]) -> int:
        """Remove every entry carrying any of ``tags``; returns the count."""
        with self._lock:
            doomed = {key for tag in tags for key in self._tags.get(tag, ())}
        return self.remove_many(doomed)

    def clear(self) -> None:
        """Remove everything (not counted as evictions)."""
        with self._lock:
            self._data.clear()
            self._tags.clear()
            self._deadlines.clear()
            self.bytes = 0
            if self._policy is not None:
                self._policy.clear()

    def purge_expired(self) -> None:
        """Drop every expired entry now, so counts and sizes describe the living."""
        with self._lock:
            self._purge_expired(self._clock())

    # -- internals (call with the lock held) ------------------------------------

    def _expire(self, key: str, entry: Entry) -> None:
        with self._lock:
            if self._data.get(key) is entry:
                self._remove_locked(key, entry)
                self.expirations += 1

    def _remove_locked(self, key: str, entry: Entry) -> None:
        del self._data[key]
        self.bytes -= entry.size
        if entry.tags:
            self._untag(key, entry.tags)
        if self._policy is not None:
            self._policy.remove(key)

    def _touch(self, key: str) -> None:
        """Mark a resident key as just used (a write counts as a use)."""
        if self._policy is None:
            self._data.move_to_end(key)
        else:
            self._policy.on_hit(key)

    def _untag(self, key: str, tags: frozenset[str]) -> None:
        for tag in tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]

    def _evict(self, key: str) -> None:
        entry = self._data.get(key)
        if entry is None:
            return
        self._remove_locked(key, entry)
        self.evictions += 1
        if self._on_evict is not None:
            self._on_evict(key)

    def _enforce_bounds(self) -> None:
        while len(self._data) > self.max_size or (
            self.max_bytes is not None and self.bytes > self.max_bytes
        ):
            victim = self._policy.victim() if self._policy is not None else next(iter(self._data))
            self._evict(victim)

    def _queue_deadline(self, key: str, entry: Entry) -> None:
        """Make sure the heap will visit ``key`` no later than its deadline.

        A key already queued for an earlier (or equal) deadline needs no new item:
        when that item comes up, :meth:`_purge_expired` re-queues the entry if it
        lives longer now. So overwriting a key rarely touches the heap.
        """
        expires_at = entry.expires_at
        if expires_at is INF or (entry.queued is not None and entry.queued <= expires_at):
            return
        entry.queued = expires_at
        deadlines = self._deadlines
        heapq.heappush(deadlines, (expires_at, key))
        if len(deadlines) > 2 * len(self._data) + 64:  # stale items dominate: rebuild
            for live in self._data.values():
                live.queued = None if live.expires_at is INF else live.expires_at
            self._deadlines = [
                (live.expires_at, live_key)
                for live_key, live in self._data.items()
                if live.expires_at is not INF
            ]
            heapq.heapify(self._deadlines)

    def _purge_expired(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            queued, key = heapq.heappop(deadlines)
            entry = self._data.get(key)
            if entry is None or entry.queued != queued:
                continue  # a stale item: the key went, or has another item queued
            entry.queued = None
            if entry.expires_at <= now:
                self._remove_locked(key, entry)
                self.expirations += 1
            else:  # the deadline moved later since this item was queued
                self._queue_deadline(key, entry)
