"""stratacache's web edge (needs the ``web`` extra).

- :func:`management_router` / :func:`create_app`: the secured management API
  (status, metrics, invalidation, key browsing, a live dashboard, Prometheus).
- :class:`HTTPCacheMiddleware` / :func:`cache_response`: HTTP response caching
  with strong ETags and conditional requests.
"""

from ._app import create_app
from ._etag import HTTPCacheMiddleware, cache_response
from ._router import DEFAULT_PREFIX, management_router

__all__ = [
    "DEFAULT_PREFIX",
    "HTTPCacheMiddleware",
    "cache_response",
    "create_app",
    "management_router",
]
