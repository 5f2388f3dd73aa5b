"""Checking a whole cache configuration at once: one error that names every problem.

Fixing settings one error per deploy is slow, so :func:`validate_cache_config` runs
every check and raises a single :class:`ValidationError` listing them all, with
``context["problems"]`` mapping each setting to its messages. The checks are the
caches' own validators, so the factory and the constructors can never disagree.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from .._codec import Codec
from .._keys import namespace_prefix
from .._redis_client import ClientOptions, validate_redis_url
from .._ttl import validate_default_ttl, validate_positive_int
from ..caches._ai import AI_SETTING_VALIDATORS
from ..errors import CacheError, ValidationError

__all__ = ["AI_SETTINGS", "ALIASES", "CACHE_SETTINGS", "validate_cache_config"]

ALIASES = {"enable_l1_cache": "enable_memory_cache", "l1_cache_size": "memory_cache_size"}
"""Accepted alternative names (those of the system stratacache replaces)."""


def _boolean(name: str, value: object) -> bool:
    if type(value) is not bool:
        raise ValidationError(f"{name} must be true or false, got {value!r:.80}")
    return value


def _compression_threshold(value: object) -> object:
    Codec(compression_threshold=value)  # type: ignore[arg-type]  # it validates
    return value


def _compression_level(value: object) -> object:
    Codec(compression_level=value)  # type: ignore[arg-type]  # it validates
    return value


def _namespace(value: object) -> object:
    namespace_prefix(value)  # type: ignore[arg-type]  # it validates
    return value


def _client_options(value: object) -> object:
    if value is not None and not isinstance(value, ClientOptions):
        raise ValidationError(
            f"options must be a stratacache.ClientOptions, not {type(value).__name__}"
        )
    return value


CACHE_SETTINGS: dict[str, Callable[[object], object]] = {
    "redis_url": validate_redis_url,
    "default_ttl": validate_default_ttl,
    "memory_cache_size": partial(validate_positive_int, "memory_cache_size"),
    "enable_memory_cache": partial(_boolean, "enable_memory_cache"),
    "compression_threshold": _compression_threshold,
    "compression_level": _compression_level,
    "namespace": _namespace,
    "fail_on_connection_error": partial(_boolean, "fail_on_connection_error"),
    "options": _client_options,
    "performance_monitor": lambda value: value,  # any object with the monitor's methods
    "enable_ai_cache": partial(_boolean, "enable_ai_cache"),
    **AI_SETTING_VALIDATORS,
}
"""Every setting the factory takes, and its validator."""

AI_SETTINGS = frozenset(AI_SETTING_VALIDATORS)


def validate_cache_config(
    config: Mapping[str, Any],
    *,
    require_redis: bool = True,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return ``config`` checked, aliases resolved; raise one error for every problem.

    ``defaults`` are the values a caller filled in on the user's behalf: an alias
    given explicitly overrides them instead of conflicting with them.
    """
    if not isinstance(config, Mapping):
        raise ValidationError(
            f"a cache configuration must be a dict of settings, not {type(config).__name__}"
        )
    problems: dict[str, list[str]] = {}
    settings = _resolve_aliases(dict(config), defaults or {}, problems)
    for name, value in settings.items():
        check = CACHE_SETTINGS.get(name)
        if check is None:
            problems.setdefault(name, []).append(_unknown(name))
            continue
        if name == "redis_url" and value is None:
            continue  # reported below as missing
        try:
            settings[name] = check(value)
        except CacheError as exc:
            problems.setdefault(name, []).append(exc.message)
    if settings.get("redis_url") is None:
        settings.pop("redis_url", None)
        if require_redis:
            problems.setdefault("redis_url", []).append(
                "redis_url is required: pass a Redis URL such as redis://localhost:6379/0"
            )
    if problems:
        messages = [message for found in problems.values() for message in found]
        raise ValidationError(
            f"invalid cache configuration ({len(messages)} "
            f"problem{'s' if len(messages) > 1 else ''}): {'; '.join(messages)}",
            {"problems": problems},
        )
    return settings


def _resolve_aliases(
    settings: dict[str, Any], defaults: Mapping[str, Any], problems: dict[str, list[str]]
) -> dict[str, Any]:
    for alias, name in ALIASES.items():
        if alias not in settings:
            continue
        value = settings.pop(alias)
        current = settings.get(name, value)
        if current != value and not (name in defaults and current == defaults[name]):
            problems.setdefault(name, []).append(
                f"{name}={current!r:.40} and {alias}={value!r:.40} disagree; pass only one"
            )
        else:
            settings[name] = value
    return settings


def _unknown(name: str) -> str:
    valid = sorted(CACHE_SETTINGS)
    close = difflib.get_close_matches(str(name), [*valid, *ALIASES], n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown setting {name!r:.80}; {hint}valid settings: {', '.join(valid)}"
