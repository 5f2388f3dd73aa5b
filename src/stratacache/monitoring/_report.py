"""Turning a monitor's window into figures and advice: plain functions, no state.

:class:`~._monitor.CachePerformanceMonitor` gathers the slots of its retention window
into a :class:`Window` under its lock; everything here reads that copy, so building
a report neither holds the lock nor needs a cache, a clock or a loop to test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._histogram import Histogram

__all__ = [
    "OTHER",
    "TIER_ORDER",
    "Compression",
    "Invalidations",
    "KeyGeneration",
    "Settings",
    "Window",
    "hits_and_misses",
    "invalidation_stats",
    "memory_stats",
    "memory_warnings",
    "performance_stats",
    "recommendations",
]

OTHER: Final = "other"
"""The label that values past a cap are counted under."""
TIER_ORDER: Final = ("memory", "redis")
"""Tiers in lookup order: a miss in an earlier tier may be a hit in a later one."""
MB: Final = 1024 * 1024
_QUANTILES = (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99))
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}

SeriesKey = tuple[str, str, str, str]
"""(cache, operation, tier, result)."""


# -- bounded aggregates -------------------------------------------------------------------


class KeyGeneration:
    """Key-generation timings and text lengths of one interval (or a merged window)."""

    __slots__ = ("by_type", "latency", "slow", "text_max", "text_total")

    def __init__(self) -> None:
        self.latency = Histogram()
        self.text_total = 0
        self.text_max = 0
        self.slow = 0
        self.by_type: dict[str, int] = {}

    def merge(self, other: KeyGeneration) -> None:
        self.latency.merge(other.latency)
        self.text_total += other.text_total
        self.text_max = max(self.text_max, other.text_max)
        self.slow += other.slow
        for name, count in other.by_type.items():
            self.by_type[name] = self.by_type.get(name, 0) + count


class Compression:
    """Compression sizes, ratios and times of one interval (or a merged window)."""

    __slots__ = ("best", "compressed", "count", "original", "seconds", "slowest", "worst")

    def __init__(self) -> None:
        self.count = self.original = self.compressed = 0
        self.seconds = self.slowest = 0.0
        self.best = math.inf
        self.worst = 0.0

    def add(self, original: int, compressed: int, seconds: float) -> float:
        """Count one compression; returns its ratio (compressed / original)."""
        ratio = compressed / original if original > 0 else 1.0
        self.count += 1
        self.original += original
        self.compressed += compressed
        self.seconds += seconds
        self.slowest = max(self.slowest, seconds)
        self.best = min(self.best, ratio)
        self.worst = max(self.worst, ratio)
        return ratio

    def merge(self, other: Compression) -> None:
        self.count += other.count
        self.original += other.original
        self.compressed += other.compressed
        self.seconds += other.seconds
        self.slowest = max(self.slowest, other.slowest)
        self.best = min(self.best, other.best)
        self.worst = max(self.worst, other.worst)


class Invalidations:
    """Invalidation events of one (type, pattern) in one interval (or a merged window)."""

    __slots__ = ("events", "keys", "seconds", "slowest")

    def __init__(self) -> None:
        self.events = self.keys = 0
        self.seconds = self.slowest = 0.0

    def add(self, keys: int, seconds: float) -> None:
        self.events += 1
        self.keys += keys
        self.seconds += seconds
        self.slowest = max(self.slowest, seconds)

    def merge(self, other: Invalidations) -> None:
        self.events += other.events
        self.keys += other.keys
        self.seconds += other.seconds
        self.slowest = max(self.slowest, other.slowest)


# -- the inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The monitor's configuration a report depends on."""

    retention_hours: float
    sample_every: int
    cache_operation_threshold: float
    key_generation_threshold: float
    memory_warning_threshold_bytes: float
    memory_critical_threshold_bytes: float
    invalidation_rate_warning_per_hour: float
    invalidation_rate_critical_per_hour: float

    def per_hour(self, events: int) -> float:
        """Events in the window as a rate; a window under an hour gives a lower bound."""
        return events / max(self.retention_hours, 1.0)


@dataclass
class Window:
    """The live slots of a monitor's window, merged; and its lifetime counts."""

    counts: dict[SeriesKey, int] = field(default_factory=dict)
    latency: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    """``(operation, tier) -> timed samples``."""
    slow: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    key_generation: KeyGeneration = field(default_factory=KeyGeneration)
    compression: Compression = field(default_factory=Compression)
    invalidations: dict[tuple[str, str], Invalidations] = field(default_factory=dict)
    """``(invalidation type, pattern) -> events``."""
    last_hour_invalidations: int = 0
    memory_history: list[tuple[float, float]] = field(default_factory=list)
    """``(hours, total bytes)`` at the last reading of each interval, oldest first."""
    gauges: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    """``(cache, tier) -> {name: level}`` now."""
    lifetime: dict[SeriesKey, int] = field(default_factory=dict)
    lifetime_invalidations: tuple[int, int] = (0, 0)
    lifetime_key_generations: int = 0
    uptime_seconds: float = 0.0


# -- figures --------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _percent(part: float, whole: float) -> float:
    return part / whole * 100.0 if whole else 0.0


def _tier_rank(tier: str) -> tuple[int, str]:
    return (TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER), tier)


def latency_stats(latency: Histogram) -> dict[str, Any]:
    """Samples, mean, extremes (seconds) and p50/p95/p99 (milliseconds) of ``latency``."""
    stats: dict[str, Any] = {
        "samples": latency.count,
        "avg_duration": latency.mean,
        "min_duration": latency.low if latency.count else 0.0,
        "max_duration": latency.high,
        "avg_ms": _ms(latency.mean),
        "max_ms": _ms(latency.high),
    }
    for name, fraction in _QUANTILES:
        stats[name] = _ms(latency.quantile(fraction))
    return stats


def hits_and_misses(counts: Mapping[SeriesKey, int]) -> tuple[int, int]:
    """Cache-level hits and misses from per-tier lookups.

    A lookup that misses the memory tier and goes on to Redis is counted once: a
    hit if Redis had it, else a miss. So, per cache, misses are the first tier's
    misses less the hits of the tiers behind it.
    """
    per_cache: dict[str, dict[str, list[int]]] = {}
    for (cache, _operation, tier, result), count in counts.items():
        if result == "hit" or result == "miss":
            pair = per_cache.setdefault(cache, {}).setdefault(tier, [0, 0])
            pair[result == "miss"] += count
    hits = misses = 0
    for tiers in per_cache.values():
        front = min(tiers, key=_tier_rank)
        cache_hits = sum(pair[0] for pair in tiers.values())
        hits += cache_hits
        misses += max(0, tiers[front][1] - (cache_hits - tiers[front][0]))
    return hits, misses


def _operation_stats(window: Window, settings: Settings) -> dict[str, Any]:
    results: dict[str, dict[str, int]] = {}
    tier_counts: dict[tuple[str, str], int] = {}
    for (_cache, operation, tier, result), count in window.counts.items():
        per_result = results.setdefault(operation, {})
        per_result[result] = per_result.get(result, 0) + count
        tier_counts[operation, tier] = tier_counts.get((operation, tier), 0) + count
    pairs = set(tier_counts) | set(window.latency)
    everything = Histogram()
    by_operation: dict[str, dict[str, Any]] = {}
    for operation in sorted({op for op, _tier in pairs}):
        merged = Histogram()
        by_tier: dict[str, Any] = {}
        for tier in sorted((t for op, t in pairs if op == operation), key=_tier_rank):
            histogram = window.latency.get((operation, tier), Histogram())
            merged.merge(histogram)
            by_tier[tier] = {"count": tier_counts.get((operation, tier), 0)}
            by_tier[tier].update(latency_stats(histogram))
        everything.merge(merged)
        per_result = results.get(operation, {})
        count = sum(per_result.values())
        by_operation[operation] = {
            "count": count,
            "hits": per_result.get("hit", 0),
            "misses": per_result.get("miss", 0),
            "errors": per_result.get("error", 0),
            **latency_stats(merged),
            "estimated_total_duration": merged.mean * count,
            "slow_operations": window.slow.get(operation, 0),
            "by_tier": by_tier,
        }
    return {
        "total_operations": sum(window.counts.values()),
        **latency_stats(everything),
        "median_duration": everything.quantile(0.5),
        "slow_operations": sum(window.slow.values()),
        "slow_threshold_seconds": settings.cache_operation_threshold,
        "latency_sampled": settings.sample_every > 1,
        "by_operation_type": by_operation,
    }


def _tier_stats(counts: Mapping[SeriesKey, int]) -> dict[str, Any]:
    tiers: dict[str, dict[str, Any]] = {}
    for (_cache, _operation, tier, result), count in counts.items():
        stats = tiers.setdefault(tier, {"operations": 0, "hits": 0, "misses": 0})
        stats["operations"] += count
        if result == "hit":
            stats["hits"] += count
        elif result == "miss":
            stats["misses"] += count
    for stats in tiers.values():
        stats["hit_rate"] = _percent(stats["hits"], stats["hits"] + stats["misses"])
    return dict(sorted(tiers.items(), key=lambda item: _tier_rank(item[0])))


def _key_generation_stats(window: Window, settings: Settings) -> dict[str, Any]:
    stats = window.key_generation
    latency = stats.latency
    return {
        "total_operations": latency.count,
        **latency_stats(latency),
        "median_duration": latency.quantile(0.5),
        "avg_text_length": stats.text_total / latency.count if latency.count else 0.0,
        "max_text_length": stats.text_max,
        "slow_operations": stats.slow,
        "slow_threshold_seconds": settings.key_generation_threshold,
        "by_operation_type": dict(sorted(stats.by_type.items())),
        "lifetime_operations": window.lifetime_key_generations,
    }


def _compression_stats(stats: Compression) -> dict[str, Any]:
    saved = stats.original - stats.compressed
    return {
        "total_operations": stats.count,
        "avg_compression_ratio": stats.compressed / stats.original if stats.original else 0.0,
        "best_compression_ratio": stats.best if stats.count else 0.0,
        "worst_compression_ratio": stats.worst,
        "avg_compression_time": stats.seconds / stats.count if stats.count else 0.0,
        "max_compression_time": stats.slowest,
        "total_bytes_processed": stats.original,
        "total_bytes_saved": saved,
        "overall_savings_percent": _percent(saved, stats.original),
    }


def memory_stats(window: Window, settings: Settings) -> dict[str, Any]:
    """Cache memory now (total and by tier), the thresholds and the trend over the window."""
    total = entries = 0.0
    by_tier: dict[str, dict[str, float]] = {}
    for (_cache, tier), levels in window.gauges.items():
        into = by_tier.setdefault(tier, {"memory_usage_bytes": 0.0, "entries": 0.0})
        for name in ("memory_usage_bytes", "entries"):
            into[name] += levels.get(name, 0.0)
        total += levels.get("memory_usage_bytes", 0.0)
        entries += levels.get("entries", 0.0)
    sizes = [size for _hours, size in window.memory_history]
    trends: dict[str, Any] = {
        "readings": len(sizes),
        "avg_total_cache_size_mb": sum(sizes) / len(sizes) / MB if sizes else 0.0,
        "max_total_cache_size_mb": max(sizes) / MB if sizes else 0.0,
    }
    if len(sizes) >= 2:
        hours = window.memory_history[-1][0] - window.memory_history[0][0]
        if hours > 0:
            trends["growth_rate_mb_per_hour"] = (sizes[-1] - sizes[0]) / MB / hours
    return {
        "current": {
            "total_cache_size_bytes": total,
            "total_cache_size_mb": total / MB,
            "cache_entry_count": entries,
            "avg_entry_size_bytes": total / entries if entries else 0.0,
            "by_tier": dict(sorted(by_tier.items(), key=lambda item: _tier_rank(item[0]))),
        },
        "thresholds": {
            "warning_threshold_mb": settings.memory_warning_threshold_bytes / MB,
            "critical_threshold_mb": settings.memory_critical_threshold_bytes / MB,
            "warning_threshold_reached": total >= settings.memory_warning_threshold_bytes,
            "critical_threshold_reached": total >= settings.memory_critical_threshold_bytes,
        },
        "trends": trends,
    }


def memory_warnings(stats: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """Warnings when cache memory (``memory_stats(...)``) passes a threshold."""
    total = stats["current"]["total_cache_size_bytes"]
    for severity, limit, advice in (
        (
            "critical",
            settings.memory_critical_threshold_bytes,
            [
                "lower max_size or set max_bytes on the memory tier",
                "shorten the TTLs of large values",
                "compress large values (compression_threshold)",
            ],
        ),
        (
            "warning",
            settings.memory_warning_threshold_bytes,
            [
                "watch memory_usage.trends.growth_rate_mb_per_hour",
                "consider max_bytes on the memory tier",
            ],
        ),
    ):
        if total >= limit:
            return [
                {
                    "severity": severity,
                    "message": f"cache memory is {total / MB:.1f} MB, over the {severity} "
                    f"threshold of {limit / MB:.1f} MB",
                    "recommendations": advice,
                }
            ]
    return []


def invalidation_stats(window: Window, settings: Settings) -> dict[str, Any]:
    """Invalidations over the window: rates, alert level, common patterns, efficiency.

    ``rates.last_hour`` (events in the intervals of the last hour) sets the alert
    level; ``average_per_hour`` spreads the window's events over its length.
    """
    events = keys = 0
    seconds = slowest = 0.0
    patterns: dict[str, int] = {}
    pattern_keys: dict[str, int] = {}
    types: dict[str, int] = {}
    for (kind, pattern), stats in window.invalidations.items():
        events += stats.events
        keys += stats.keys
        seconds += stats.seconds
        slowest = max(slowest, stats.slowest)
        patterns[pattern] = patterns.get(pattern, 0) + stats.events
        pattern_keys[pattern] = pattern_keys.get(pattern, 0) + stats.keys
        types[kind] = types.get(kind, 0) + stats.events
    last_hour = window.last_hour_invalidations
    level = "normal"
    if last_hour >= settings.invalidation_rate_critical_per_hour:
        level = "critical"
    elif last_hour >= settings.invalidation_rate_warning_per_hour:
        level = "warning"
    common = sorted(patterns.items(), key=lambda item: (-item[1], item[0]))[:10]
    return {
        "total_invalidations": events,
        "total_keys_invalidated": keys,
        "lifetime_invalidations": window.lifetime_invalidations[0],
        "lifetime_keys_invalidated": window.lifetime_invalidations[1],
        "rates": {
            "last_hour": last_hour,
            "in_window": events,
            "average_per_hour": settings.per_hour(events),
        },
        "thresholds": {
            "warning_per_hour": settings.invalidation_rate_warning_per_hour,
            "critical_per_hour": settings.invalidation_rate_critical_per_hour,
            "current_alert_level": level,
        },
        "patterns": {
            "most_common_patterns": dict(common),
            "keys_by_pattern": {pattern: pattern_keys[pattern] for pattern, _ in common},
            "invalidation_types": dict(sorted(types.items())),
        },
        "efficiency": {
            "avg_keys_per_invalidation": keys / events if events else 0.0,
            "avg_duration": seconds / events if events else 0.0,
            "max_duration": slowest,
        },
    }


def performance_stats(
    window: Window, settings: Settings, monitor: Mapping[str, Any], timestamp: str
) -> dict[str, Any]:
    """The whole report :meth:`CachePerformanceMonitor.get_performance_stats` returns."""
    hits, misses = hits_and_misses(window.counts)
    life_hits, life_misses = hits_and_misses(window.lifetime)
    return {
        "timestamp": timestamp,
        "retention_hours": settings.retention_hours,
        "cache_hit_rate": _percent(hits, hits + misses),
        "total_cache_operations": sum(window.counts.values()),
        "cache_hits": hits,
        "cache_misses": misses,
        "sample_every": settings.sample_every,
        "cache_operations": _operation_stats(window, settings),
        "by_tier": _tier_stats(window.counts),
        "evictions": window.counters.get("evictions", 0),
        "expirations": window.counters.get("expirations", 0),
        "key_generation": _key_generation_stats(window, settings),
        "compression": _compression_stats(window.compression),
        "memory_usage": memory_stats(window, settings),
        "invalidation": invalidation_stats(window, settings),
        "lifetime": {
            "seconds": window.uptime_seconds,
            "total_cache_operations": sum(window.lifetime.values()),
            "cache_hits": life_hits,
            "cache_misses": life_misses,
            "cache_hit_rate": _percent(life_hits, life_hits + life_misses),
        },
        "monitor": dict(monitor),
    }


# -- advice ----------------------------------------------------------------------------------


def _advice(severity: str, issue: str, message: str, suggestions: list[str]) -> dict[str, Any]:
    return {"severity": severity, "issue": issue, "message": message, "suggestions": suggestions}


def _invalidation_advice(stats: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    invalidation = stats["invalidation"]
    level = invalidation["thresholds"]["current_alert_level"]
    events = invalidation["total_invalidations"]
    if level != "normal":
        found.append(
            _advice(
                level,
                "High invalidation frequency",
                f"the cache was invalidated {invalidation['rates']['last_hour']} times in the "
                "last hour",
                [
                    "invalidate by tag instead of broad patterns",
                    "check whether the triggers fire more often than the data changes",
                    "consider longer TTLs instead of frequent invalidation",
                ],
            )
        )
    patterns = invalidation["patterns"]["most_common_patterns"]
    for pattern, count in list(patterns.items())[:5]:
        per_hour = settings.per_hour(count)
        if pattern != OTHER and per_hour >= settings.invalidation_rate_warning_per_hour / 5:
            severe = per_hour >= settings.invalidation_rate_warning_per_hour
            found.append(
                _advice(
                    "warning" if severe else "info",
                    "Frequent pattern invalidation",
                    f"pattern {pattern!r} invalidated {per_hour:.0f} times/hour — consider tags "
                    "or a longer TTL",
                    [
                        f"tag the entries {pattern!r} matches and use invalidate_tags",
                        "lengthen the TTL if the data tolerates it",
                        "narrow the pattern so fewer entries go each time",
                    ],
                )
            )
    if events >= 10 and patterns:
        pattern, count = next(iter(patterns.items()))
        if pattern != OTHER and count > events / 2:
            found.append(
                _advice(
                    "info",
                    "Dominant invalidation pattern",
                    f"pattern {pattern!r} accounts for {count} of {events} invalidations",
                    [f"review what triggers invalidations of {pattern!r}"],
                )
            )
    average = invalidation["efficiency"]["avg_keys_per_invalidation"]
    if events >= 10 and average < 1.0:
        found.append(
            _advice(
                "info",
                "Invalidations find little to remove",
                f"{average:.2f} keys removed per invalidation on average",
                [
                    "skip invalidations of keys that were never cached",
                    "check that patterns match how keys are built (namespace, version)",
                ],
            )
        )
    elif events >= 10 and average > 100.0:
        found.append(
            _advice(
                "warning",
                "Invalidations remove many keys",
                f"{average:.0f} keys removed per invalidation on average",
                [
                    "use narrower patterns or tags to keep unrelated entries",
                    "split broad invalidations into targeted ones",
                ],
            )
        )
    return found


def recommendations(stats: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """Advice from a :func:`performance_stats` report, most severe first.

    Each item: ``severity`` (``critical`` / ``warning`` / ``info``), ``issue``,
    ``message`` and ``suggestions``.
    """
    found = _invalidation_advice(stats, settings)
    lookups = stats["cache_hits"] + stats["cache_misses"]
    if lookups >= 100 and stats["cache_hit_rate"] < 50.0:
        found.append(
            _advice(
                "warning",
                "Low hit rate",
                f"hit rate {stats['cache_hit_rate']:.1f}% over {lookups} lookups is below 50% "
                "— the cache saves less work than it could",
                [
                    "raise max_size if evictions are high",
                    "lengthen TTLs if entries expire before they are read again",
                    "check that keys are stable (no timestamps or random parts)",
                    "warm frequently read keys at startup",
                ],
            )
        )
    sets = stats["cache_operations"]["by_operation_type"].get("set", {}).get("count", 0)
    if sets >= 100 and stats["evictions"] > sets / 10:
        found.append(
            _advice(
                "info",
                "Frequent evictions",
                f"{stats['evictions']} evictions for {sets} sets in the window",
                ["raise max_size (or max_bytes) so entries live until they expire"],
            )
        )
    found.sort(key=lambda item: _SEVERITY_RANK.get(item["severity"], 3))
    return found
