"""What the SQLAlchemy and Django invalidators have in common: registration and dispatch.

Each integration subclasses :class:`InvalidatorBase` and adds only its hooks (session
events, signals), so the registration API, the error policy and the async bridge are
written once.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from .._ttl import validate_positive_seconds
from ..caches._interface import CacheInterface
from ..errors import ValidationError
from ._dispatch import DEFAULT_TIMEOUT, Dispatcher
from ._registry import EMPTY, Invalidation, Registry, Rule, Source

__all__ = ["DEFAULT_TIMEOUT", "InvalidatorBase"]

ModelT = TypeVar("ModelT", bound=type)

_ids = itertools.count(1)


class InvalidatorBase:
    """Maps models to cache keys and tags, and drops them after a commit.

    Args:
        cache: any stratacache cache (``InMemoryCache``, ``GenericRedisCache``,
            a ``TenantCache`` view ...).
        timeout: seconds one invalidation may take before it is abandoned, logged
            and counted (``None``: no limit). Commits never wait longer than this.
    """

    _kind = "invalidator"

    def __init__(self, cache: CacheInterface, *, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        if not isinstance(cache, CacheInterface):
            raise ValidationError(
                f"cache must be a stratacache CacheInterface, not {type(cache).__name__}",
                {"cache_type": type(cache).__name__},
            )
        if timeout is not None:
            validate_positive_seconds("timeout", timeout)
        self.cache = cache
        self._id = next(_ids)
        self._registry = Registry()
        self._dispatcher = Dispatcher(cache, timeout=timeout, name=f"{self._kind}-{self._id}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cache={self.cache!r}, models={len(self._registry.models())})"

    # -- registration --------------------------------------------------------------

    @overload
    def register(
        self,
        model: ModelT,
        *,
        keys: Source = (),
        tags: Source = (),
        bulk_tags: Iterable[str] | None = None,
    ) -> ModelT: ...

    @overload
    def register(
        self,
        model: None = None,
        *,
        keys: Source = (),
        tags: Source = (),
        bulk_tags: Iterable[str] | None = None,
    ) -> Callable[[ModelT], ModelT]: ...

    def register(
        self,
        model: type | None = None,
        *,
        keys: Source = (),
        tags: Source = (),
        bulk_tags: Iterable[str] | None = None,
    ) -> Any:
        """Drop ``keys`` and ``tags`` whenever a row of ``model`` is written.

        ``keys`` and ``tags`` are each a list of strings (fixed), or a function
        of the changed object returning a list, one string, or ``None``. They are
        rendered when the row is written — for an update, with the new values
        and with the old ones — and dropped after the transaction commits.
        Registering a base class covers its subclasses; registering a model again
        adds to what it drops.

        ``bulk_tags``: tags to drop when a statement changes rows without loading
        them (SQLAlchemy's ORM ``update()`` / ``delete()`` / ``insert()``). Fixed
        keys and tags are always dropped then; per-row ones cannot be computed.

        Without ``model`` it returns a class decorator::

            @invalidator.register(keys=lambda p: [f"product:{p.id}"], tags=["products"])
            class Product(Base): ...

        Raises :class:`ValidationError` for fixed keys or tags that are invalid.
        """
        rule = Rule.build(keys, tags, bulk_tags)
        if model is None:

            def decorate(cls: ModelT) -> ModelT:
                self._add(cls, rule)
                return cls

            return decorate
        self._add(model, rule)
        return model

    def _add(self, model: type, rule: Rule) -> None:
        self._registry.add(model, rule)

    def invalidation_for(self, obj: Any) -> Invalidation:
        """The keys and tags a change of ``obj`` drops (raises what key functions raise)."""
        return self._registry.render(type(obj), obj)

    def _render(self, obj: Any, view: Any = None) -> Invalidation:
        """Render ``view`` (default ``obj``) by ``obj``'s rules; failures are logged, not raised.

        A key function that raises must not abort the user's write: the error is
        logged and counted in ``get_stats()["errors"]``.
        """
        try:
            return self._registry.render(type(obj), obj if view is None else view)
        except Exception as exc:
            self._dispatcher.failed(f"computing keys for {type(obj).__name__}", exc)
            return EMPTY

    # -- lifecycle -----------------------------------------------------------------

    async def drain(self) -> None:
        """Wait for the invalidations scheduled on the running event loop.

        Commits made inside a loop (``AsyncSession``) schedule their invalidation as
        a task; await this when the same task goes on to read the cache, in tests,
        and before shutdown. Commits made outside a loop have finished theirs
        before ``commit()`` returns.
        """
        await self._dispatcher.drain()

    def _unhook(self) -> None:
        """Remove the ORM hooks (the subclass knows which)."""

    def close(self) -> None:
        """Unhook from the ORM and stop the private event loop, if one was started.

        Invalidations that arrive later (a commit already under way) are dropped,
        logged and counted.
        """
        self._unhook()
        self._dispatcher.close()

    async def aclose(self) -> None:
        """:meth:`drain`, then :meth:`close` without blocking the event loop."""
        await self.drain()
        self._unhook()  # here, on the loop: hooks are not removed under a running flush
        await asyncio.to_thread(self._dispatcher.close)

    def get_stats(self) -> dict[str, Any]:
        """Counters since creation.

        ``batches`` (invalidations sent: one per committed transaction or signal),
        ``keys`` and ``tags`` sent, ``removed`` (entries the cache reported gone),
        ``errors`` (cache failures, timeouts, failing key functions; never raised),
        ``dropped`` (arrived after :meth:`close`), ``unmapped_bulk`` (bulk statements
        on models whose keys are only per row), ``pending`` (tasks still running),
        ``last_error`` and ``models`` (registrations).
        """
        stats = self._dispatcher.stats()
        stats["models"] = len(self._registry.models())
        return stats
