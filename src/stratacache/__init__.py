"""stratacache: an async-first, two-tier cache for Python services.

The public surface is exactly what ``__all__`` lists; every other module is
private and may change without notice.
"""

from ._codec import Codec
from ._redis_client import ClientOptions
from .caches._interface import MISSING, CacheInterface
from .caches._memory import InMemoryCache, LocalCache
from .caches._redis import RedisCache
from .caches._tiered import CacheManager, GenericRedisCache
from .errors import (
    CacheError,
    ConfigurationError,
    InfrastructureError,
    SerializationError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "MISSING",
    "CacheError",
    "CacheInterface",
    "CacheManager",
    "ClientOptions",
    "Codec",
    "ConfigurationError",
    "GenericRedisCache",
    "InMemoryCache",
    "InfrastructureError",
    "LocalCache",
    "RedisCache",
    "SerializationError",
    "ValidationError",
    "__version__",
]
