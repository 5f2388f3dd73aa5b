"""The one place where redis-py's exceptions become stratacache's.

Everything that talks to Redis runs inside :func:`map_redis_errors`. It turns every
failure of the server or the connection into :class:`InfrastructureError`, whose
``context["error_class"]`` keeps the redis-py class name for counting by class.

It catches more than ``RedisError`` on purpose: ``RedisClusterException`` and its
subclasses (``SlotNotCoveredError``, ``CrossSlotTransactionError``) do not derive
from ``RedisError`` (cashews shipped that bug, PR #431), and raw ``OSError`` or
``asyncio.TimeoutError`` can escape some redis-py paths during connect.

redis-py is imported lazily: stratacache must import without the ``redis`` extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from .errors import InfrastructureError

__all__ = ["is_redis_failure", "map_redis_errors", "translate"]


@cache
def _failure_types() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisClusterException, RedisError

    return (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)


def is_redis_failure(exc: BaseException) -> bool:
    """True if ``exc`` is a failure of Redis or of the connection to it.

    Besides redis-py's own error types, any exception raised *inside* redis-py is
    one: during a Cluster failover its connections have raised ``AttributeError``
    (``'NoneType' object has no attribute 'writelines'``), which fail-safe callers
    must never see.
    """
    return isinstance(exc, _failure_types()) or _raised_in_redis_py(exc)


def _raised_in_redis_py(exc: BaseException) -> bool:
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return isinstance(module, str) and (module == "redis" or module.startswith("redis."))


def translate(exc: Exception, operation: str) -> Exception:
    """The exception to raise for ``exc``: InfrastructureError for Redis failures.

    For hot paths, where a ``with`` block's generator costs a microsecond::

        try:
            data = await client.get(key)
        except Exception as exc:
            raise translate(exc, "GET") from exc
    """
    if isinstance(exc, InfrastructureError) or not is_redis_failure(exc):
        return exc
    return InfrastructureError(
        f"Redis {operation} failed: {type(exc).__name__}: {exc}",
        {
            "operation": operation,
            "error_class": type(exc).__name__,
            # "reply": the server answered with an error (OOM, READONLY, LOADING
            # ...); "connection": it could not be reached or did not answer.
            "kind": "reply" if _is_reply_error(exc) else "connection",
        },
    )


@contextmanager
def map_redis_errors(operation: str) -> Iterator[None]:
    """Re-raise Redis and connection failures inside the block as InfrastructureError."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc, operation)
        if mapped is exc:
            raise
        raise mapped from exc


def _is_reply_error(exc: BaseException) -> bool:
    from redis.exceptions import BusyLoadingError, ResponseError

    return isinstance(exc, (ResponseError, BusyLoadingError))
