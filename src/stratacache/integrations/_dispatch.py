"""Running the cache's async invalidations from the ORMs' synchronous hooks.

SQLAlchemy session events and Django's ``on_commit`` callbacks are plain functions;
the cache is async. :class:`Dispatcher` bridges the two, choosing by where the hook
runs:

* **Inside a running event loop** (an ``AsyncSession``: its events fire in a greenlet
  on the loop's thread; or a sync ``Session`` used inside ``async def``): blocking
  would stall or deadlock the loop, so the invalidation becomes a task on that loop.
  The dispatcher keeps a strong reference to it (asyncio only keeps weak ones) and
  :meth:`Dispatcher.drain` awaits the tasks of the current loop: call it when the
  same task must read its own write (``await session.commit(); await
  invalidator.drain()``), in tests, and at shutdown.
* **Outside any loop** (a sync ``Session`` in a thread, Django views under WSGI or
  ``sync_to_async``): the invalidation runs on one private event loop in a daemon
  thread, started on first use, and the hook waits for it (at most ``timeout``
  seconds). So once ``commit()`` (or the ``atomic`` block) returns, the keys are gone:
  the next read in the same thread cannot see the old value. One long-lived loop is
  also one Redis connection: ``asgiref``'s ``async_to_sync`` (what Django offers)
  would start a new thread and event loop for every call in WSGI code, and a
  Redis-backed cache opens a client per loop, so it would connect and disconnect on
  every commit. A cache shared by several loops works (stratacache gives each loop
  its own Redis client and closes it with that loop).

Failures never reach the commit: whatever the cache (or a timeout) raises is logged
and counted in :meth:`Dispatcher.stats`, and the transaction's work stands.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine
from typing import Any

from ..caches._interface import CacheInterface
from ._registry import Invalidation

__all__ = ["DEFAULT_TIMEOUT", "Dispatcher"]

logger = logging.getLogger("stratacache")

DEFAULT_TIMEOUT = 5.0
"""Seconds one invalidation may take before it is abandoned (logged and counted)."""

_PREVIEW = 5  # keys or tags named in a log line


class Dispatcher:
    """Sends :class:`Invalidation` s to a cache from synchronous code; see the module doc."""

    def __init__(self, cache: CacheInterface, *, timeout: float | None, name: str) -> None:
        self.cache = cache
        self.timeout = timeout
        self._name = name
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: _LoopThread | None = None
        self._closed = False
        self._counts = {
            "batches": 0,  # invalidations sent (one per committed transaction)
            "keys": 0,  # keys asked to be deleted
            "tags": 0,  # tags asked to be invalidated
            "removed": 0,  # entries the cache reported removed
            "errors": 0,  # cache failures, timeouts and failing key functions
            "dropped": 0,  # invalidations that arrived after close()
            "unmapped_bulk": 0,  # bulk statements on models with only per-row rules
        }
        self._last_error: str | None = None

    # -- sending -------------------------------------------------------------------

    def submit(self, plan: Invalidation) -> None:
        """Invalidate ``plan`` now: as a task inside a running loop, else blocking."""
        if not plan:
            return
        if self._closed:
            self.bump("dropped")
            logger.warning(
                "stratacache: %s is closed; an invalidation after commit was dropped "
                "(keys=%s tags=%s)",
                self._name,
                _preview(plan.keys),
                _preview(plan.tags),
            )
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            task = loop.create_task(self._apply(plan))
            with self._lock:
                self._tasks.add(task)
            task.add_done_callback(self._forget)
            return
        work = self._apply(plan)
        try:
            future = self._loop_thread().submit(work)
        except RuntimeError as exc:  # close() stopped the loop meanwhile
            work.close()
            self.failed("invalidation", exc, plan)
            return
        # _apply enforces the timeout itself; this bound only guards against a stuck loop.
        guard = None if self.timeout is None else self.timeout + 1.0
        try:
            future.result(guard)
        except concurrent.futures.TimeoutError:
            self.failed("invalidation", TimeoutError(f"no answer in {guard} s"), plan)
        except concurrent.futures.CancelledError as exc:  # the loop stopped under it
            self.failed("invalidation", exc, plan)

    async def _apply(self, plan: Invalidation) -> None:
        self.bump("batches")
        try:
            await asyncio.wait_for(self._invalidate(plan), self.timeout)
        except asyncio.TimeoutError:
            self.failed("invalidation", TimeoutError(f"took over {self.timeout} s"), plan)

    async def _invalidate(self, plan: Invalidation) -> None:
        # Keys and tags independently: one failing does not keep the other stale.
        if plan.keys:
            self.bump("keys", len(plan.keys))
            try:
                self.bump("removed", await self.cache.delete_many(sorted(plan.keys)))
            except Exception as exc:
                self.failed("delete_many", exc, plan)
        if plan.tags:
            self.bump("tags", len(plan.tags))
            try:
                self.bump("removed", await self.cache.invalidate_tags(*sorted(plan.tags)))
            except Exception as exc:
                self.failed("invalidate_tags", exc, plan)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with self._lock:
            self._tasks.discard(task)

    def _loop_thread(self) -> _LoopThread:
        with self._lock:
            if self._runner is None:
                self._runner = _LoopThread(f"stratacache-{self._name}")
            return self._runner

    # -- waiting and closing -------------------------------------------------------

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(not task.done() for task in self._tasks)

    async def drain(self) -> None:
        """Wait until every invalidation scheduled on the running loop has finished."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                mine = [t for t in self._tasks if t.get_loop() is loop and not t.done()]
            if not mine:
                return
            await asyncio.wait(mine)

    def close(self) -> None:
        """Stop the private loop (closing its Redis client); later submissions are dropped.

        Tasks already scheduled on the caller's own loops are left to finish: await
        :meth:`drain` first to wait for them.
        """
        with self._lock:
            self._closed = True
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()

    # -- accounting ----------------------------------------------------------------

    def bump(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def failed(self, where: str, exc: BaseException, plan: Invalidation | None = None) -> None:
        """Log and count a failure; the commit it belongs to is never affected."""
        with self._lock:
            self._counts["errors"] += 1
            self._last_error = f"{where}: {type(exc).__name__}: {exc}"
        if plan is None:
            logger.warning("stratacache: %s: %s failed: %r", self._name, where, exc)
        else:
            logger.warning(
                "stratacache: %s: %s failed after commit, entries may be stale "
                "(keys=%s tags=%s): %r",
                self._name,
                where,
                _preview(plan.keys),
                _preview(plan.tags),
                exc,
            )

    def stats(self) -> dict[str, Any]:
        with self._lock:
            stats: dict[str, Any] = dict(self._counts)
            stats["last_error"] = self._last_error
        stats["pending"] = self.pending
        return stats


def _preview(items: frozenset[str]) -> str:
    shown = sorted(items)[:_PREVIEW]
    more = len(items) - len(shown)
    return f"{shown}{f' (+{more} more)' if more else ''}"


class _LoopThread:
    """An event loop in a daemon thread, for callers that have no loop of their own.

    ``asyncio.run`` drives it, so stopping it cancels what is left, finalizes async
    generators (which closes the per-loop Redis clients) and closes the loop.
    """

    def __init__(self, name: str) -> None:
        started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            started.set()
            await self._stop.wait()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name=name, daemon=True)
        self._thread.start()
        started.wait()

    def submit(self, coro: Coroutine[Any, Any, None]) -> concurrent.futures.Future[None]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def stop(self, timeout: float = 5.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stop.set)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
