"""The exceptions stratacache raises, and nothing else.

Every error derives from :class:`CacheError`, so one ``except CacheError`` catches
all of them. The subclasses also derive from the built-in a caller would expect,
so code written against plain Python keeps working::

    CacheError
     ├── ValidationError (ValueError)        a bad argument: key, ttl, pattern, option
     ├── ConfigurationError                  bad settings: constructor, preset, environment
     ├── InfrastructureError                 the backend is unreachable, failing, or closed
     └── SerializationError (TypeError)      a value the codec cannot store

Each carries ``.message`` (the text, also ``str(error)``) and ``.context``, a dict of
the values that explain it (the offending key, type, setting ...). Context never
holds cached values or credentials, so it is safe to log.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CacheError",
    "ConfigurationError",
    "InfrastructureError",
    "SerializationError",
    "ValidationError",
]


class CacheError(Exception):
    """The root of every error stratacache raises."""

    def __init__(self, message: str, context: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = dict(context or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, context={self.context!r})"


class ValidationError(CacheError, ValueError):
    """An argument is invalid: a key, a TTL, a pattern, a policy option."""


class ConfigurationError(CacheError):
    """The cache was configured with settings that cannot work together."""


class InfrastructureError(CacheError):
    """The backend is unreachable or failing, or the cache was already closed."""


class SerializationError(CacheError, TypeError):
    """A value cannot be serialized by the configured codec."""
