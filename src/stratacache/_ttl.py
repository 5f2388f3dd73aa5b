"""TTL arguments: one place decides what ``ttl=None``, ``0`` and negatives mean.

``None`` means the cache's ``default_ttl``; ``0`` means the entry never expires;
anything else must be a non-negative ``int`` of seconds. ``bool`` is refused even
though it is an ``int`` subclass: ``ttl=True`` is always a mistake.
"""

from __future__ import annotations

import math

from .errors import ValidationError

MAX_DEFAULT_TTL = 365 * 24 * 3600
NO_EXPIRY = 0


def resolve_ttl(ttl: object, default: int) -> int:
    """Return the TTL in whole seconds that a write should use (0 = never expire)."""
    if ttl is None:
        return default
    if type(ttl) is not int:
        raise ValidationError(
            f"ttl must be an integer number of seconds (or None for the default), "
            f"not {type(ttl).__name__}",
            {"ttl_type": type(ttl).__name__},
        )
    if ttl < 0:
        raise ValidationError(
            "ttl must be non-negative: use 0 for 'never expire' or delete() to remove",
            {"ttl": ttl},
        )
    return ttl


def validate_default_ttl(value: object) -> int:
    """Validate a cache's ``default_ttl`` with the messages users' tests match on."""
    if type(value) is not int:
        raise ValidationError(
            f"default_ttl must be an integer, not {type(value).__name__}",
            {"default_ttl_type": type(value).__name__},
        )
    if value < 0:
        raise ValidationError("default_ttl must be non-negative", {"default_ttl": value})
    if value > MAX_DEFAULT_TTL:
        raise ValidationError(
            f"default_ttl must not exceed 365 days ({MAX_DEFAULT_TTL} seconds)",
            {"default_ttl": value},
        )
    return value


def validate_positive_seconds(name: str, value: object) -> float:
    """Validate a duration setting (timeouts): a finite number of seconds above 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(
            f"{name} must be a positive number of seconds, got {value!r}", {name: repr(value)}
        )
    return float(value)


def validate_positive_int(name: str, value: object) -> int:
    """Validate a size-like setting (``max_size``, ``memory_cache_size`` ...)."""
    if type(value) is not int or value <= 0:
        raise ValidationError(
            f"{name} must be a positive integer, got {value!r}", {name: repr(value)}
        )
    return value
