"""``stratacache warm MODULE:ATTR``: run a :class:`~stratacache.CacheWarmer` with a progress bar.

``ATTR`` names a ``CacheWarmer``, or a function returning one (sync or async). A
function taking one argument is given the cache the settings describe, so a
project can write ``def warmer(cache): w = CacheWarmer(cache); ...; return w`` and
let the CLI's configuration decide where the entries go. A warmer built around a
cache of its own is connected here and closed afterwards.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._warming import CacheWarmer
from ..caches._interface import CacheInterface
from ..config import CacheSettings
from ..errors import CacheError
from ._common import ExitCode, describe_exception, err_console, fail
from ._sources import LocalSource, backend_of

__all__ = ["load_target", "warm_target"]


def load_target(target: str) -> Any:
    """Import ``MODULE:ATTR`` (``ATTR`` may be dotted), from the current directory too."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        fail(
            f"expected MODULE:ATTR, got {target!r:.100}",
            hint="e.g. stratacache warm myapp.cache:warmer",
        )
    if os.getcwd() not in sys.path:  # as uvicorn and celery do: the project's own modules
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            fail(
                f"cannot import {module_name!r}: no module named {exc.name!r}",
                hint="run from your project's directory, or add it to PYTHONPATH",
            )
        fail(f"importing {module_name!r} failed: {exc}")
    except Exception as exc:  # the user's module raised while importing
        fail(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}",
            hint=f"python -c 'import {module_name}' shows the traceback",
        )
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            fail(f"{module_name!r} has no attribute {attribute!r}")
    return found


async def warm_target(
    target: str,
    *,
    concurrency: int,
    timeout: float | None,
    settings: Callable[[], CacheSettings],
    show_progress: bool,
) -> dict[str, Any]:
    """Warm what ``target`` names; the report ``warm --json`` prints.

    ``settings`` is called only for a function that takes the configured cache: a
    warmer that brings its own cache must not fail on an environment it never reads.
    """
    found = load_target(target)
    source: LocalSource | None = None
    try:
        if isinstance(found, CacheWarmer):
            warmer = found
        elif callable(found):
            if _takes_an_argument(found):
                source = await LocalSource.open(settings())
            warmer = await _call_factory(found, target, source)
        else:
            fail(f"{target} is a {type(found).__name__}: expected a CacheWarmer or a function")
        return await _warm(warmer, target, concurrency, timeout, show_progress, own=source is None)
    finally:
        if source is not None:
            await source.aclose()


async def _call_factory(
    factory: Callable[..., Any], target: str, source: LocalSource | None
) -> CacheWarmer:
    """``factory()`` or ``factory(cache)``, awaited if need be; a failure is the user's code."""
    try:
        made = factory() if source is None else factory(source.cache)
        if inspect.isawaitable(made):
            made = await made
    except CacheError:  # the configured cache failed (Redis down ...): reported as such
        raise
    except Exception as exc:  # the project's own code raised
        hint = "a warmer factory takes no argument, or one: the configured cache"
        fail(
            f"{target}() failed: {describe_exception(exc)}",
            hint=hint if isinstance(exc, TypeError) else "",
        )
    if not isinstance(made, CacheWarmer):
        fail(f"{target} returned {type(made).__name__}, not a CacheWarmer")
    return made


async def _warm(
    warmer: CacheWarmer,
    target: str,
    concurrency: int,
    timeout: float | None,
    show_progress: bool,
    *,
    own: bool,
) -> dict[str, Any]:
    cache: CacheInterface = warmer.cache
    console = err_console()
    try:
        if own and not await cache.connect():
            fail(
                f"the warmer's cache ({cache!r}) could not reach Redis",
                ExitCode.UNREACHABLE,
                "check that Redis is running; `stratacache doctor` checks the set-up",
            )
        backend = backend_of(cache)
        if backend in ("memory", "disabled"):
            console.print(
                f"[yellow]Note:[/] the warmer's cache is {backend}: the entries stay in this "
                "process and end with it (a dry run of the loaders). Configure a Redis URL "
                "to warm the cache your services share."
            )
        if not len(warmer):
            console.print(f"[yellow]Note:[/] {target} has no keys registered: nothing to warm")
        started = time.perf_counter()
        if show_progress:
            results = await _with_progress(warmer, concurrency, timeout, console)
        else:
            results = await warmer.warm_all(concurrency=concurrency, timeout=timeout)
        seconds = time.perf_counter() - started
    finally:
        if own:
            await cache.aclose()
    failed = [key for key, ok in results.items() if not ok]
    return {
        "target": target,
        "total": len(results),
        "warmed": len(results) - len(failed),
        "failed": failed,
        "seconds": round(seconds, 3),
        "results": results,
    }


async def _with_progress(
    warmer: CacheWarmer, concurrency: int, timeout: float | None, console: Console
) -> dict[str, bool]:
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("warming", total=len(warmer), failed=0)
        failures = 0

        def advance(done: int, total: int, key: str, ok: bool) -> None:
            nonlocal failures
            failures += not ok
            label = escape(key if len(key) <= 40 else key[:39] + "…")
            progress.update(task, completed=done, failed=failures, description=f"warming {label}")

        results = await warmer.warm_all(concurrency=concurrency, timeout=timeout, progress=advance)
        progress.update(task, description="warmed")
    return results


def _takes_an_argument(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(
        parameter.kind in positional and parameter.default is inspect.Parameter.empty
        for parameter in parameters
    )
