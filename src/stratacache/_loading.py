"""``get_or_set``: find the value, or load it once, under the caller's policy.

The steps, for every cache (memory, Redis, two-tier; a tenant view hands its calls
to the cache under it):

1. Read the entry with its freshness stamp (see ``_stamps``). An unstamped entry
   (written by ``set``, or without a policy that needs stamps) is fresh until it
   expires. A stamped one is judged by ``_policy.verdict``: fresh; fresh but due
   for early recomputation (XFetch); stale but within ``stale_while_revalidate``;
   or expired.
2. Fresh: return it. Early or stale: return it, and start one background load
   (at most one per key and event loop, however many callers see it).
3. Missing or expired: load in a single flight, so this process runs the loader
   once however many callers wait. With ``lease``, the flight first takes a Redis
   lease, so the loader runs once across processes; a flight that finds the lease
   taken polls for the holder's value (and for the lease to come free), for at
   most the lease's length, then loads itself rather than fail.
4. A failing (or timed-out) loader reaches every waiter and stores nothing,
   unless an expired value is still within ``stale_if_error``: then that is served.
   While a key's loads keep failing, callers are not made to wait for the loader
   again and again: they get the stale value at once, and one background load per
   :data:`RETRY_EVERY` seconds tries again (the source is not hammered either).

Background loads are tasks the cache holds (one per key and event loop, forgotten
as they finish) and cancels on ``aclose()``; their failures are counted and logged,
never raised. They run in the key's flight like any load, so a caller that needs
the key meanwhile waits for that load instead of starting another.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._missing import MISSING
from ._policy import LoadPolicy, Verdict, verdict
from ._stamps import Stamped, conceal, reveal, unstamped

if TYPE_CHECKING:
    from .caches._interface import CacheInterface

__all__ = ["Loading"]

logger = logging.getLogger("stratacache")

RETRY_EVERY = 1.0
"""Seconds between loads of a key whose last load failed while stale-if-error serves it."""
_MAX_FAILING = 10_000  # keys remembered as failing, at most (the oldest are forgotten)
_FIRST_POLL = 0.005  # seconds between a lease waiter's first looks; doubles up to:
_MAX_POLL = 0.1
_SKIPPED: Any = object()  # a background flight found nothing left to do

_COUNTERS = (
    "loads",  # loader calls that returned
    "load_errors",  # loader calls that raised (timeouts included)
    "loader_timeouts",
    "stale_served",  # stale-while-revalidate answers
    "stale_if_error_served",
    "early_refreshes",  # background loads XFetch started
    "background_errors",
    "lease_waits",  # flights that found another process's lease and waited
    "lease_timeouts",  # ... and gave up waiting, loading themselves
)


class Loading:
    """The ``get_or_set`` machinery of one cache: flights, background loads, counters."""

    def __init__(self, cache: CacheInterface) -> None:
        self._cache = cache
        # One background load per key and event loop at most.
        self._background: dict[tuple[str, asyncio.AbstractEventLoop], asyncio.Task[None]] = {}
        self._counts: Counter[str] = Counter()
        self._warned: set[str] = set()
        # key -> when (stamp clock) the next load of a key whose last load failed may run
        self._failing: dict[str, float] = {}

    def stats(self) -> dict[str, int]:
        """The counters, plus loads in flight and in the background right now."""
        figures = {name: self._counts[name] for name in _COUNTERS}
        figures["in_flight"] = len(self._cache._flights)
        figures["background"] = len(self._background)
        figures["failing"] = len(self._failing)  # keys served stale while their loads fail
        return figures

    def cancel(self) -> None:
        """Cancel the background loads (the cache is closing)."""
        for task in list(self._background.values()):
            task.cancel()

    async def settle(
        self, key: str, found: Any, loader: Callable[[], Any], ttl: int, policy: LoadPolicy
    ) -> Any:
        """Answer a ``get_or_set`` given what its read found (stamps visible, or MISSING)."""
        cache = self._cache
        stale: Stamped | None = None
        if found is not MISSING:
            if type(found) is not Stamped:
                return found
            judged = verdict(found, cache._stamp_clock(), policy)
            if judged is Verdict.FRESH:
                return found.value
            if judged is Verdict.STALE:
                self._counts["stale_served"] += 1
            if judged is not Verdict.EXPIRED:
                self._start_background(key, loader, ttl, policy, found, judged)
                return found.value
            stale = found
            if key in self._failing:
                now = cache._stamp_clock()
                if now >= found.fresh_until + policy.stale_if_error:
                    del self._failing[key]  # beyond the window: callers wait and see errors
                else:
                    self._counts["stale_if_error_served"] += 1
                    if now >= self._failing[key]:
                        self._failing[key] = now + RETRY_EVERY
                        self._start_background(key, loader, ttl, policy, found, judged)
                    return found.value
        try:
            while True:
                result, led = await cache._flights.run(
                    key, lambda: self._load(key, loader, ttl, policy, replacing=None)
                )
                if result is not _SKIPPED:  # (a background flight this caller joined)
                    break
        except Exception as exc:
            if stale is None or cache._stamp_clock() >= stale.fresh_until + policy.stale_if_error:
                raise
            self._counts["stale_if_error_served"] += 1
            self._log_once(
                "stale_if_error", "serving a stale value: loading %r failed: %r", key, exc
            )
            if len(self._failing) >= _MAX_FAILING:
                del self._failing[next(iter(self._failing))]
            self._failing[key] = cache._stamp_clock() + RETRY_EVERY
            return stale.value
        return result if led else cache._copy_for_waiter(key, result)

    # -- loading -----------------------------------------------------------------

    async def _load(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: int,
        policy: LoadPolicy,
        *,
        replacing: Stamped | None,
    ) -> Any:
        """Inside the flight: look again, take the lease if asked, load and store.

        ``replacing`` is the entry a background load is to replace; if the key holds
        anything else by now (another process reloaded it, or it was invalidated),
        there is nothing left to do.
        """
        cache = self._cache
        found = await self._peek(key)
        if replacing is None:
            if self._usable(found):
                return unstamped(found)
        elif type(found) is not Stamped or found.fresh_until != replacing.fresh_until:
            return _SKIPPED
        token = secrets.token_hex(16)
        holding = False
        if policy.lease:
            held = await cache._acquire_lease(key, token, policy.lease)
            holding = held is True
            if held is False:  # another process is loading it
                if replacing is not None:
                    return _SKIPPED  # the holder reloads it
                waited = await self._await_holder(key, token, policy.lease)
                if waited is not MISSING:
                    return waited
                holding = True  # the lease came free and is ours now (or timed out)
        try:
            return await self._load_and_store(key, loader, ttl, policy)
        finally:
            if holding:
                await cache._release_lease(key, token)

    async def _await_holder(self, key: str, token: str, seconds: float) -> Any:
        """Wait for another process's load: its value, or the lease (then it is ours)."""
        self._counts["lease_waits"] += 1
        cache = self._cache
        deadline = time.monotonic() + seconds
        delay = _FIRST_POLL
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _MAX_POLL)
            found = await self._peek(key)
            if self._usable(found):
                return unstamped(found)
            if await cache._acquire_lease(key, token, seconds) is not False:
                return MISSING
        self._counts["lease_timeouts"] += 1
        self._log_once(
            "lease_timeouts",
            "waited %.1f s for another process to load %r; loading here",
            seconds,
            key,
        )
        return MISSING

    async def _peek(self, key: str) -> Any:
        """The key's entry, stamp included, without counting a hit or miss."""
        token = reveal()
        try:
            return await self._cache._recheck(key)
        finally:
            conceal(token)

    def _usable(self, found: Any) -> bool:
        """Whether a peeked entry may answer a caller that is loading."""
        if type(found) is Stamped:
            return bool(self._cache._stamp_clock() < found.fresh_until)
        return found is not MISSING

    async def _load_and_store(
        self, key: str, loader: Callable[[], Any], ttl: int, policy: LoadPolicy
    ) -> Any:
        cache = self._cache
        clock = cache._stamp_clock
        started = clock()
        try:
            result = loader()
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, policy.loader_timeout)
        except asyncio.TimeoutError as exc:  # TimeoutError itself from Python 3.11
            self._counts["load_errors"] += 1
            if policy.loader_timeout is None:  # the loader's own
                raise
            self._counts["loader_timeouts"] += 1
            raise TimeoutError(
                f"the loader for {key!r} did not finish within loader_timeout="
                f"{policy.loader_timeout:g} s"
            ) from exc
        except Exception:
            self._counts["load_errors"] += 1
            raise
        self._counts["loads"] += 1
        self._failing.pop(key, None)
        fresh_for = policy.stored_ttl(ttl)
        if ttl and policy.stamps:
            now = clock()
            stamped = Stamped(result, now + fresh_for, max(0.0, now - started))
            await cache.set(key, stamped, math.ceil(fresh_for + policy.grace), tags=policy.tags)
        else:
            await cache.set(key, result, max(1, round(fresh_for)) if ttl else 0, tags=policy.tags)
        return result

    # -- background loads --------------------------------------------------------

    def _start_background(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: int,
        policy: LoadPolicy,
        replacing: Stamped,
        judged: Verdict,
    ) -> None:
        loop = asyncio.get_running_loop()
        slot = (key, loop)
        if slot in self._background:
            return  # this loop is reloading the key already
        if judged is Verdict.EARLY:
            self._counts["early_refreshes"] += 1
        task = loop.create_task(self._background_load(key, loader, ttl, policy, replacing))
        self._background[slot] = task
        task.add_done_callback(lambda _: self._background.pop(slot, None))

    async def _background_load(
        self, key: str, loader: Callable[[], Any], ttl: int, policy: LoadPolicy, replacing: Stamped
    ) -> None:
        try:
            await self._cache._flights.run(
                key, lambda: self._load(key, loader, ttl, policy, replacing=replacing)
            )
        except Exception as exc:  # the stale value stays; the next caller may try again
            self._counts["background_errors"] += 1
            self._log_once("background_errors", "background load of %r failed: %r", key, exc)

    def _log_once(self, kind: str, message: str, *args: Any) -> None:
        """Log the first event of a kind at WARNING, the rest at DEBUG."""
        log = logger.debug if kind in self._warned else logger.warning
        self._warned.add(kind)
        log("stratacache: " + message, *args)
