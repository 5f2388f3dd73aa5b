"""``InMemoryCache``: the process-local cache, and the memory tier of the two-tier one."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from .._clock import Clock, monotonic
from .._codec import IMMUTABLE_TYPES, Codec, UndecodableValue, report_undecodable
from .._keys import (
    glob_matcher,
    namespace_prefix,
    validate_key,
    validate_keys,
    validate_pattern,
    validate_tags,
)
from .._ttl import resolve_ttl, validate_default_ttl, validate_positive_int
from ..errors import InfrastructureError, ValidationError
from ..tiers._memory import AS_IS, COPY, ENCODED, Entry, Eviction, MemoryTier, entry_size
from ._interface import MISSING, CacheInterface, incr_refused, validate_delta

__all__ = ["InMemoryCache", "LocalCache"]

# Values of these exact types cannot be mutated by a caller, so they are kept as
# they are. Flat containers of them are kept as a private copy and handed out as
# shallow copies (7x faster than decoding); everything else is kept encoded and
# decoded afresh on every read. Either way no caller can alias the cached value.
_IMMUTABLE = IMMUTABLE_TYPES
_FLAT_TYPES = frozenset({dict, list, set, tuple, frozenset})
_MEMBER_ESTIMATE = 48  # bytes: a small str or int, for memory_usage_bytes without max_bytes


class InMemoryCache(CacheInterface):
    """A bounded in-process cache with per-entry TTL, tags and patterns.

    Args:
        max_size: the most entries held; the least recently used go first.
        default_ttl: seconds an entry lives when ``set`` gets no ``ttl``
            (``0``: never expire).
        max_bytes: optionally bound the estimated memory of the entries too.
        eviction: ``"lru"`` (default) or ``"tinylfu"`` (W-TinyLFU admission: a
            one-off scan cannot flush the keys you read often).
        namespace: a label for this cache (keys are held as given).
        clock: seconds on a monotonic scale; inject
            :class:`stratacache.testing.FakeClock` to test expiry without sleeping.
        codec: how values are encoded (register your dataclasses here).
    """

    def __init__(
        self,
        max_size: int = 1000,
        default_ttl: int = 3600,
        *,
        max_bytes: int | None = None,
        eviction: Eviction = "lru",
        namespace: str = "",
        clock: Clock | None = None,
        codec: Codec | None = None,
    ) -> None:
        super().__init__()
        self.max_size = validate_positive_int("max_size", max_size)
        self.default_ttl = validate_default_ttl(default_ttl)
        if max_bytes is not None:
            validate_positive_int("max_bytes", max_bytes)
        if eviction not in ("lru", "tinylfu"):
            raise ValidationError(
                f"eviction must be 'lru' or 'tinylfu', got {eviction!r}",
                {"eviction": repr(eviction)},
            )
        namespace_prefix(namespace)  # validates it
        self.namespace = namespace
        self.codec = codec if codec is not None else Codec()
        self._tier = MemoryTier(
            max_size,
            clock=clock if clock is not None else monotonic,
            max_bytes=max_bytes,
            eviction=eviction,
        )
        self._lookup = self._tier.lookup
        self._lru = eviction == "lru"
        self._entries = self._tier.entries
        self._clock = self._tier.clock
        self._closed = False
        self._hits = self._misses = self._sets = self._deletes = 0
        self._invalidations = self._decode_errors = 0

    def __repr__(self) -> str:
        return (
            f"InMemoryCache(max_size={self.max_size}, default_ttl={self.default_ttl}, "
            f"namespace={self.namespace!r}, entries={len(self._tier)})"
        )

    # -- reads ---------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        # The hot path. It validates nothing on a hit: only valid keys are ever
        # stored, so a key that hits is valid; misses validate, and so raise for
        # bad keys. For LRU the tier's lookup is inlined (one Python call less);
        # MemoryTier's docstring says why this read needs no lock.
        try:
            if self._lru:
                entry = self._entries.get(key)
                if entry is not None:
                    if entry.expires_at > self._clock():
                        self._entries.move_to_end(key)
                    else:
                        entry = self._lookup(key)  # the tier expires and counts it
            else:
                entry = self._lookup(key)
        except (TypeError, KeyError):  # unhashable key, or removed by another thread
            entry = None
        if entry is None:
            validate_key(key)
            self._check_open()
            self._misses += 1
            return default
        form = entry.form
        if form == AS_IS:
            self._hits += 1
            return entry.value
        if form == COPY:
            self._hits += 1
            return entry.value.copy()
        return self._decode(key, entry, default)

    async def exists(self, key: str) -> bool:
        validate_key(key)
        self._check_open()
        return self._tier.peek(key) is not None

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key in validate_keys(keys):
            value = await self.get(key, MISSING)
            if value is not MISSING:
                found[key] = value
        return found

    async def get_ttl(self, key: str) -> int | None:
        validate_key(key)
        self._check_open()
        entry = self._tier.peek(key)
        if entry is None:
            return None
        remaining = self._tier.remaining(entry)
        return 0 if remaining == math.inf else max(1, math.ceil(remaining))

    # -- writes --------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, ttl: int | None = None, *, tags: Iterable[str] = ()
    ) -> None:
        validate_key(key)
        seconds = resolve_ttl(ttl, self.default_ttl)
        labels = validate_tags(tags)
        self._check_open()
        stored, form, size = self._prepare(key, value)
        self._tier.store(key, stored, form=form, size=size, ttl=seconds, tags=labels)
        self._sets += 1

    async def set_many(self, mapping: Mapping[str, Any], ttl: int | None = None) -> None:
        if not isinstance(mapping, Mapping):
            raise ValidationError(f"set_many needs a mapping, not {type(mapping).__name__}")
        seconds = resolve_ttl(ttl, self.default_ttl)
        self._check_open()
        # Encode everything first: one bad value stores nothing.
        prepared = [
            (validate_key(key), *self._prepare(key, value)) for key, value in mapping.items()
        ]
        for key, stored, form, size in prepared:
            self._tier.store(key, stored, form=form, size=size, ttl=seconds)
        self._sets += len(prepared)

    async def delete(self, key: str) -> bool:
        validate_key(key)
        self._check_open()
        removed = self._tier.remove(key)
        self._deletes += removed
        return removed

    async def delete_many(self, keys: Iterable[str]) -> int:
        valid = validate_keys(keys)
        self._check_open()
        removed = self._tier.remove_many(valid)
        self._deletes += removed
        return removed

    async def expire(self, key: str, ttl: int | None) -> bool:
        validate_key(key)
        seconds = resolve_ttl(ttl, self.default_ttl)
        self._check_open()
        return self._tier.set_expiry(key, seconds)

    async def incr(self, key: str, delta: int = 1) -> int:
        validate_key(key)
        validate_delta(delta)
        self._check_open()
        try:
            return self._tier.incr(key, delta, self.default_ttl)
        except TypeError as exc:
            raise incr_refused(key, delta, overflow=False, holding=f"a {exc}") from None
        except OverflowError:
            raise incr_refused(key, delta, overflow=True) from None

    async def clear(self) -> None:
        self._check_open()
        self._tier.clear()

    async def invalidate_pattern(self, pattern: str) -> int:
        matcher = glob_matcher(validate_pattern(pattern))
        self._check_open()
        removed = self._tier.remove_matching(
            lambda key: matcher.fullmatch(key.encode()) is not None
        )
        self._invalidations += removed
        return removed

    async def invalidate_tags(self, *tags: str) -> int:
        labels = validate_tags(tags)
        self._check_open()
        removed = self._tier.remove_tagged(labels)
        self._invalidations += removed
        return removed

    # -- stats and lifecycle -------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        tier = self._tier
        tier.purge_expired()
        lookups = self._hits + self._misses
        return {
            "hits": self._hits,
            "misses": self._misses,
            "sets": self._sets,
            "deletes": self._deletes,
            "invalidations": self._invalidations,
            "evictions": tier.evictions,
            "expirations": tier.expirations,
            "rejections": tier.rejections,
            "decode_errors": self._decode_errors,
            "hit_rate": self._hits / lookups if lookups else 0.0,
            "entries": len(tier),
            "max_size": self.max_size,
            "memory_usage_bytes": tier.bytes,
            "max_bytes": tier.max_bytes,
            "eviction": tier.eviction,
        }

    async def get_cache_stats(self) -> dict[str, Any]:
        return {
            "backend": "memory",
            "namespace": self.namespace,
            "memory": {"status": "closed" if self._closed else "active", **self.get_stats()},
            "redis": {"status": "disabled"},
        }

    async def aclose(self) -> None:
        """Drop every entry; later operations raise :class:`InfrastructureError`."""
        self._closed = True
        self._tier.clear()

    # -- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError(
                "this InMemoryCache is closed; create a new one", {"namespace": self.namespace}
            )

    def _prepare(self, key: str, value: Any) -> tuple[Any, int, int]:
        """What to store for ``value``: (stored value, its form, its estimated size)."""
        cls = type(value)
        if cls in _IMMUTABLE:
            return value, AS_IS, entry_size(key, value)
        if cls in _FLAT_TYPES and _IMMUTABLE.issuperset(map(type, value)):
            if cls is dict and not _IMMUTABLE.issuperset(map(type, value.values())):
                return self._encode(key, value)
            size = entry_size(key, value) + self._members_size(value)
            if cls is tuple or cls is frozenset:
                return value, AS_IS, size
            return value.copy(), COPY, size
        return self._encode(key, value)

    def _encode(self, key: str, value: Any) -> tuple[bytes, int, int]:
        encoded = self.codec.encode(value, key)
        return encoded, ENCODED, entry_size(key, encoded)

    def _members_size(self, container: Any) -> int:
        # sys.getsizeof costs ~150 ns a member, more than the copy saves on a read:
        # pay it only when max_bytes makes the figure a bound, else estimate.
        if self._tier.max_bytes is None:
            return _MEMBER_ESTIMATE * len(container) * (2 if type(container) is dict else 1)
        size = sum(map(sys.getsizeof, container))
        if type(container) is dict:
            size += sum(map(sys.getsizeof, container.values()))
        return size

    def _decode(self, key: str, entry: Entry, default: Any) -> Any:
        try:
            value = self.codec.decode(entry.value, key)
        except UndecodableValue as exc:
            self._tier.remove(key)
            self._misses += 1
            self._decode_errors += 1
            report_undecodable(key, exc, self._decode_errors)
            return default
        self._hits += 1
        return value

    async def _recheck(self, key: str) -> Any:
        entry = self._tier.peek(key)
        if entry is None:
            return MISSING
        if entry.form != ENCODED:
            return entry.value if entry.form == AS_IS else entry.value.copy()
        try:
            return self.codec.decode(entry.value, key)
        except UndecodableValue:
            return MISSING

    def _copy_for_waiter(self, key: str, value: Any) -> Any:
        stored, form, _ = self._prepare(key, value)
        if form == ENCODED:
            return self.codec.decode(stored, key)
        return stored


LocalCache = InMemoryCache
"""An alias of :class:`InMemoryCache`, the name some existing code uses."""
