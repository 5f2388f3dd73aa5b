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
Keys invalidated while a ``keys`` message of the same event loop is out wait for it
and leave together, in the next one (at most ``MAX_KEYS`` a message): under a burst
of writes, every process in the fleet reads a few messages instead of one a write.
A writer still returns only once its keys are published.

On a Redis Cluster, a PUBLISH on any node reaches the subscribers of every node, so
the subscription lives on one node and moves to the next when that node is lost
(the client's slot map may name a dead node until the failover completes).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import msgpack

__all__ = ["MAX_KEYS", "InvalidationBus", "Kind", "State"]

MAX_KEYS = 1_000
"""Keys per message at most: a larger batch leaves as several messages."""

logger = logging.getLogger("stratacache")

Kind = Literal["keys", "pattern", "tags", "clear"]
State = Literal["stopped", "subscribing", "subscribed", "lost"]
Apply = Callable[[str, list[str]], Awaitable[None]]
Flush = Callable[[], Awaitable[None]]
_KINDS = frozenset({"keys", "pattern", "tags", "clear"})


class InvalidationBus:
    """Publishes this process's invalidations and applies everyone else's.

    Args:
        client: returns the redis-py client of the running event loop (a cache
            shared by threads with their own loops has one client per loop).
        channel: the namespace's channel.
        apply / flush: what a message, and a loss, do to the memory tier.
        publish_with: sends ``PUBLISH channel message`` to a single node (default:
            the client's own ``publish``; a cache passes its auto-pipeline). On a
            Cluster the bus picks the node itself, through the client.

    The listener runs as a task in one event loop. If that loop ends (a thread's
    ``asyncio.run`` returning), the next call to :meth:`ensure_started` from any
    other loop starts it again there; meanwhile :attr:`serving` is False.
    """

    def __init__(
        self,
        client: Callable[[], Any],
        channel: str,
        *,
        apply: Apply,
        flush: Flush,
        reconnect_delay: float = 0.05,
        max_reconnect_delay: float = 1.0,
        publish_with: Callable[[str, bytes], Awaitable[object]] | None = None,
    ) -> None:
        self.channel = channel
        self._publish_with = publish_with
        self.origin = uuid.uuid4().hex
        self.received = 0
        self.published = 0
        self.losses = 0
        self.state: State = "stopped"
        self._client = client
        self._apply = apply
        self._flush = flush
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._lock = threading.Lock()  # loops in several threads may start it at once
        self._task: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Event | None = None
        self._node = 0  # on a Cluster: which node to subscribe (and publish) through
        # Per event loop with a keys message out: the keys waiting for the next one.
        self._keys_out: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waiting | None]
        self._keys_out = weakref.WeakKeyDictionary()
        self._senders: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """True while the subscription is live."""
        return self.state == "subscribed"

    @property
    def serving(self) -> bool:
        """Whether a memory tier may answer: subscribed, or Redis lost (fail-safe).

        Not while stopped or still subscribing: invalidations may have been missed.
        """
        return self.state == "subscribed" or self.state == "lost"

    def ensure_started(self) -> asyncio.Event:
        """Start listening in the running loop unless a listener already runs."""
        with self._lock:
            if self._task is None or self._task.done():
                self._subscribed = asyncio.Event()
                self.state = "subscribing"
                self._task = asyncio.get_running_loop().create_task(
                    self._listen(self._subscribed), name=f"stratacache-bus:{self.channel}"
                )
            assert self._subscribed is not None
            return self._subscribed

    async def start(self, timeout: float = 1.0) -> bool:
        """Start listening; True once subscribed (False if not within ``timeout``)."""
        subscribed = self.ensure_started()
        if self._task is not None and self._task.get_loop() is not asyncio.get_running_loop():
            return self.connected  # listening in another thread's loop: cannot wait on it
        try:
            await asyncio.wait_for(subscribed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def publish(self, kind: Kind, items: Sequence[str] = ()) -> None:
        """Tell every other process; raises the client's error if Redis fails.

        Keys wait for the keys message already out on this loop, if any, and leave
        in the next (see the module's docstring).
        """
        if kind != "keys":
            await self._send(kind, items)
            return
        loop = asyncio.get_running_loop()
        if loop not in self._keys_out:
            self._keys_out[loop] = None
            try:
                await self._send("keys", items)
            finally:
                self._send_waiting(loop)
            return
        waiting = self._keys_out[loop]
        if waiting is None:
            waiting = self._keys_out[loop] = _Waiting(loop.create_future())
        waiting.keys.update(dict.fromkeys(items))
        await asyncio.shield(waiting.sent)

    def _send_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        """A keys message is done: send the keys that waited for it, if any."""
        waiting = self._keys_out.pop(loop, None)
        if waiting is None:
            return
        self._keys_out[loop] = None  # out again
        task = loop.create_task(self._send_batch(loop, waiting))
        self._senders.add(task)
        task.add_done_callback(self._senders.discard)

    async def _send_batch(self, loop: asyncio.AbstractEventLoop, waiting: _Waiting) -> None:
        keys = list(waiting.keys)
        try:
            for start in range(0, len(keys), MAX_KEYS):
                await self._send("keys", keys[start : start + MAX_KEYS])
        except asyncio.CancelledError:  # the loop is ending: so is every waiter
            waiting.sent.cancel()
            following = self._keys_out.pop(loop, None)
            if following is not None:
                following.sent.cancel()
            raise
        except Exception as exc:
            waiting.sent.set_exception(exc)
            waiting.sent.exception()  # retrieved: its waiters may all have been cancelled
        else:
            waiting.sent.set_result(None)
        self._send_waiting(loop)

    async def _send(self, kind: Kind, items: Sequence[str]) -> None:
        """One message. On a Cluster, PUBLISH reaches every node from any node: it
        goes through one node at a time, the next one if that fails."""
        message = msgpack.packb([self.origin, kind, list(items)])
        client = self._client()
        if not _is_cluster(client):
            send = self._publish_with or client.publish
            await send(self.channel, message)
        else:
            nodes = client.get_nodes()
            for attempt in range(len(nodes)):
                node = nodes[(self._node + attempt) % len(nodes)]
                try:
                    await client.publish(self.channel, message, target_nodes=node)
                    break
                except Exception:
                    if attempt == len(nodes) - 1:
                        raise
            self._node += attempt
        self.published += 1

    async def aclose(self) -> None:
        """Stop listening (idempotent)."""
        with self._lock:
            task, self._task = self._task, None
        if task is None:
            return
        if task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif not task.get_loop().is_closed():
            task.get_loop().call_soon_threadsafe(task.cancel)
        self.state = "stopped"

    def _subscription(self) -> Any:
        client = self._client()
        if not _is_cluster(client):
            return client.pubsub()
        # Any node hears every PUBLISH; after a loss, try the next one (the lost
        # node may be down while the client's slot map still names it).
        nodes = client.get_nodes()
        return client.pubsub(node=nodes[self._node % len(nodes)])

    async def _listen(self, subscribed: asyncio.Event) -> None:
        delay = self._reconnect_delay
        try:
            while True:
                pubsub = self._subscription()
                try:
                    await pubsub.subscribe(self.channel)
                    await _confirmed(pubsub)  # before it, PUBLISHes may not reach us
                    await self._flush()  # whatever happened while we were not listening
                    self.state = "subscribed"
                    subscribed.set()
                    delay = self._reconnect_delay
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None:
                            await self._handle(message["data"])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self.state == "subscribed":  # lost: forget what we may have missed
                        await self._flush()
                    # (never subscribed: nothing was served as coherent, and the flush
                    # on subscribing covers the rest; fail-safe writes stay meanwhile)
                    self._lost(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_reconnect_delay)
                finally:
                    await asyncio.shield(_close_quietly(pubsub))
        finally:  # stopped (aclose, or the loop is ending): nobody listens any more
            self.state = "stopped"
            subscribed.clear()

    def _lost(self, exc: BaseException) -> None:
        self.state = "lost"
        self.losses += 1
        self._node += 1
        log = logger.warning if self.losses == 1 else logger.debug
        log(
            "stratacache: invalidation channel %r lost (%s); the memory tier answers only "
            "while Redis is down until it is back",
            self.channel,
            exc,
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


class _Waiting:
    """Keys waiting for the next keys message of a loop, and its outcome."""

    __slots__ = ("keys", "sent")

    def __init__(self, sent: asyncio.Future[None]) -> None:
        self.keys: dict[str, None] = {}  # ordered, without repeats
        self.sent = sent


async def _confirmed(pubsub: Any, timeout: float = 5.0) -> None:
    """Wait for the server's reply to SUBSCRIBE (redis-py only sends the command)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        reply = await pubsub.get_message(timeout=0.1)
        if reply is not None and reply["type"] in ("subscribe", b"subscribe"):
            return
    raise TimeoutError(f"no reply to SUBSCRIBE within {timeout:g} s")


def _is_cluster(client: Any) -> bool:
    return callable(getattr(client, "get_primaries", None))


async def _close_quietly(pubsub: Any) -> None:
    try:
        await pubsub.aclose()
    except Exception as exc:  # the connection is already gone
        logger.debug("stratacache: closing a pub/sub connection failed: %s", exc)
