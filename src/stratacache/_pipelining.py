"""Auto-pipelining: commands sent while others are in flight go out together.

On one event loop, most of what a Redis command costs is Python work per round trip
(a connection from the pool, a write, a wakeup to read), not Redis's. So once a few
commands are in flight, the next ones wait in a queue and leave as one pipeline,
in one write, as soon as a connection is free: 200 concurrent tasks doing SET and
GET measured 17,000 commands/s sent one by one and 52,000/s with this (2 cores,
Redis on loopback). A caller alone never waits: with fewer than ``direct`` commands
in flight, its command goes out at once, as redis-py would send it.

Written here because redis-py pipelines only what a caller puts in one pipeline
itself (ioredis calls this ``enableAutoPipelining``).

Replies are matched to callers by position in the pipeline, never by arrival, so a
cancelled caller cannot receive another caller's reply: a caller cancelled while
queued has its command dropped; one cancelled while its pipeline is out has its
reply discarded. The pipelines run in tasks of their own, so cancelling a caller
never interrupts a pipeline that carries other callers' commands.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ._slots import Slots

__all__ = ["AutoPipeline"]

MAX_PIPELINE = 1_000
"""Commands per pipeline at most: the rest wait for the next (bounds a reply's size)."""

DRAIN_SECONDS = 2.0
"""How long ``aclose`` lets commands already asked for finish before failing them."""

Command = tuple[Any, ...]
_Entry = tuple[tuple[Command, ...], "asyncio.Future[Any]", bool]
"""Queued: a caller's commands, the future for its reply, whether it wants a list."""


class AutoPipeline:
    """Sends commands at once while fewer than ``direct`` sends are in flight, else queues them.

    Uses at most ``direct`` connections of the client's pool at a time: a send that
    finishes hands its place to the commands queued meanwhile, as one pipeline.
    ``counts["pipelined"]`` counts the commands that waited and went out that way.
    """

    def __init__(self, client: Any, direct: int, counts: Counter[str]) -> None:
        self._client = client
        self._slots = Slots(direct)
        self._counts = counts
        self._queue: list[_Entry] = []
        self._sending: dict[asyncio.Task[None], list[_Entry]] = {}
        self._closed = False

    async def call(self, *args: Any) -> Any:
        """``execute_command(*args)``: the reply, or the redis-py exception it raised."""
        slots = self._slots
        if slots.busy < slots.limit:  # the common case: sent at once, as redis-py would
            slots.busy += 1
            try:
                return await self._client.execute_command(*args)
            finally:
                self._carry_on()
        return await self._queued((args,), many=False)

    async def call_many(self, commands: Sequence[Command]) -> list[Any]:
        """Several commands, one round trip: their replies, or the first error raised."""
        slots = self._slots
        if slots.busy < slots.limit:
            slots.busy += 1
            try:
                pipe = self._client.pipeline(transaction=False)
                for args in commands:
                    pipe.execute_command(*args)
                replies: list[Any] = await pipe.execute()
                return replies
            finally:
                self._carry_on()
        return await self._queued(tuple(commands), many=True)  # type: ignore[no-any-return]

    def _queued(self, commands: tuple[Command, ...], *, many: bool) -> asyncio.Future[Any]:
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((commands, reply, many))
        return reply

    def _carry_on(self) -> None:
        """A send is done: its place goes to what queued meanwhile."""
        queue = self._queue
        if not queue or self._closed:
            self._slots.release()
            return
        size = taken = 0
        while taken < len(queue) and size < MAX_PIPELINE:
            size += len(queue[taken][0])
            taken += 1
        batch = queue[:taken]
        del queue[:taken]
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending[task] = batch
        task.add_done_callback(self._sent)

    async def _send(self, batch: list[_Entry]) -> None:
        try:
            live = [entry for entry in batch if not entry[1].done()]
            if not live:  # every caller was cancelled while queued
                return
            pipe = self._client.pipeline(transaction=False)
            for commands, _, _ in live:
                for args in commands:
                    pipe.execute_command(*args)
            self._counts["pipelined"] += sum(len(commands) for commands, _, _ in live)
            try:
                replies = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # the connection failed: every command with it
                _fail(live, exc)
                return
            _answer(live, replies)
        finally:
            self._carry_on()

    def _sent(self, task: asyncio.Task[None]) -> None:
        del self._sending[task]

    async def aclose(self) -> None:
        """Let the commands already asked for finish (for up to 2 s), then fail the rest.

        Closing the client under a command in flight would have redis-py reconnect
        for it, on a pool nobody closes any more.
        """
        await self._slots.drained(DRAIN_SECONDS)
        self._closed = True
        sending = list(self._sending.items())
        for task, _ in sending:
            task.cancel()
        await asyncio.gather(*(task for task, _ in sending), return_exceptions=True)
        for _, batch in [*sending, (None, self._queue)]:  # (a task cancelled unstarted never ran)
            _fail(batch, _closed())
        self._queue.clear()


def _answer(live: list[_Entry], replies: list[Any]) -> None:
    """Hand each caller its replies, by position: an error reply fails only its caller."""
    start = 0
    for commands, reply, many in live:
        end = start + len(commands)
        if not reply.done():  # (done: its caller was cancelled while the pipeline was out)
            mine = replies[start:end]
            error = next((value for value in mine if isinstance(value, Exception)), None)
            if error is not None:
                reply.set_exception(error)
            else:
                reply.set_result(mine if many else mine[0])
        start = end


def _fail(queued: list[_Entry], exc: Exception) -> None:
    for _, reply, _ in queued:
        if not reply.done():
            reply.set_exception(exc)


def _closed() -> Exception:
    from redis.exceptions import ConnectionError as RedisConnectionError

    return RedisConnectionError("the Redis client was closed while the command waited")
