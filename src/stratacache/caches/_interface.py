"""``CacheInterface``: the one contract every cache honours.

Every implementation — memory, Redis, two-tier, tenant view — passes the same
contract suite (``tests/contract``), so code written against this class works with
any of them. Shared behaviour that needs nothing but the abstract operations
(``get_or_set`` with single-flight, the async context manager) lives here once.
"""

from __future__ import annotations

import base64
import binascii
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

from .._clock import Clock
from .._codec import IMMUTABLE_TYPES, Codec
from .._keys import validate_key
from .._loading import Loading
from .._missing import MISSING
from .._policy import parse_policy
from .._stampede import SingleFlight
from .._stamps import Stamped, conceal, reveal
from .._ttl import resolve_ttl
from ..errors import ValidationError

__all__ = [
    "MAX_SCAN_COUNT",
    "MISSING",
    "SCAN_DONE",
    "CacheInterface",
    "Loader",
    "bad_cursor",
    "incr_refused",
    "keyset_cursor",
    "keyset_position",
    "scan_cursor",
    "validate_delta",
    "validate_scan_count",
]

T = TypeVar("T")
C = TypeVar("C", bound="CacheInterface")


Loader = Callable[[], "T | Awaitable[T]"]
"""What ``get_or_set`` calls on a miss: a sync or async function of no arguments."""


MAX_SCAN_COUNT: Final = 1000
"""The most keys one ``scan_keys`` call may be asked for."""
SCAN_DONE: Final = "0"
"""The cursor ``scan_keys`` returns when the scan is complete (``"0"`` or ``0`` also starts one)."""
MAX_CURSOR_LENGTH: Final = 8192


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
        self._loading = Loading(self)
        # The time freshness stamps are written and judged on (see _stamps): wall
        # time, as other processes read them; a memory-only cache uses its clock.
        self._stamp_clock: Clock = time.time

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

    async def scan_keys(
        self, pattern: str = "*", *, cursor: str | int = 0, count: int = 100
    ) -> tuple[str, list[str]]:
        """One page of the keys matching ``pattern`` (a Redis glob), never their values.

        Start with ``cursor=0``; pass each returned cursor back in until it comes
        back as ``"0"`` (:data:`SCAN_DONE`). Cursors are opaque strings belonging to
        the cache that returned them; a cursor this cache did not return raises
        :class:`ValidationError`. ``count`` (1 to :data:`MAX_SCAN_COUNT`) bounds
        the page. Keys are the caller's keys (namespace and prefix stripped);
        internal keys are never listed.

        As with Redis ``SCAN``, a key present from the start to the end of a scan
        is returned; a key added or removed meanwhile may or may not be. Memory
        caches page in key order and return each key once; Redis-backed caches
        follow the server's cursor, where a page may hold fewer keys than
        ``count`` (even none) before the scan ends. Redis-backed caches raise
        :class:`InfrastructureError` when Redis cannot answer, whatever their
        failure policy: an empty page would claim the cache is empty.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not support key browsing (scan_keys)"
        )

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

        Options (keyword-only, all off by default): ``tags``,
        ``stale_while_revalidate``, ``stale_if_error``, ``beta`` (XFetch early
        recomputation), ``ttl_jitter``, ``lease`` (one loader across processes) and
        ``loader_timeout``, as described in ``stratacache._policy``.
        """
        options = parse_policy(policy)
        if not callable(loader):
            raise ValidationError(f"loader must be callable, not {type(loader).__name__}")
        validate_key(key)
        seconds = resolve_ttl(ttl, self.default_ttl)
        token = reveal()  # stamps and all: the policies judge them
        try:
            found = await self.get(key, MISSING)
        finally:
            conceal(token)
        if found is not MISSING and type(found) is not Stamped:
            return found  # the common hit: no policy to apply
        return await self._loading.settle(key, found, loader, seconds, options)

    async def _recheck(self, key: str) -> Any:
        """Look ``key`` up again inside a flight (another flight may just have filled it).

        Implementations override this to skip hit/miss counting.
        """
        return await self.get(key, MISSING)

    async def _start_counter(self, key: str, start: int) -> int:
        """The counter under ``key``, set first to ``start`` (no expiry) if absent.

        The caches of this package do this atomically, so that callers racing to
        start a counter (TenantCache's generations) all get one value. This default,
        for other subclasses, does not: racers may each add their ``start``.
        """
        value = await self.get(key, MISSING)
        if value is MISSING:
            value = await self.incr(key, start)
            await self.expire(key, 0)
        return int(value)

    async def _acquire_lease(self, key: str, token: str, seconds: float) -> bool | None:
        """Take the cross-process load lease of ``key`` (see ``_lease``).

        True: taken; False: another process holds it; None: no shared backend to
        hold one in (a memory-only cache, or Redis failing): load here.
        """
        return None

    async def _release_lease(self, key: str, token: str) -> None:
        """Give back a lease :meth:`_acquire_lease` took."""
        return  # nothing was taken

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


def validate_scan_count(count: object) -> int:
    """Check ``scan_keys``'s ``count``: an ``int`` from 1 to :data:`MAX_SCAN_COUNT`."""
    if type(count) is not int or not 1 <= count <= MAX_SCAN_COUNT:
        raise ValidationError(
            f"count must be an int from 1 to {MAX_SCAN_COUNT}, got {count!r:.40}",
            {"max_count": MAX_SCAN_COUNT},
        )
    return count


def scan_cursor(cursor: object) -> str:
    """Check a ``scan_keys`` cursor: ``0``, ``"0"`` and ``""`` start a scan (``"0"``)."""
    if type(cursor) is int and cursor == 0:
        return SCAN_DONE
    if type(cursor) is not str or len(cursor) > MAX_CURSOR_LENGTH:
        raise ValidationError(
            "cursor must be 0 or a cursor string a previous scan_keys call returned",
            {"cursor_type": type(cursor).__name__},
        )
    return cursor or SCAN_DONE


def bad_cursor() -> ValidationError:
    """The error for a cursor string this cache did not return."""
    return ValidationError(
        "cursor is not one this cache returned; start again with cursor=0",
        {"hint": "cursors are opaque and belong to the cache (and scan) that returned them"},
    )


_KEYSET_TAG = "k"


def keyset_cursor(last_key: str) -> str:
    """The cursor of a keyset page that ended with ``last_key`` (opaque: base64 of it)."""
    encoded = base64.urlsafe_b64encode(last_key.encode("utf-8", "surrogatepass"))
    return _KEYSET_TAG + encoded.decode("ascii").rstrip("=")


def keyset_position(cursor: str) -> str | None:
    """The key a :func:`keyset_cursor` resumes after; ``None`` for :data:`SCAN_DONE`."""
    if cursor == SCAN_DONE:
        return None
    body = cursor[1:]
    if not cursor.startswith(_KEYSET_TAG) or not body or not body.isascii():
        raise bad_cursor()
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        return raw.decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise bad_cursor() from None
