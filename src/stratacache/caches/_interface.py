"""``CacheInterface``: the one contract every cache honours.

Every implementation — memory, Redis, two-tier, tenant view — passes the same
contract suite (``tests/contract``), so code written against this class works with
any of them. Shared behaviour that needs nothing but the abstract operations
(``get_or_set`` with single-flight, the async context manager) lives here once.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

from .._codec import IMMUTABLE_TYPES, Codec
from .._keys import validate_key, validate_tags
from .._stampede import SingleFlight
from .._ttl import resolve_ttl
from ..errors import ValidationError

__all__ = ["MISSING", "CacheInterface", "Loader", "incr_refused", "validate_delta"]

T = TypeVar("T")
C = TypeVar("C", bound="CacheInterface")


class _Missing:
    """The type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
"""Pass as ``default`` to ``get()`` to tell a miss from a cached ``None``."""

Loader = Callable[[], "T | Awaitable[T]"]
"""What ``get_or_set`` calls on a miss: a sync or async function of no arguments."""

_GET_OR_SET_OPTIONS = ("tags",)


class CacheInterface(ABC):
    """An async key-value cache with TTLs, tags, patterns and single-flight loads.

    Keys are ``str`` (1 to 1024 characters, no NUL). ``ttl=None`` means the cache's
    ``default_ttl``, ``ttl=0`` never expires. Values round-trip exactly through
    the cache's codec; a caller mutating what it stored or got back never changes
    the cached value.
    """

    default_ttl: int
    codec: Codec

    def __init__(self) -> None:
        self._flights: SingleFlight[Any] = SingleFlight()

    # -- the abstract operations ---------------------------------------------------

    @abstractmethod
    async def get(self, key: str, default: Any = None) -> Any:
        """Return the cached value, or ``default`` on a miss (a cached ``None`` is a hit)."""

    @abstractmethod
    async def set(
        self, key: str, value: Any, ttl: int | None = None, *, tags: Iterable[str] = ()
    ) -> None:
        """Store ``value`` for ``ttl`` seconds, labelled with ``tags`` for invalidation."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was cached."""

    @abstractmethod
    async def exists(self, key: str) -> bool:
        """True if ``key`` is cached (does not count as a use for eviction)."""

    @abstractmethod
    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys that are cached."""

    @abstractmethod
    async def set_many(self, mapping: Mapping[str, Any], ttl: int | None = None) -> None:
        """Store every item; if any key or value is invalid, nothing is stored."""

    @abstractmethod
    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys; returns how many were cached."""

    @abstractmethod
    async def get_ttl(self, key: str) -> int | None:
        """Seconds left (rounded up), ``0`` if it never expires, ``None`` if absent."""

    @abstractmethod
    async def expire(self, key: str, ttl: int | None) -> bool:
        """Give ``key`` a new TTL (``0`` = never expire); False if it is absent."""

    @abstractmethod
    async def incr(self, key: str, delta: int = 1) -> int:
        """Add ``delta`` to an integer value (missing counts as 0); returns the result."""

    @abstractmethod
    async def clear(self) -> None:
        """Remove every entry of this cache's namespace, and nothing else."""

    @abstractmethod
    async def invalidate_pattern(self, pattern: str) -> int:
        """Remove keys matching a Redis-style glob; returns how many went."""

    @abstractmethod
    async def invalidate_tags(self, *tags: str) -> int:
        """Remove every entry labelled with any of ``tags``; returns how many went."""

    @abstractmethod
    def get_stats(self) -> dict[str, Any]:
        """Counters and sizes: hits, misses, sets, deletes, evictions, hit_rate ..."""

    @abstractmethod
    async def get_cache_stats(self) -> dict[str, Any]:
        """A fuller report per tier, with the status of each backend."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release resources; later operations raise ``InfrastructureError``."""

    # -- shared behaviour --------------------------------------------------------------

    async def connect(self) -> bool:
        """Open connections; True when every backend is reachable."""
        return True

    async def __aenter__(self: C) -> C:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: int | None = None,
        **policy: Any,
    ) -> Any:
        """Return the cached value, or load, cache and return it.

        Concurrent calls for one cold key run ``loader`` once in this process; the
        others wait for its result. If the loader raises, every waiter gets the
        error and nothing is cached. ``loader`` may be sync (called on the event
        loop: wrap blocking I/O in ``asyncio.to_thread``) or async.

        Options: ``tags`` — labels for :meth:`invalidate_tags`.
        """
        unknown = sorted(set(policy) - set(_GET_OR_SET_OPTIONS))
        if unknown:
            raise ValidationError(
                f"unknown get_or_set option(s) {', '.join(unknown)}; "
                f"supported: {', '.join(_GET_OR_SET_OPTIONS)}",
                {"options": unknown},
            )
        if not callable(loader):
            raise ValidationError(f"loader must be callable, not {type(loader).__name__}")
        validate_key(key)
        resolve_ttl(ttl, self.default_ttl)
        tags = validate_tags(policy.get("tags", ()))
        value = await self.get(key, MISSING)
        if value is not MISSING:
            return value

        async def load() -> Any:
            cached = await self._recheck(key)
            if cached is not MISSING:
                return cached
            result = loader()
            if inspect.isawaitable(result):
                result = await result
            await self.set(key, result, ttl, tags=tags)
            return result

        result, led = await self._flights.run(key, load)
        return result if led else self._copy_for_waiter(key, result)

    async def _recheck(self, key: str) -> Any:
        """Look ``key`` up again inside a flight (another flight may just have filled it).

        Implementations override this to skip hit/miss counting.
        """
        return await self.get(key, MISSING)

    def _copy_for_waiter(self, key: str, value: Any) -> Any:
        """A copy of a loaded value for a waiter, so waiters never share a mutable object."""
        if type(value) in IMMUTABLE_TYPES:
            return value
        return self.codec.decode(self.codec.encode(value, key), key)


def validate_delta(delta: object) -> int:
    """Check ``incr``'s ``delta``: an ``int`` (not a bool)."""
    if type(delta) is not int:
        raise ValidationError(f"delta must be an int, not {type(delta).__name__}")
    return delta


def incr_refused(
    key: str, delta: int, *, overflow: bool, holding: str = "a value"
) -> ValidationError:
    """The error for an ``incr`` the stored value or the int64 range refuses."""
    if overflow:
        return ValidationError(
            f"incr of {key!r} by {delta} would leave the signed 64-bit range",
            {"key": key, "delta": delta},
        )
    return ValidationError(f"cannot incr {key!r}: it holds {holding}, not an int", {"key": key})
