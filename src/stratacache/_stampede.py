"""Single-flight: concurrent loads of one key share one loader call.

A flight is keyed by (key, event loop): tasks on one loop share a future, while
threads running their own loops never await a future of another loop. The map
holds only flights in progress, so it is bounded by the number of keys being
loaded right now and is empty when the cache is idle.

If the leader is cancelled, its waiters are not: one of them takes over the load.
If the loader raises, every waiter receives that error and nothing is cached, so
the next call tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["SingleFlight"]


class _Abandoned(Exception):
    """The leader was cancelled before finishing; a waiter should lead instead."""


class SingleFlight(Generic[T]):
    """Runs at most one ``load()`` per key at a time on each event loop."""

    def __init__(self) -> None:
        self._flights: dict[tuple[Hashable, asyncio.AbstractEventLoop], asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Return ``(result, led)``; ``led`` is True for the one caller that loaded."""
        loop = asyncio.get_running_loop()
        flight_key = (key, loop)
        while (flight := self._flights.get(flight_key)) is not None:
            try:
                return await asyncio.shield(flight), False
            except _Abandoned:
                continue
        flight = loop.create_future()
        self._flights[flight_key] = flight
        try:
            result = await load()
        except asyncio.CancelledError:
            _fail(flight, _Abandoned())
            raise
        except BaseException as exc:
            _fail(flight, exc)
            raise
        finally:
            del self._flights[flight_key]
        flight.set_result(result)
        return result, True


def _fail(flight: asyncio.Future[T], exc: BaseException) -> None:
    flight.set_exception(exc)
    flight.exception()  # mark it retrieved: a flight nobody waited on is not an error
