"""stratacache: an async-first, two-tier cache for Python services.

The public surface is exactly what ``__all__`` lists; every other module is
private and may change without notice.
"""

import typing

from ._codec import Codec
from ._decorators import cached
from ._redis_client import ClientOptions
from ._warming import CacheWarmer
from .caches._ai import AIResponseCache
from .caches._interface import MISSING, CacheInterface
from .caches._memory import InMemoryCache, LocalCache
from .caches._redis import RedisCache
from .caches._tenant import CacheKeyBuilder, TenantCache
from .caches._tiered import CacheManager, GenericRedisCache
from .errors import (
    CacheError,
    ConfigurationError,
    InfrastructureError,
    SerializationError,
    ValidationError,
)
from .monitoring import CachePerformanceMonitor

if typing.TYPE_CHECKING:
    from .config import CacheFactory, NullCache, describe_presets

__version__ = "0.1.0"

# The configuration layer imports pydantic-settings: 0.12 s of a 0.29 s import.
# Only programs that use it pay for it (PEP 562 attributes, looked up once).
_FROM_CONFIG = ("CacheFactory", "NullCache", "describe_presets")


def __getattr__(name: str) -> typing.Any:
    if name in _FROM_CONFIG:
        from . import config

        value = getattr(config, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stratacache' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_CONFIG})


__all__ = [
    "MISSING",
    "AIResponseCache",
    "CacheError",
    "CacheFactory",
    "CacheInterface",
    "CacheKeyBuilder",
    "CacheManager",
    "CachePerformanceMonitor",
    "CacheWarmer",
    "ClientOptions",
    "Codec",
    "ConfigurationError",
    "GenericRedisCache",
    "InMemoryCache",
    "InfrastructureError",
    "LocalCache",
    "NullCache",
    "RedisCache",
    "SerializationError",
    "TenantCache",
    "ValidationError",
    "__version__",
    "cached",
    "describe_presets",
]
