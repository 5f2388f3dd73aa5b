"""stratacache: an async-first, two-tier cache for Python services.

The public surface is exactly what ``__all__`` lists; every other module is
private and may change without notice.
"""

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
from .config import CacheFactory, NullCache, describe_presets
from .errors import (
    CacheError,
    ConfigurationError,
    InfrastructureError,
    SerializationError,
    ValidationError,
)
from .monitoring import CachePerformanceMonitor

__version__ = "0.1.0"

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
