"""``NullCache``: what the ``disabled`` preset builds — a cache that caches nothing.

Turning caching off must not change what a program *computes*, only how often it
computes it, and must not hide bugs that would surface once caching is on again.
So every read misses and nothing is stored, yet every argument is validated as a
real cache validates it, and values are encoded (then dropped): a key, TTL or
value that a real cache refuses is refused here too. ``get_or_set`` always runs
the loader (concurrent callers of one key still share one run, as with any cache).
A small ``InMemoryCache`` would not be "disabled": it would serve stale data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._codec import Codec
from .._keys import validate_key, validate_keys, validate_pattern, validate_tags
from .._ttl import resolve_ttl, validate_default_ttl
from ..caches._interface import (
    MISSING,
    SCAN_DONE,
    CacheInterface,
    bad_cursor,
    scan_cursor,
    validate_delta,
    validate_scan_count,
)
from ..errors import InfrastructureError, ValidationError

__all__ = ["NullCache"]


class NullCache(CacheInterface):
    """A :class:`CacheInterface` whose reads always miss and whose writes store nothing.

    Args:
        default_ttl: validated and reported, so code reading it keeps working.
        namespace: a label, shown in stats.
        codec: values are encoded with it on ``set`` (and then dropped), so a
            value no real cache could store raises here as well.
    """

    def __init__(
        self, default_ttl: int = 300, *, namespace: str = "", codec: Codec | None = None
    ) -> None:
        super().__init__()
        self.default_ttl = validate_default_ttl(default_ttl)
        self.namespace = namespace
        self.codec = codec if codec is not None else Codec()
        self.max_size = 0
        self._closed = False
        self._misses = self._sets = 0

    def __repr__(self) -> str:
        return f"NullCache(default_ttl={self.default_ttl}, namespace={self.namespace!r})"

    async def get(self, key: str, default: Any = None) -> Any:
        validate_key(key)
        self._check_open()
        self._misses += 1
        return default

    async def set(
        self, key: str, value: Any, ttl: int | None = None, *, tags: Iterable[str] = ()
    ) -> None:
        validate_key(key)
        resolve_ttl(ttl, self.default_ttl)
        validate_tags(tags)
        self._check_open()
        self.codec.encode(value, key)
        self._sets += 1

    async def delete(self, key: str) -> bool:
        validate_key(key)
        self._check_open()
        return False

    async def exists(self, key: str) -> bool:
        validate_key(key)
        self._check_open()
        return False

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        wanted = validate_keys(keys)
        self._check_open()
        self._misses += len(wanted)
        return {}

    async def set_many(self, mapping: Mapping[str, Any], ttl: int | None = None) -> None:
        if not isinstance(mapping, Mapping):
            raise ValidationError(f"set_many needs a mapping, not {type(mapping).__name__}")
        resolve_ttl(ttl, self.default_ttl)
        self._check_open()
        for key, value in mapping.items():
            self.codec.encode(value, validate_key(key))
        self._sets += len(mapping)

    async def delete_many(self, keys: Iterable[str]) -> int:
        validate_keys(keys)
        self._check_open()
        return 0

    async def get_ttl(self, key: str) -> int | None:
        validate_key(key)
        self._check_open()
        return None

    async def expire(self, key: str, ttl: int | None) -> bool:
        validate_key(key)
        resolve_ttl(ttl, self.default_ttl)
        self._check_open()
        return False

    async def incr(self, key: str, delta: int = 1) -> int:
        """Returns ``delta``: the key is always missing, and missing counts as 0."""
        validate_key(key)
        validate_delta(delta)
        self._check_open()
        return delta

    async def clear(self) -> None:
        self._check_open()

    async def invalidate_pattern(self, pattern: str) -> int:
        validate_pattern(pattern)
        self._check_open()
        return 0

    async def scan_keys(
        self, pattern: str = "*", *, cursor: str | int = 0, count: int = 100
    ) -> tuple[str, list[str]]:
        validate_pattern(pattern)
        validate_scan_count(count)
        if scan_cursor(cursor) != SCAN_DONE:
            raise bad_cursor()  # it never hands out any other
        self._check_open()
        return SCAN_DONE, []

    async def invalidate_tags(self, *tags: str) -> int:
        validate_tags(tags)
        self._check_open()
        return 0

    def get_stats(self) -> dict[str, Any]:
        return {
            "hits": 0,
            "misses": self._misses,
            "sets": self._sets,
            "deletes": 0,
            "evictions": 0,
            "expirations": 0,
            "hit_rate": 0.0,
            "entries": 0,
            "max_size": 0,
            "memory_usage_bytes": 0,
            "caching": "disabled",
        }

    async def get_cache_stats(self) -> dict[str, Any]:
        return {
            "backend": "disabled",
            "namespace": self.namespace,
            "memory": {"status": "disabled", **self.get_stats()},
            "redis": {"status": "disabled"},
        }

    async def aclose(self) -> None:
        self._closed = True

    async def _recheck(self, key: str) -> Any:
        return MISSING

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError("this NullCache is closed; create a new one")
