"""A load lease in Redis: at most one process loads a key at a time.

``SET <lease key> <token> NX PX <ms>`` takes the lease; it ends on its own after
the given time, so a holder that dies never blocks others for longer. Release
deletes the key only if it still holds our token (one Lua step), so a holder that
overran its lease never releases the next holder's.

The lease key is ``<prefix>\\0lease:<key>``: under the cache's prefix, so
``clear()`` removes it, and containing NUL, which user keys never do, so pattern
invalidation and key listings skip it (see ``tiers/_redis.py``). One key per
command: it works on a Cluster. Hand-written because redis-py's ``Lock`` blocks
with its own sleep loop and raises on release races, where a cache wants to poll
for the value while it waits and to treat a lost lease as harmless.
"""

from __future__ import annotations

from typing import Any

from ._redis_errors import map_redis_errors

__all__ = ["LEASE_INFIX", "acquire", "release"]

LEASE_INFIX = "\x00lease:"

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


async def acquire(client: Any, lease_key: str, token: str, seconds: float) -> bool:
    """Take the lease for ``seconds``; False if another holder has it."""
    with map_redis_errors("SET NX (lease)"):
        return bool(await client.set(lease_key, token, nx=True, px=max(1, round(seconds * 1000))))


async def release(client: Any, lease_key: str, token: str) -> bool:
    """Give the lease back if it is still ours; True if it was."""
    with map_redis_errors("lease release"):
        return bool(await client.eval(_RELEASE, 1, lease_key, token))
