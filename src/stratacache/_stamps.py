"""Freshness stamps: what ``get_or_set``'s policies remember about an entry.

Stale-while-revalidate, stale-if-error and early recomputation (XFetch) need two
facts per entry besides its value: when it stops being fresh, and how long the
loader took to make it. ``get_or_set`` stores such entries as a :class:`Stamped`
value, kept in Redis (and in every process's memory tier) for the TTL plus the
stale windows, so the stale value is still there when a policy wants it.

Why inside the value, not in a sidecar key: one read and one write, as for any
entry; tags, patterns, ``delete`` and the invalidation bus treat the entry as one
thing; and no sidecar can outlive or contradict its value.

**Invisible to everyone else.** The codec encodes a stamp as its own msgpack
extension (or a pickled object), and decoding hands back the bare value unless
the reader asked for stamps with :func:`reveal`. So ``get``, ``get_many``,
``scan``-driven tools and other processes see exactly the value they stored;
only ``get_or_set`` (which turns stamps on around its own reads) ever sees one.
The switch is a context variable because the decision is made deep in the codec,
below every cache and tier, and must hold for one task's read only.

``fresh_until`` is on the cache's stamp clock: wall time (``time.time``) for
Redis-backed caches, whose entries are read by other processes and hosts; the
cache's own clock for a memory-only cache, whose entries never leave the process.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

__all__ = [
    "Stamped",
    "conceal",
    "restore",
    "reveal",
    "stamps_shown",
    "unstamped",
]

_VISIBLE: ContextVar[bool] = ContextVar("stratacache_stamps_visible", default=False)


class Stamped:
    """A value with its freshness deadline and the seconds its loader took."""

    __slots__ = ("fresh_until", "load_seconds", "value")

    def __init__(self, value: Any, fresh_until: float, load_seconds: float) -> None:
        self.value = value
        self.fresh_until = fresh_until
        self.load_seconds = load_seconds

    def __repr__(self) -> str:
        return f"Stamped(fresh_until={self.fresh_until!r}, load_seconds={self.load_seconds!r})"

    def __reduce__(self) -> tuple[Any, tuple[Any, float, float]]:
        # Unpickling goes through restore(), so a pickled stamp hides itself too.
        return restore, (self.value, self.fresh_until, self.load_seconds)


def restore(value: Any, fresh_until: float, load_seconds: float) -> Any:
    """What decoding a stamp gives: the stamp for ``get_or_set``, else the bare value."""
    if _VISIBLE.get():
        return Stamped(value, fresh_until, load_seconds)
    return value


def reveal() -> Token[bool]:
    """From now on (in this task), reads return :class:`Stamped` entries whole.

    Pass the token to :func:`conceal` in a ``finally``. (Not a context manager: a
    generator-based one costs ~1 us, as much as a memory-cache hit.)
    """
    return _VISIBLE.set(True)


def conceal(token: Token[bool]) -> None:
    """End what :func:`reveal` began."""
    _VISIBLE.reset(token)


def unstamped(value: Any) -> Any:
    """The bare value of what a read returned, stamped or not."""
    return value.value if type(value) is Stamped else value


def stamps_shown() -> bool:
    """Whether the running task asked for stamps."""
    return _VISIBLE.get()
