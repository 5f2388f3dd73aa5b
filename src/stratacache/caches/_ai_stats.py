"""Counters for AI responses: per operation, per text-size tier, and tokens saved.

Plain bookkeeping with no I/O, so it is tested without Redis. Memory stays bounded
however many distinct operation names callers invent: past
:data:`MAX_TRACKED_OPERATIONS` the rest are counted together under
:data:`OTHER_OPERATIONS`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..errors import ValidationError

__all__ = [
    "DEFAULT_TEXT_SIZE_TIERS",
    "OVERFLOW_TIER",
    "AIStats",
    "tokens_of",
    "validate_text_size_tiers",
]

# Upper bounds in characters, inclusive; longer texts are OVERFLOW_TIER. A tweet,
# a page, a long article: the sizes where hashing cost and hit rates tend to differ.
DEFAULT_TEXT_SIZE_TIERS: Mapping[str, int] = MappingProxyType(
    {"small": 500, "medium": 5_000, "large": 50_000}
)
OVERFLOW_TIER = "xlarge"
MAX_TRACKED_OPERATIONS = 1000
OTHER_OPERATIONS = "(other)"
_OPERATION_COUNTERS = ("hits", "misses", "sets", "invalidations")
_TIER_COUNTERS = ("hits", "misses", "sets")  # invalidation is by operation, not size


def validate_text_size_tiers(value: object) -> dict[str, int]:
    """``{name: max characters}``, names non-empty, bounds positive and distinct.

    Returned sorted by bound; ``"xlarge"`` is reserved for texts above the largest.
    """
    if not isinstance(value, Mapping) or not value:
        raise ValidationError(
            "text_size_tiers must be a non-empty dictionary of tier name to maximum "
            f"characters, such as {dict(DEFAULT_TEXT_SIZE_TIERS)}",
            {"text_size_tiers_type": type(value).__name__},
        )
    for name, bound in value.items():
        if not isinstance(name, str) or not name.strip() or name == OVERFLOW_TIER:
            raise ValidationError(
                f"text_size_tiers keys must be non-empty strings other than "
                f"{OVERFLOW_TIER!r} (texts above every bound), got {name!r:.80}"
            )
        if type(bound) is not int or bound <= 0:
            raise ValidationError(
                f"text_size_tiers[{name!r}] must be a positive integer, got {bound!r:.80}"
            )
    if len(set(value.values())) != len(value):
        raise ValidationError("text_size_tiers bounds must be distinct")
    return dict(sorted(value.items(), key=lambda item: item[1]))


def tokens_of(response: object) -> int:
    """``response["metadata"]["tokens"]`` when it is a sane count, else 0."""
    if not isinstance(response, Mapping):
        return 0
    metadata = response.get("metadata")
    if not isinstance(metadata, Mapping):
        return 0
    tokens = metadata.get("tokens")
    if type(tokens) is int and tokens >= 0:
        return tokens
    if type(tokens) is float and math.isfinite(tokens) and tokens >= 0:
        return int(tokens)
    return 0


class AIStats:
    """Hits, misses, sets and tokens saved, by operation and by text-size tier."""

    def __init__(self, text_size_tiers: Mapping[str, int]) -> None:
        self.text_size_tiers = validate_text_size_tiers(text_size_tiers)
        self._operations: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._tiers: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def tier_of(self, text: str) -> str:
        """The name of the smallest tier that holds ``len(text)`` characters."""
        size = len(text)
        for name, bound in self.text_size_tiers.items():
            if size <= bound:
                return name
        return OVERFLOW_TIER

    def record(self, event: str, operation: str, text: str | None = None, tokens: int = 0) -> None:
        """Count one ``event`` (hits, misses, sets, invalidations) of ``operation``."""
        counters = self._operation(operation)
        counters[event] += 1
        counters["tokens_saved"] += tokens
        if text is not None:
            tier = self._tiers[self.tier_of(text)]
            tier[event] += 1
            tier["tokens_saved"] += tokens

    def add_invalidated(self, operation: str, removed: int) -> None:
        self._operation(operation)["invalidations"] += removed

    def snapshot(self) -> dict[str, Any]:
        """Plain dicts, safe to serialize: ``operations``, ``text_tiers``, totals."""
        operations = {
            name: _summary(counters, _OPERATION_COUNTERS)
            for name, counters in sorted(self._operations.items())
        }
        return {
            "operations": operations,
            "text_tiers": {
                name: _summary(self._tiers[name], _TIER_COUNTERS)
                for name in (*self.text_size_tiers, OVERFLOW_TIER)
            },
            "text_size_tiers": dict(self.text_size_tiers),
            "tokens_saved": sum(c["tokens_saved"] for c in self._operations.values()),
        }

    def _operation(self, operation: str) -> Counter[str]:
        if operation not in self._operations and len(self._operations) >= MAX_TRACKED_OPERATIONS:
            operation = OTHER_OPERATIONS
        return self._operations[operation]


def _summary(counters: Counter[str], names: tuple[str, ...]) -> dict[str, Any]:
    hits, misses = counters["hits"], counters["misses"]
    summary: dict[str, Any] = {name: counters[name] for name in names}
    summary["hit_rate"] = hits / (hits + misses) if hits + misses else 0.0
    summary["tokens_saved"] = counters["tokens_saved"]
    return summary
