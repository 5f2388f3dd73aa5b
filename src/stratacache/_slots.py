"""A count of things in flight, with a first-come queue for callers beyond the limit.

Why not ``asyncio.Semaphore``: every Redis command takes a slot, and the common case
(a slot free, no one waiting) must cost an integer comparison, not a coroutine and a
future. Callers on the hot path inline that case::

    if slots.busy < slots.limit:
        slots.busy += 1
    else:
        await slots.wait()
    try:
        ...
    finally:
        slots.release()
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Slots"]


class Slots:
    """At most ``limit`` holders; the rest wait in order and are handed a slot."""

    __slots__ = ("_idle", "busy", "limit", "waiters")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self._idle: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        """Wait until a holder hands over its slot (``busy`` stays the same)."""
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            else:
                self.waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give the slot to the first caller still waiting, or free it."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy -= 1
        if self._idle is not None and not self.busy and not self._idle.done():
            self._idle.set_result(None)

    async def drained(self, timeout: float) -> bool:
        """Wait until no one holds or waits for a slot; False if ``timeout`` passed first."""
        if not self.busy:
            return True
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._idle), timeout)
        except asyncio.TimeoutError:  # (not TimeoutError before Python 3.11)
            return False
        return True
