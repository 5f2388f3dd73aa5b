"""Helpers shared by test modules (importable as ``_support``: tests/ is on the path)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

from stratacache import CacheInterface


def skip_or_fail(message: str) -> NoReturn:
    """Skip a test whose prerequisite is missing -- or fail it when ``CI=true``.

    CI must never pass by skipping the Redis (or browser) tests it is there to run.
    """
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


@dataclass
class Subject:
    """A cache under contract, and the means to age it by ``seconds``."""

    cache: CacheInterface
    advance: Callable[[float], Awaitable[None]]
    max_key_length: int = 1024
    """The longest key the cache takes (a CacheManager's namespace uses some)."""


def scribble(obj: Any, custom: Callable[[Any], None] | None = None) -> None:
    """Mutate, in place, every mutable container reachable from ``obj``.

    ``custom`` is called for any other object (a registered class, say), so a test
    can reach inside its own types too.
    """
    kind = type(obj)
    if kind is list:
        for item in obj:
            scribble(item, custom)
        obj.append("scribbled")
    elif kind is dict:
        for item in obj.values():
            scribble(item, custom)
        obj["scribbled"] = True
    elif kind is set:
        obj.add("scribbled")
    elif kind in (tuple, frozenset):
        for item in obj:
            scribble(item, custom)
    elif custom is not None:
        custom(obj)
