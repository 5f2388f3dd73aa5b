"""One resource per event loop, closed when that loop shuts down.

``redis.asyncio`` connections belong to the event loop that opened them: a cache
shared by threads that each run their own loop (``asyncio.run`` per thread or per
task, as Celery workers and Django's ``async_to_sync`` do) needs a client per loop.
Nothing in asyncio tells a library that a loop is finishing, except one thing:
``asyncio.run`` (and ``asyncio.Runner``) finalizes every async generator the loop
has seen, inside the loop, before closing it (``loop.shutdown_asyncgens``). So each
loop's resource is watched by a small async generator whose ``finally`` closes it:
the resource is closed in its own loop, by that loop, as it ends.

A loop closed without ``shutdown_asyncgens`` (a hand-driven ``loop.close()``) leaves
its resource to the garbage collector, as it would any other open connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

logger = logging.getLogger("stratacache")
T = TypeVar("T")

_CLOSE_TIMEOUT = 5.0  # seconds to wait for another thread's loop to close its resource


class PerLoop(Generic[T]):
    """Hands each running event loop its own ``T``, made on first use.

    Args:
        make: builds a resource; ``None`` when only ``initial`` may ever be used
            (an injected client: another loop then gets ``refuse()`` raised).
        close: closes a resource; awaited in the loop that used it.
        initial: a resource built before any loop ran (so construction errors
            surface at once); the first loop to ask adopts it.
        refuse: the error for a second live loop when ``make`` is None.
    """

    def __init__(
        self,
        make: Callable[[], T] | None,
        close: Callable[[T], Awaitable[None]],
        *,
        initial: T,
        refuse: Callable[[], Exception] | None = None,
    ) -> None:
        self._make = make
        self._close = close
        self._initial: T | None = initial
        self.any: T = initial
        """A resource to inspect outside any loop (the first one made)."""
        self._refuse = refuse
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]] = {}
        self._last: tuple[asyncio.AbstractEventLoop, T] | None = None

    def get(self) -> T:
        """The running loop's resource (made, and watched, on first use)."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:  # the common case: one loop
            return last[1]
        with self._lock:
            entry = self._by_loop.get(loop)
            value = entry[0] if entry is not None else self._adopt(loop)
        self._last = (loop, value)
        return value

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> T:
        if self._initial is not None:
            value, self._initial = self._initial, None
        elif self._make is not None:
            value = self._make()
        else:
            live = [other for other in self._by_loop if not other.is_closed()]
            if live and self._refuse is not None:
                raise self._refuse()
            value = self.any  # its loop is gone: the only resource there is moves on
            self._by_loop.clear()
        watcher = self._watch(loop, value)
        # Start the watcher up to its ``yield`` now, synchronously: the first
        # iteration registers it with the running loop (the asyncgen hooks run on
        # creation of the step, not on its await), and nothing before the yield
        # awaits, so one send() reaches it.
        with contextlib.suppress(StopIteration):
            watcher.asend(None).send(None)
        self._by_loop[loop] = (value, watcher)
        return value

    async def _watch(self, loop: asyncio.AbstractEventLoop, value: T) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                if self._by_loop.get(loop, (None,))[0] is value:
                    del self._by_loop[loop]
                if self._last is not None and self._last[0] is loop:
                    self._last = None
            try:
                await self._close(value)
            except Exception as exc:  # the loop is ending: nothing to tell anyone
                logger.debug("stratacache: closing a per-loop resource failed: %s", exc)

    async def aclose(self) -> None:
        """Close every loop's resource (in its own loop where that loop still runs)."""
        with self._lock:
            entries, self._by_loop = list(self._by_loop.items()), {}
            initial, self._initial = self._initial, None
            self._last = None
        current = asyncio.get_running_loop()
        if initial is not None:  # never used by any loop: free to close here
            await self._close(initial)
        for loop, (_, watcher) in entries:
            if loop is current:
                await watcher.aclose()
            elif loop.is_running():
                done = asyncio.run_coroutine_threadsafe(_finish(watcher), loop)
                try:
                    await asyncio.wait_for(asyncio.wrap_future(done), _CLOSE_TIMEOUT)
                except Exception as exc:
                    logger.debug("stratacache: another loop did not close its client: %s", exc)
            # else: the loop is stopped or closed; nothing can run in it any more.


async def _finish(watcher: AsyncGenerator[None, None]) -> None:
    await watcher.aclose()
