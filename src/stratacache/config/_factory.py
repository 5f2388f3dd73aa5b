"""``CacheFactory``: validated, connected caches from arguments, a dict, a preset or the env.

Every path goes through the same three steps: check the whole configuration
(one :class:`ValidationError` naming every problem), build the cache, and connect
it within ``connect_timeout``. A Redis that cannot be reached then either raises
:class:`InfrastructureError` (``fail_on_connection_error=True``) or is replaced by
an :class:`InMemoryCache` with the same ``default_ttl`` and ``max_size =
memory_cache_size``, with a warning logged, so a service still starts when its
cache server does not.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..caches._ai import AIResponseCache
from ..caches._interface import CacheInterface
from ..caches._memory import InMemoryCache
from ..caches._tiered import GenericRedisCache
from ..errors import ConfigurationError, InfrastructureError
from ._null import NullCache
from ._presets import CachePreset, get_preset
from ._redact import redact_text, redact_url
from ._settings import load_settings
from ._validation import AI_SETTINGS, validate_cache_config

__all__ = ["DEFAULT_REDIS_URL", "CacheFactory"]

logger = logging.getLogger("stratacache")

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_CONNECT_TIMEOUT = 3.0
_CLOSE_TIMEOUT = 1.0
_PRODUCTION_AI_TTLS = get_preset("ai-production").operation_ttls


class CacheFactory:
    """Builds caches for common situations, validated and connected.

    Args:
        connect_timeout: the most seconds a factory method waits for Redis before
            falling back (or raising); DNS and TCP stalls included.
    """

    def __init__(self, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        if not isinstance(connect_timeout, (int, float)) or not 0 < connect_timeout <= 60:
            raise ConfigurationError(
                f"connect_timeout must be a number of seconds in (0, 60], got {connect_timeout!r}"
            )
        self.connect_timeout = float(connect_timeout)

    def __repr__(self) -> str:
        return f"CacheFactory(connect_timeout={self.connect_timeout:g})"

    # -- situations ---------------------------------------------------------------

    async def for_web_app(
        self,
        redis_url: str = DEFAULT_REDIS_URL,
        *,
        default_ttl: int = 1800,
        memory_cache_size: int = 200,
        compression_threshold: int = 2000,
        compression_level: int = 6,
        fail_on_connection_error: bool = False,
        performance_monitor: Any = None,
        **settings: Any,
    ) -> CacheInterface:
        """A two-tier cache for web responses and sessions: 30 min, 200 hot entries.

        ``settings`` takes any other factory setting (``namespace``, ``options``,
        ``l1_cache_size`` ...; see :meth:`create_cache_from_config`).
        """
        config = {
            "redis_url": redis_url,
            "default_ttl": default_ttl,
            "memory_cache_size": memory_cache_size,
            "compression_threshold": compression_threshold,
            "compression_level": compression_level,
            "fail_on_connection_error": fail_on_connection_error,
            "performance_monitor": performance_monitor,
            **settings,
        }
        return await self._create(config, defaults=_defaults(CacheFactory.for_web_app))

    async def for_ai_app(
        self,
        redis_url: str = DEFAULT_REDIS_URL,
        *,
        default_ttl: int = 3600,
        memory_cache_size: int = 100,
        compression_threshold: int = 1000,
        compression_level: int = 6,
        text_hash_threshold: int = 500,
        operation_ttls: Mapping[str, int] | None = None,
        fail_on_connection_error: bool = False,
        performance_monitor: Any = None,
        **settings: Any,
    ) -> CacheInterface:
        """An :class:`AIResponseCache` (or its memory fallback).

        ``operation_ttls`` defaults to the ``ai-production`` preset's.
        """
        config = {
            "redis_url": redis_url,
            "default_ttl": default_ttl,
            "memory_cache_size": memory_cache_size,
            "compression_threshold": compression_threshold,
            "compression_level": compression_level,
            "enable_ai_cache": True,
            "text_hash_threshold": text_hash_threshold,
            "operation_ttls": dict(
                _PRODUCTION_AI_TTLS if operation_ttls is None else operation_ttls
            ),
            "fail_on_connection_error": fail_on_connection_error,
            "performance_monitor": performance_monitor,
            **settings,
        }
        return await self._create(config, defaults=_defaults(CacheFactory.for_ai_app))

    async def for_testing(
        self,
        redis_url: str = "redis://localhost:6379/15",
        *,
        default_ttl: int = 60,
        memory_cache_size: int = 50,
        enable_memory_cache: bool = False,
        use_memory_cache: bool = False,
        fail_on_connection_error: bool = False,
        performance_monitor: Any = None,
        **settings: Any,
    ) -> CacheInterface:
        """A short-lived cache for tests: Redis database 15, no memory tier, 60 s.

        ``use_memory_cache=True`` returns an :class:`InMemoryCache` straight away,
        without touching Redis.
        """
        config = {
            "redis_url": redis_url,
            "default_ttl": default_ttl,
            "memory_cache_size": memory_cache_size,
            "enable_memory_cache": enable_memory_cache,
            "compression_level": 1,
            "fail_on_connection_error": fail_on_connection_error,
            "performance_monitor": performance_monitor,
            **settings,
        }
        if type(use_memory_cache) is not bool:
            raise ConfigurationError("use_memory_cache must be true or false")
        if use_memory_cache:
            checked = validate_cache_config(config, defaults=_defaults(CacheFactory.for_testing))
            return _memory_cache(checked)
        return await self._create(config, defaults=_defaults(CacheFactory.for_testing))

    async def create_cache_from_config(self, config: Mapping[str, Any]) -> CacheInterface:
        """A cache from a dict of settings; ``redis_url`` is required.

        Settings: ``redis_url``, ``default_ttl``, ``memory_cache_size`` (alias
        ``l1_cache_size``), ``enable_memory_cache`` (alias ``enable_l1_cache``),
        ``compression_threshold``, ``compression_level``, ``namespace``,
        ``fail_on_connection_error``, ``options`` (a ``ClientOptions``),
        ``performance_monitor``, and ``enable_ai_cache`` with the AI settings
        ``text_hash_threshold``, ``hash_algorithm``, ``operation_ttls``,
        ``text_size_tiers``. Unknown names are refused.
        """
        return await self._create(config)

    async def from_preset(
        self, name: str, redis_url: str | None = None, **overrides: Any
    ) -> CacheInterface:
        """A cache from a preset, overridden by ``overrides``; no ``redis_url``: memory only."""
        preset = get_preset(name)
        config = preset.to_config()
        if redis_url is not None:
            config["redis_url"] = redis_url
        config.update(overrides)
        return await self._from_preset(preset, config)

    async def from_env(self, environ: Mapping[str, str] | None = None) -> CacheInterface:
        """A cache from the environment (``os.environ``, or only ``environ`` if given).

        See :class:`~stratacache.config.CacheSettings` for the variables.
        """
        settings = load_settings(environ)
        return await self._from_preset(settings.preset, settings.cache_config())

    # -- the one path every method takes ---------------------------------------------

    async def _from_preset(self, preset: CachePreset, config: dict[str, Any]) -> CacheInterface:
        if preset.enabled:
            return await self._create(config, require_redis=False)
        checked = validate_cache_config(config, require_redis=False)  # typos still fail
        logger.info("stratacache: caching is disabled by the %r preset", preset.name)
        return NullCache(checked["default_ttl"], namespace=checked.get("namespace", ""))

    async def _create(
        self,
        config: Mapping[str, Any],
        *,
        require_redis: bool = True,
        defaults: Mapping[str, Any] | None = None,
    ) -> CacheInterface:
        checked = validate_cache_config(config, require_redis=require_redis, defaults=defaults)
        if "redis_url" not in checked:
            logger.info("stratacache: no Redis URL configured; using an in-memory cache")
            return _memory_cache(checked)
        cache = _redis_cache(checked)
        strict = bool(checked.get("fail_on_connection_error", False))
        return await self._connect(cache, checked["redis_url"], strict=strict)

    async def _connect(self, cache: GenericRedisCache, url: str, *, strict: bool) -> CacheInterface:
        try:
            connected = await asyncio.wait_for(cache.connect(), self.connect_timeout)
            reason = _failures(cache)
        except asyncio.TimeoutError:
            connected, reason = False, f"no answer within {self.connect_timeout:g} s"
        except InfrastructureError as exc:  # strict caches raise on the first failure
            connected, reason = False, exc.message
        except BaseException:  # cancelled, or a bug: leave no connection or task behind
            await _close_quietly(cache)
            raise
        if connected:
            return cache
        if cache.get_stats()["redis_status"] == "connected":
            # Redis answers; only the invalidation channel is still subscribing (it
            # keeps trying on its own). Falling back would throw a working cache away.
            logger.warning(
                "stratacache: connected to %s, but the invalidation channel is not "
                "subscribed yet; memory tiers may serve stale values until it is",
                redact_url(url),
            )
            return cache
        await _close_quietly(cache)
        reason = redact_text(reason, url)
        if strict:
            raise InfrastructureError(
                f"Redis connection failed: {redact_url(url)} is unreachable ({reason}). "
                "Check that Redis is running and the URL is right, or pass "
                "fail_on_connection_error=False to fall back to an in-memory cache.",
                {"redis_url": redact_url(url), "reason": reason},
            )
        fallback = InMemoryCache(
            max_size=cache.memory_cache_size,
            default_ttl=cache.default_ttl,
            namespace=cache.namespace,
        )
        logger.warning(
            "stratacache: Redis at %s is unreachable (%s); using an in-memory cache "
            "(default_ttl=%d, max_size=%d) instead. Pass fail_on_connection_error=True "
            "to fail instead.",
            redact_url(url),
            reason,
            fallback.default_ttl,
            fallback.max_size,
        )
        return fallback


def _redis_cache(settings: Mapping[str, Any]) -> GenericRedisCache:
    """Build (not connect) the Redis-backed cache the checked settings describe."""
    arguments = dict(settings)
    ai = bool(arguments.pop("enable_ai_cache", False))
    url = arguments.pop("redis_url")
    if not ai:
        for name in sorted(AI_SETTINGS & arguments.keys()):
            logger.debug("stratacache: %s ignored: the AI cache is not enabled", name)
            del arguments[name]
    cls = AIResponseCache if ai else GenericRedisCache
    try:
        return cls(url, **arguments)
    except ImportError as exc:
        raise ConfigurationError(
            f"a Redis URL needs the redis package: pip install 'stratacache[redis]' ({exc})"
        ) from exc


def _memory_cache(settings: Mapping[str, Any]) -> InMemoryCache:
    """The embedded cache for these settings (InMemoryCache's defaults for the rest)."""
    arguments: dict[str, Any] = {"namespace": settings.get("namespace", "")}
    if "default_ttl" in settings:
        arguments["default_ttl"] = settings["default_ttl"]
    if "memory_cache_size" in settings:
        arguments["max_size"] = settings["memory_cache_size"]
    return InMemoryCache(**arguments)


def _failures(cache: GenericRedisCache) -> str:
    by_class = cache.get_stats()["errors_by_class"]
    if not by_class:
        return "no answer"
    return "failed with " + ", ".join(f"{name} x{count}" for name, count in by_class.items())


async def _close_quietly(cache: CacheInterface) -> None:
    try:
        await asyncio.wait_for(cache.aclose(), _CLOSE_TIMEOUT)
    except Exception as exc:  # closing a cache that never connected: nothing to lose
        logger.debug("stratacache: closing an unconnected cache failed: %s", exc)


def _defaults(method: Callable[..., Any]) -> dict[str, Any]:
    """A factory method's keyword defaults: values the user did not choose."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(method).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
