"""``CacheWarmer``: fill a cache ahead of traffic (at startup, after a deploy or flush).

::

    warmer = CacheWarmer(cache)
    warmer.register("config", load_config, ttl=0)

    @warmer.warmable("catalog:top", ttl=300)
    async def top_products() -> list[dict[str, Any]]: ...

    results = await warmer.warm_all(concurrency=8, timeout=5.0)
    # {"config": True, "catalog:top": False}  (False: failed or timed out, and logged)

Warming always loads and overwrites: it refreshes, it does not only fill gaps.
Loaders may be sync (run in a worker thread with ``asyncio.to_thread``, so a slow
database call never blocks the event loop) or async. A loader that raises, times
out or returns a value the cache cannot store is logged and reported ``False``;
the other keys are warmed regardless. A timed-out *sync* loader cannot be
interrupted: its thread finishes in the background and its result is dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from ._keys import validate_key, validate_tags
from ._ttl import resolve_ttl, validate_positive_seconds
from .caches._interface import CacheInterface
from .errors import ValidationError

__all__ = ["CacheWarmer", "Progress"]

logger = logging.getLogger("stratacache")

F = TypeVar("F", bound=Callable[[], Any])

Progress = Callable[[int, int, str, bool], "Awaitable[None] | None"]
"""``progress(done, total, key, ok)``, called after each key (sync or async)."""


@dataclass(frozen=True)
class _Job:
    key: str
    loader: Callable[[], Any]
    ttl: int | None
    tags: frozenset[str]


class CacheWarmer:
    """Loads registered keys into ``cache``, with bounded concurrency and timeouts."""

    def __init__(self, cache: CacheInterface) -> None:
        if not isinstance(cache, CacheInterface):
            raise ValidationError(f"CacheWarmer needs a CacheInterface, not {type(cache).__name__}")
        self.cache = cache
        self._jobs: dict[str, _Job] = {}

    def __repr__(self) -> str:
        return f"CacheWarmer(keys={len(self._jobs)}, cache={self.cache!r})"

    def __len__(self) -> int:
        return len(self._jobs)

    @property
    def keys(self) -> list[str]:
        """The registered keys, in registration order."""
        return list(self._jobs)

    def register(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: int | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        """Warm ``key`` with ``loader()``'s result (``ttl=None``: the cache's default).

        Registering a key twice is refused: two loaders for one key would race.
        """
        validate_key(key)
        if not callable(loader):
            raise ValidationError(f"loader must be callable, not {type(loader).__name__}")
        _check_no_arguments(loader, key)
        resolve_ttl(ttl, 0)
        labels = validate_tags(tags)
        if key in self._jobs:
            raise ValidationError(
                f"a loader is already registered for {key!r}; unregister() it first",
                {"key": key},
            )
        self._jobs[key] = _Job(key, loader, ttl, labels)

    def unregister(self, key: str) -> bool:
        """Forget ``key``'s loader; True if there was one."""
        return self._jobs.pop(key, None) is not None

    def warmable(
        self, key: str, ttl: int | None = None, tags: Iterable[str] = ()
    ) -> Callable[[F], F]:
        """Register the decorated function (no arguments) as ``key``'s loader.

        The function is returned unchanged: callers still call it directly.
        """

        def register(loader: F) -> F:
            self.register(key, loader, ttl, tags)
            return loader

        return register

    async def warm_key(self, key: str, *, timeout: float | None = None) -> bool:
        """Load and store one registered key; False (and logged) if that failed."""
        job = self._jobs.get(key)
        if job is None:
            raise ValidationError(
                f"no loader is registered for {key!r:.100}; register() it first",
                {"key": key[:100] if isinstance(key, str) else repr(key)[:100]},
            )
        return await self._warm(job, _check_timeout(timeout))

    async def warm_all(
        self,
        concurrency: int = 8,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> dict[str, bool]:
        """Warm every registered key, at most ``concurrency`` at a time.

        ``timeout`` bounds each loader (seconds). ``progress(done, total, key, ok)``
        is called after each key; if it raises, that is logged and warming goes
        on. Returns ``{key: ok}`` in registration order.
        """
        if type(concurrency) is not int or concurrency < 1:
            raise ValidationError(f"concurrency must be a positive int, got {concurrency!r}")
        seconds = _check_timeout(timeout)
        if progress is not None and not callable(progress):
            raise ValidationError(f"progress must be callable, not {type(progress).__name__}")
        jobs = list(self._jobs.values())
        results: dict[str, bool] = {job.key: False for job in jobs}
        pending: Iterator[_Job] = iter(jobs)
        done = 0

        async def worker() -> None:
            nonlocal done
            for job in pending:  # workers share the iterator: each job is taken once
                ok = await self._warm(job, seconds)
                results[job.key] = ok
                done += 1
                if progress is not None:
                    await _report(progress, done, len(jobs), job.key, ok)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)))))
        return results

    async def _warm(self, job: _Job, timeout: float | None) -> bool:
        task = asyncio.ensure_future(_load(job.loader))
        try:
            finished, _ = await asyncio.wait({task}, timeout=timeout)
        finally:
            if not task.done():  # timed out, or warming itself was cancelled
                task.cancel()
        if not finished:
            logger.warning("stratacache: warming %r timed out after %g s", job.key, timeout)
            return False
        try:
            value = task.result()
        except Exception:
            logger.warning(
                "stratacache: warming %r failed: its loader raised", job.key, exc_info=True
            )
            return False
        try:
            await self.cache.set(job.key, value, job.ttl, tags=job.tags)
        except Exception:
            logger.warning(
                "stratacache: warming %r failed: storing the value raised", job.key, exc_info=True
            )
            return False
        return True


async def _load(loader: Callable[[], Any]) -> Any:
    if inspect.iscoroutinefunction(loader):
        return await loader()
    result = await asyncio.to_thread(loader)
    if inspect.isawaitable(result):  # a sync callable returning a coroutine
        return await result
    return result


async def _report(progress: Progress, done: int, total: int, key: str, ok: bool) -> None:
    try:
        outcome = progress(done, total, key, ok)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:
        logger.warning("stratacache: the warming progress callback raised", exc_info=True)


def _check_timeout(timeout: object) -> float | None:
    return None if timeout is None else validate_positive_seconds("timeout", timeout)


def _check_no_arguments(loader: Callable[[], Any], key: str) -> None:
    try:
        signature = inspect.signature(loader)
    except (TypeError, ValueError):  # some builtins have no signature: trust the caller
        return
    required = [
        name
        for name, parameter in signature.parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    if required:
        raise ValidationError(
            f"the loader for {key!r} must take no arguments, but needs {', '.join(required)}; "
            "wrap it: lambda: load(...)",
            {"key": key},
        )
