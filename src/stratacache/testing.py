"""Test doubles for code that uses stratacache.

Inject :class:`FakeClock` into a cache to test expiry without sleeping::

    clock = FakeClock()
    cache = InMemoryCache(default_ttl=60, clock=clock)
    await cache.set("k", "v")
    clock.advance(61)
    assert await cache.get("k") is None
"""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A monotonic clock that moves only when told to (thread-safe).

    Call it to read the time in seconds; :meth:`advance` moves it forward.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now})"

    @property
    def now(self) -> float:
        """The current fake time in seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (never backwards); returns the new time."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now
