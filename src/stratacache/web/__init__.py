"""stratacache's web edge: HTTP response caching for ASGI apps (needs the ``web`` extra)."""

from ._etag import HTTPCacheMiddleware, cache_response

__all__ = ["HTTPCacheMiddleware", "cache_response"]
