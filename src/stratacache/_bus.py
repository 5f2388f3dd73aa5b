"""The invalidation bus: every process hears every other process's invalidations.

Each namespace has one Redis pub/sub channel. A process publishes every mutation it
makes (a key, keys, a pattern, tags, clear) and applies what others publish to its
own memory tier, so a value changed in one process stops being served from another
process's memory within the time a PUBLISH takes to arrive.

Pub/sub delivers at most once: a message sent while a subscriber is disconnected is
gone. So whenever the subscription is lost, the memory tier is flushed (it may have
missed anything), and flushed again once the subscription is restored (anything may
have changed meanwhile). Reconnection backs off from ``reconnect_delay`` up to
``max_reconnect_delay``, forever, until :meth:`aclose`.

Messages are msgpack ``[origin, kind, items]``; a process ignores its own origin.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import msgpack

__all__ = ["InvalidationBus", "Kind"]

logger = logging.getLogger("stratacache")

Kind = Literal["keys", "pattern", "tags", "clear"]
Apply = Callable[[str, list[str]], Awaitable[None]]
Flush = Callable[[], Awaitable[None]]
_KINDS = frozenset({"keys", "pattern", "tags", "clear"})


class InvalidationBus:
    """Publishes this process's invalidations and applies everyone else's."""

    def __init__(
        self,
        client: Any,
        channel: str,
        *,
        apply: Apply,
        flush: Flush,
        reconnect_delay: float = 0.05,
        max_reconnect_delay: float = 1.0,
    ) -> None:
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self.received = 0
        self.published = 0
        self.losses = 0
        self._client = client
        self._apply = apply
        self._flush = flush
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """True while the subscription is live."""
        return self._subscribed.is_set()

    async def start(self, timeout: float = 1.0) -> bool:
        """Start listening; True once subscribed (False if not within ``timeout``)."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name=f"stratacache-bus:{self.channel}")
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def publish(self, kind: Kind, items: Sequence[str] = ()) -> None:
        """Tell every other process; raises the client's error if Redis fails."""
        message = msgpack.packb([self.origin, kind, list(items)])
        await self._client.publish(self.channel, message)
        self.published += 1

    async def aclose(self) -> None:
        """Stop listening (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._subscribed.clear()

    async def _listen(self) -> None:
        delay = self._reconnect_delay
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await self._flush()  # whatever happened while we were not listening
                self._subscribed.set()
                delay = self._reconnect_delay
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        await self._handle(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the subscription is lost: forget what we may have missed
                self._lost(exc)
                await self._flush()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_reconnect_delay)
            finally:
                await asyncio.shield(_close_quietly(pubsub))

    def _lost(self, exc: BaseException) -> None:
        self._subscribed.clear()
        self.losses += 1
        log = logger.warning if self.losses == 1 else logger.debug
        log(
            "stratacache: invalidation channel %r lost (%s); memory tier flushed", self.channel, exc
        )

    async def _handle(self, data: bytes) -> None:
        try:
            origin, kind, items = msgpack.unpackb(data)
        except Exception:  # not ours: ignore rather than die
            logger.debug("stratacache: ignored a malformed message on %r", self.channel)
            return
        if origin == self.origin or kind not in _KINDS:
            return
        self.received += 1
        await self._apply(kind, [str(item) for item in items])


async def _close_quietly(pubsub: Any) -> None:
    try:
        await pubsub.aclose()
    except Exception as exc:  # the connection is already gone
        logger.debug("stratacache: closing a pub/sub connection failed: %s", exc)
