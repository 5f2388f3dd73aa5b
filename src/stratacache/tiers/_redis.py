"""The Redis tier: bytes in, bytes out, on a single node, Sentinel or Cluster.

Every command runs inside :func:`map_redis_errors`, so callers see only
:class:`InfrastructureError` for a failing server. Nothing here decides policy
(fail-safe, breaker, stats): the caches above do.

**Keys.** The cache passes full keys (its prefix included). Internal keys — tag
indexes — live under the same prefix but contain a NUL byte, which user keys never
do: ``clear()`` removes them with everything else, and pattern invalidation skips
them, so a user pattern can never corrupt an index.

**Tags, cluster-safe.** Each tag has a Redis set ``<prefix>\\0tag:<tag>`` of the keys
written with it, added *before* the value is written, with a TTL never shorter than
its longest-lived member. A tagged value is stored in an envelope that carries its
tags. ``invalidate_tags`` walks the set with SSCAN, reads the members (MGET; split
by slot on a Cluster), removes only those whose envelope still names the tag (an
overwrite without the tag keeps its value), and SREMs what it processed, so a
member added meanwhile survives for the next invalidation. Every command touches one
key, or several split by slot, so no cross-slot command is ever needed. Cost: one
SADD script per tag per tagged write; invalidation is O(members).

**Patterns and clear** use SCAN + UNLINK in batches of ``SCAN_BATCH``, on every
primary of a Cluster; never KEYS, FLUSHDB or FLUSHALL.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import msgpack

from .._keys import escape_glob
from .._pipelining import AutoPipeline
from .._redis_errors import map_redis_errors, translate
from ..errors import InfrastructureError

__all__ = ["RedisTier"]

SCAN_BATCH = 500
SCAN_PAGE_HINT = 100  # SCAN's COUNT when browsing: the least work asked of one call
SCAN_PAGE_MAX_HINT = 5000  # ... and the most (patterns that match little grow it)
SCAN_PAGE_CALLS = 64  # the most SCAN calls one page of browsing makes
_ENVELOPE = 0x05  # a tagged value: 0x05, 4-byte tag-block length, tag block, value
_TAG_INFIX = "\x00tag:"

# Add a member to a tag set and keep the set alive at least as long as the member.
_TAG_ADD = """
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl == 0 then redis.call('PERSIST', KEYS[1]) return 1 end
if existed == 0 then redis.call('PEXPIRE', KEYS[1], ttl) return 1 end
local current = redis.call('PTTL', KEYS[1])
if current >= 0 and current < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

# A counter started at ARGV[1] (persistent) unless it exists, and its value: one
# atomic step, so that callers racing to start it all read the first one's start.
_START_COUNTER = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""

# INCRBY that gives a new key the default TTL and keeps an existing key's TTL. A
# tagged counter is an envelope around decimal text: the script unwraps it, lets
# INCRBY do the exact 64-bit arithmetic (Lua numbers are doubles), and re-wraps it,
# all in one atomic step on one key. Errors (not an integer, overflow) restore the
# value and are returned to the caller.
_INCR = """
local data = redis.call('GET', KEYS[1])
if not data then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  return redis.call('GET', KEYS[1])
end
if string.byte(data, 1) ~= 5 then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  return redis.call('GET', KEYS[1])
end
local size = struct.unpack('>I4', data, 2)
local head = string.sub(data, 1, 5 + size)
redis.call('SET', KEYS[1], string.sub(data, 6 + size), 'KEEPTTL')
local result = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(result) == 'table' and result.err then
  redis.call('SET', KEYS[1], data, 'KEEPTTL')
  return result
end
local text = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], head .. text, 'KEEPTTL')
return text
"""


def _user_keys(raw: Iterable[bytes | str], start: int) -> list[str]:
    """Decode SCAN replies, leaving out internal keys (NUL) and keys that are not UTF-8."""
    keys = []
    for key in raw:
        data = key if isinstance(key, bytes) else key.encode()
        if b"\x00" in data[start:]:
            continue
        try:
            keys.append(data.decode())
        except UnicodeDecodeError:  # written by something else: no cache key is like it
            continue
    return keys


def _parse_cursor(cursor: str, *, cluster: bool) -> tuple[int, int]:
    """(primary index, node cursor) of a :meth:`RedisTier.scan_page` cursor."""
    if cursor == "0":
        return 0, 0
    node_text, _, position_text = cursor.rpartition("-") if cluster else ("0", "", cursor)
    if not (node_text.isdigit() and position_text.isdigit()) or not node_text.isascii():
        raise ValueError("malformed cursor")
    if not position_text.isascii() or len(position_text) > 20 or len(node_text) > 5:
        raise ValueError("malformed cursor")
    position = int(position_text)
    if position >= 2**64:
        raise ValueError("malformed cursor")
    return int(node_text), position


def _format_cursor(node: int, position: int, *, cluster: bool) -> str:
    return f"{node}-{position}" if cluster else str(position)


def wrap_tags(data: bytes, tags: Iterable[str]) -> bytes:
    """Put ``data`` in an envelope naming its tags."""
    block: bytes = msgpack.packb(sorted(tags))
    return bytes((_ENVELOPE,)) + len(block).to_bytes(4, "big") + block + data


def unwrap(data: bytes) -> tuple[bytes, frozenset[str]]:
    """Split stored bytes into (value bytes, tags)."""
    if not data or data[0] != _ENVELOPE:
        return data, frozenset()
    size = int.from_bytes(data[1:5], "big")
    try:
        tags = frozenset(msgpack.unpackb(data[5 : 5 + size]))
    except Exception:  # corrupt envelope: the value decoder will report it
        return data, frozenset()
    return data[5 + size :], tags


class RedisTier:
    """Bytes under full keys in Redis, with TTLs in seconds (0 = persistent)."""

    def __init__(
        self, client: Any, *, prefix: str, pipeline_after: int, counts: Counter[str]
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.is_cluster = callable(getattr(client, "get_primaries", None))
        # The commands of every read and write (GET, SET, and GET + PTTL for a memory
        # tier in front) are pipelined under load (see _pipelining); the rest are
        # sent by the client as they come.
        self.commands = AutoPipeline(client, pipeline_after, counts)

    def tag_key(self, tag: str) -> str:
        return f"{self.prefix}{_TAG_INFIX}{tag}"

    # -- reads -----------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        try:
            data: bytes | None = await self.commands.call("GET", key)
        except Exception as exc:  # the hot path: no `with` block (see translate)
            raise translate(exc, "GET") from exc
        if data is None or data[0] != _ENVELOPE:
            return data
        return unwrap(data)[0]

    async def get_many(self, keys: Sequence[str | bytes]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            found = await self._mget(keys if type(keys) is list else list(keys))
        except Exception as exc:
            raise translate(exc, "MGET") from exc
        envelope = _ENVELOPE  # a local: this test runs once a key
        return [data if not data or data[0] != envelope else unwrap(data)[0] for data in found]

    async def get_with_ttl(
        self, keys: Sequence[str]
    ) -> list[tuple[bytes | None, int, frozenset[str]]]:
        """(value bytes or None, PTTL in ms: -1 persistent, -2 absent, tags) per key."""
        if not keys:
            return []
        commands: list[tuple[str, str]] = []
        for key in keys:
            commands += (("GET", key), ("PTTL", key))
        with map_redis_errors("GET"):
            replies = await self.commands.call_many(commands)
        found = []
        for data, ttl in zip(replies[::2], replies[1::2], strict=True):
            value, tags = (None, frozenset[str]()) if data is None else unwrap(data)
            found.append((value, int(ttl), tags))
        return found

    async def exists(self, key: str) -> bool:
        with map_redis_errors("EXISTS"):
            return bool(await self.commands.call("EXISTS", key))

    async def ttl(self, key: str) -> int | None:
        """Seconds left, rounded up; 0 if persistent; None if absent."""
        with map_redis_errors("PTTL"):
            millis = await self.commands.call("PTTL", key)
        if millis == -2:
            return None
        return 0 if millis == -1 else max(1, math.ceil(millis / 1000))

    # -- writes ----------------------------------------------------------------

    async def set(
        self, key: str, data: bytes, ttl: int, tags: frozenset[str] = frozenset()
    ) -> None:
        if tags:
            await self._index(key, tags, ttl)
            data = wrap_tags(data, tags)
        try:
            if ttl:
                await self.commands.call("SET", key, data, "PX", ttl * 1000)
            else:
                await self.commands.call("SET", key, data)
        except Exception as exc:
            raise translate(exc, "SET") from exc

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None:
        expiry = ("PX", ttl * 1000) if ttl else ()
        with map_redis_errors("SET"):
            await self.commands.call_many([("SET", key, data, *expiry) for key, data in items])

    async def _index(self, key: str, tags: Iterable[str], ttl: int) -> None:
        with map_redis_errors("tag index"):
            for tag in tags:
                await self.client.eval(_TAG_ADD, 1, self.tag_key(tag), key, ttl * 1000)

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        with map_redis_errors("UNLINK"):
            if self.is_cluster and len(keys) > 1:  # redis-py splits them by slot
                return int(await self.client.unlink(*keys))
            return int(await self.commands.call("UNLINK", *keys))

    async def expire(self, key: str, ttl: int) -> bool:
        with map_redis_errors("GET"):
            data = await self.client.get(key)
        if data is None:
            return False
        _, tags = unwrap(data)
        if tags:  # keep the tag sets alive as long as the entry
            await self._index(key, tags, ttl)
        with map_redis_errors("PEXPIRE"):
            if ttl:
                return bool(await self.client.pexpire(key, ttl * 1000))
            await self.client.persist(key)
            return bool(await self.client.exists(key))

    async def incr(self, key: str, delta: int, ttl: int) -> int:
        """Atomic INCRBY with our TTL rules, tagged counters included.

        Raises ``OverflowError`` if the result would leave the signed 64-bit range
        and ``TypeError`` if the value is not an integer: Redis's error replies
        here are the caller's mistake, not an infrastructure failure.
        """
        from redis.exceptions import ResponseError

        try:
            with map_redis_errors("INCRBY"):
                return int(await self.client.eval(_INCR, 1, key, delta, ttl * 1000))
        except InfrastructureError as exc:
            if not isinstance(exc.__cause__, ResponseError):
                raise
            if "overflow" in str(exc.__cause__):
                raise OverflowError(str(exc.__cause__)) from None
            raise TypeError(str(exc.__cause__)) from None

    async def start_counter(self, key: str, start: int) -> int:
        """Atomically: the counter under ``key``, set to ``start`` (persistent) if absent.

        Raises ``TypeError`` if the value there is not a decimal integer.
        """
        with map_redis_errors("SET NX"):
            data = await self.client.eval(_START_COUNTER, 1, key, start)
        try:
            return int(data)
        except ValueError:
            raise TypeError("a value") from None

    # -- invalidation ----------------------------------------------------------

    async def delete_matching(self, glob: str) -> int:
        """UNLINK every user key of this prefix whose suffix matches ``glob``."""
        return await self._scan_unlink(escape_glob(self.prefix) + glob, skip_internal=True)

    async def clear(self) -> int:
        """UNLINK every key under the prefix, internal ones included."""
        return await self._scan_unlink(escape_glob(self.prefix) + "*", skip_internal=False)

    async def scan_page(self, glob: str, cursor: str, count: int) -> tuple[str, list[str]]:
        """One page of user keys of this prefix matching ``glob``: (next cursor, full keys).

        ``cursor`` is ``"0"`` to start, else what the previous page returned; ``"0"``
        comes back when the scan is complete. On a Cluster every primary is walked
        in turn (by name), and the cursor holds the node's index and its own cursor.
        A page holds at most ``count`` keys (unless one hash bucket alone holds
        more matches), and costs at most ``SCAN_PAGE_CALLS`` round trips, so a
        page of a sparse pattern may hold few keys, or none, before the scan ends.
        SCAN's COUNT starts at ``count`` (at least ``SCAN_PAGE_HINT``), doubles
        while matches are sparse, and a reply with more matches than the page has
        room for is asked again from the same cursor with a smaller COUNT.
        Internal keys (with NUL) and keys that are not UTF-8 are skipped. Raises
        ``ValueError`` for a malformed cursor.
        """
        node, position = _parse_cursor(cursor, cluster=self.is_cluster)
        nodes: list[Any] = []
        if self.is_cluster:
            nodes = sorted(self.client.get_primaries(), key=lambda primary: primary.name)
            if node >= len(nodes):
                raise ValueError("the cluster has fewer primaries than this cursor names")
        match = escape_glob(self.prefix) + glob
        start = len(self.prefix.encode())
        found: list[str] = []
        seen: set[str] = set()
        hint = max(count, SCAN_PAGE_HINT)
        with map_redis_errors("SCAN"):
            for _ in range(SCAN_PAGE_CALLS):
                if nodes:
                    target = nodes[node]
                    cursors, raw = await self.client.scan(
                        position, match=match, count=hint, target_nodes=target
                    )
                    following = int(cursors[target.name])
                else:
                    following, raw = await self.client.scan(position, match=match, count=hint)
                batch = [key for key in _user_keys(raw, start) if key not in seen]
                room = count - len(found)
                if len(batch) > room:
                    if hint > 1:  # rescan the same cursor over fewer buckets
                        hint = max(1, hint * room // len(batch))
                        continue
                    if found:  # these come first on the next page
                        break
                found += batch
                seen.update(batch)
                position = int(following)
                if position == 0:
                    if node + 1 >= max(1, len(nodes)):
                        return "0", found
                    node += 1
                if len(found) >= count:
                    break
                if len(batch) * 4 < hint:  # sparse matches: cover more buckets per call
                    hint = min(hint * 2, SCAN_PAGE_MAX_HINT)
                else:
                    hint = max(count - len(found), SCAN_PAGE_HINT)
        return _format_cursor(node, position, cluster=self.is_cluster), found

    async def invalidate_tags(self, tags: Iterable[str]) -> int:
        removed = 0
        for tag in tags:
            removed += await self._invalidate_tag(tag)
        return removed

    async def _invalidate_tag(self, tag: str) -> int:
        index = self.tag_key(tag)
        removed = 0
        with map_redis_errors("tag invalidation"):
            cursor = 0
            while True:
                cursor, members = await self.client.sscan(index, cursor, count=SCAN_BATCH)
                if members:
                    keys = [m.decode() if isinstance(m, bytes) else m for m in members]
                    stored = await self._mget(keys)
                    doomed = [
                        key
                        for key, data in zip(keys, stored, strict=True)
                        if data is not None and tag in unwrap(data)[1]
                    ]
                    if doomed:
                        removed += int(await self.client.unlink(*doomed))
                    await self.client.srem(index, *members)
                if not cursor:
                    return removed

    async def _mget(self, keys: list[str | bytes]) -> list[bytes | None]:
        """Raw MGET (split by slot on a Cluster, else pipelined); callers map the errors."""
        if self.is_cluster:
            return list(await self.client.mget_nonatomic(keys))
        found: list[bytes | None] = await self.commands.call("MGET", *keys)
        return found

    async def _scan_unlink(self, match: str, *, skip_internal: bool) -> int:
        start = len(self.prefix.encode())
        removed = 0
        batch: list[bytes] = []
        with map_redis_errors("SCAN"):
            async for key in self.client.scan_iter(match=match, count=SCAN_BATCH):
                if skip_internal and b"\x00" in key[start:]:
                    continue
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    removed += int(await self.client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(await self.client.unlink(*batch))
        return removed

    async def aclose(self) -> None:
        await self.commands.aclose()
        with map_redis_errors("close"):
            await self.client.aclose()
            # A Sentinel-managed client also holds connections to the sentinels.
            pool = getattr(self.client, "connection_pool", None)
            manager = getattr(pool, "sentinel_manager", None)
            for sentinel in getattr(manager, "sentinels", ()):
                await sentinel.aclose()
