"""``AIResponseCache``: the two-tier cache, keyed and expired for AI responses.

An AI call is identified by its text, operation (``summarize``, ``qa`` ...), options
and optional question; :class:`~._ai_keys.AIKeyBuilder` turns those into one
deterministic key. Each operation may have its own TTL (a sentiment label stays
right longer than a generated question). Every response is tagged with its
operation, so :meth:`AIResponseCache.invalidate_by_operation` is a tag
invalidation: cluster-safe, no SCAN, and immune to glob characters in names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from .._ttl import MAX_DEFAULT_TTL
from ..errors import ValidationError
from ._ai_keys import (
    AIKeyBuilder,
    validate_hash_algorithm,
    validate_operation,
    validate_text_hash_threshold,
)
from ._ai_stats import DEFAULT_TEXT_SIZE_TIERS, AIStats, tokens_of, validate_text_size_tiers
from ._interface import MISSING
from ._tiered import GenericRedisCache

__all__ = ["AI_SETTING_VALIDATORS", "AIResponseCache", "validate_operation_ttls"]

logger = logging.getLogger("stratacache")


def validate_operation_ttls(value: object) -> dict[str, int]:
    """``{operation: seconds}``; 0 means never expire, as for every TTL."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            "operation_ttls must be a dictionary of operation name to seconds, such as "
            f"{{'summarize': 7200}}, not {type(value).__name__}",
            {"operation_ttls_type": type(value).__name__},
        )
    checked: dict[str, int] = {}
    for operation, ttl in value.items():
        if not isinstance(operation, str) or not operation.strip():
            raise ValidationError(
                f"operation_ttls keys must be non-empty strings, got {operation!r:.80}"
            )
        if type(ttl) is not int or ttl < 0:
            raise ValidationError(
                f"operation_ttls[{operation!r}] must be a non-negative integer (seconds; "
                f"0 = never expire), got {ttl!r:.80}",
                {"operation": operation},
            )
        if ttl > MAX_DEFAULT_TTL:
            raise ValidationError(
                f"operation_ttls[{operation!r}] must not exceed 365 days "
                f"({MAX_DEFAULT_TTL} seconds), got {ttl}",
                {"operation": operation},
            )
        checked[operation] = ttl
    return checked


AI_SETTING_VALIDATORS = {
    "text_hash_threshold": validate_text_hash_threshold,
    "hash_algorithm": validate_hash_algorithm,
    "operation_ttls": validate_operation_ttls,
    "text_size_tiers": validate_text_size_tiers,
}
"""The AI-only settings and their validators, for callers that check a whole config."""


class AIResponseCache(GenericRedisCache):
    """A :class:`GenericRedisCache` for AI responses, with per-operation TTLs and stats.

    Args:
        text_hash_threshold: texts longer than this many characters appear in keys
            as their digest (shorter ones verbatim, when they fit).
        hash_algorithm: any of :data:`hashlib.algorithms_guaranteed`.
        operation_ttls: seconds per operation; others get ``default_ttl``.
        text_size_tiers: ``{name: max characters}`` for the stats by text size
            (default small ≤ 500, medium ≤ 5,000, large ≤ 50,000, xlarge above).
        **kwargs: everything :class:`GenericRedisCache` takes.
    """

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        *,
        text_hash_threshold: int = 1000,
        hash_algorithm: str = "sha256",
        operation_ttls: Mapping[str, int] | None = None,
        text_size_tiers: Mapping[str, int] = DEFAULT_TEXT_SIZE_TIERS,
        **kwargs: Any,
    ) -> None:
        # Checked before the parent builds a client: a bad setting costs nothing.
        self.key_builder = AIKeyBuilder(text_hash_threshold, hash_algorithm)
        self.operation_ttls = validate_operation_ttls(operation_ttls)
        self._ai_stats = AIStats(text_size_tiers)
        super().__init__(redis_url, **kwargs)

    def __repr__(self) -> str:
        return (
            f"AIResponseCache(namespace={self.namespace!r}, "
            f"operations_with_ttl={sorted(self.operation_ttls)})"
        )

    @property
    def text_hash_threshold(self) -> int:
        return self.key_builder.text_hash_threshold

    @property
    def hash_algorithm(self) -> str:
        return self.key_builder.hash_algorithm

    @property
    def text_size_tiers(self) -> dict[str, int]:
        return dict(self._ai_stats.text_size_tiers)

    def build_key(
        self,
        text: str,
        operation: str,
        options: Mapping[str, Any] | None = None,
        question: str | None = None,
    ) -> str:
        """The key of this request: the same in every process, at most 1024 characters.

        Option order does not matter; ``None`` and ``{}`` options are the same.
        """
        return self.key_builder.build_key(text, operation, options, question)

    def ttl_for(self, operation: str) -> int:
        """Seconds a response of ``operation`` lives (0: never expires)."""
        return self.operation_ttls.get(validate_operation(operation), self.default_ttl)

    async def cache_response(
        self,
        text: str,
        operation: str,
        options: Mapping[str, Any] | None,
        response: Any,
        question: str | None = None,
    ) -> None:
        """Store ``response`` for ``ttl_for(operation)`` seconds, tagged with its operation."""
        key = self._timed_key(text, operation, options, question)
        await self.set(
            key, response, self.ttl_for(operation), tags=[self.key_builder.operation_tag(operation)]
        )
        self._ai_stats.record("sets", operation, text)

    async def get_cached_response(
        self,
        text: str,
        operation: str,
        options: Mapping[str, Any] | None = None,
        question: str | None = None,
    ) -> Any:
        """The cached response, or ``None``; a hit adds its metadata ``tokens`` to the stats."""
        key = self._timed_key(text, operation, options, question)
        response = await self.get(key, MISSING)
        if response is MISSING:
            self._ai_stats.record("misses", operation, text)
            return None
        self._ai_stats.record("hits", operation, text, tokens_of(response))
        return response

    async def invalidate_by_operation(self, operation: str) -> int:
        """Remove every cached response of ``operation``; returns how many went."""
        removed = await self.invalidate_tags(self.key_builder.operation_tag(operation))
        self._ai_stats.add_invalidated(operation, removed)
        return removed

    def _timed_key(
        self,
        text: str,
        operation: str,
        options: Mapping[str, Any] | None,
        question: str | None,
    ) -> str:
        """``build_key``, timed for the performance monitor."""
        started = time.perf_counter()
        key = self.build_key(text, operation, options, question)
        try:
            self.performance_monitor.record_key_generation_time(
                time.perf_counter() - started, len(text), operation
            )
        except Exception as exc:  # a failing monitor never fails a cache operation
            logger.debug("stratacache: the performance monitor failed: %r", exc)
        return key

    # -- stats ---------------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        """The two-tier stats, plus ``ai``: by operation, by text size, tokens saved."""
        return {**super().get_stats(), "ai": self._ai_snapshot()}

    async def get_cache_stats(self) -> dict[str, Any]:
        return {**await super().get_cache_stats(), "ai": self._ai_snapshot()}

    def _ai_snapshot(self) -> dict[str, Any]:
        return {
            **self._ai_stats.snapshot(),
            "text_hash_threshold": self.text_hash_threshold,
            "hash_algorithm": self.hash_algorithm,
            "operation_ttls": dict(self.operation_ttls),
        }
