"""``MISSING``: the default that tells a miss from a cached ``None``."""

from __future__ import annotations

from typing import Final

__all__ = ["MISSING"]


class _Missing:
    """The type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
"""Pass as ``default`` to ``get()`` to tell a miss from a cached ``None``."""
