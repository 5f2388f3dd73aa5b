"""The management API's request and response bodies (they make its OpenAPI schema).

Reports that come from a cache or a monitor (stats, recommendations) name the
fields the contract fixes and allow more (``extra="allow"``): a cache may report
more than another, and the schema stays true for every one. Nothing here ever
carries a cached value or a credential.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "CONTROL_FREE",
    "MAX_PATTERN_CHARS",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "InvalidateResponse",
    "InvalidationStatsResponse",
    "KeyDeleteResponse",
    "KeysPage",
    "MemoryStatus",
    "MetricsResponse",
    "PerformanceSummary",
    "RecommendationsResponse",
    "RedisStatus",
    "StatusResponse",
    "TagsInvalidateRequest",
    "TagsInvalidateResponse",
    "TenantKeys",
]

MAX_PATTERN_CHARS = 256
"""The longest pattern the API takes (the library takes up to 1024)."""
MAX_TAGS = 100
CONTROL_FREE = r"^[^\x00-\x1f\x7f-\x9f]*$"
"""No control characters (Unicode Cc): they have no place in keys, and would let a
request forge lines in logs that record patterns."""

RedisState = Literal["connected", "disconnected", "disabled", "error"]
MemoryState = Literal["active", "disabled", "closed"]

Tag = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=CONTROL_FREE)]


class _Open(BaseModel):
    """A report with fixed fields plus whatever else the cache or monitor adds."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong and how to put it right.")


class ErrorResponse(BaseModel):
    """The body of 401, 403, 404, 501 and 503 answers."""

    detail: ErrorDetail


class RedisStatus(_Open):
    status: RedisState = Field(
        description="connected, disconnected (unreachable), disabled (no Redis tier) or "
        "error (Redis answers with errors such as OOM or READONLY)"
    )
    circuit: str | None = Field(None, description="the circuit breaker: closed, open, half-open")
    errors: int | None = Field(None, description="failed Redis operations since start")
    errors_by_class: dict[str, int] = Field(default_factory=dict)
    invalidation_channel: str | None = Field(
        None, description="two-tier caches: the invalidation channel, connected or down"
    )


class MemoryStatus(_Open):
    status: MemoryState
    entries: int | None = None
    max_size: int | None = None
    memory_usage_bytes: int | None = None


class PerformanceSummary(BaseModel):
    source: Literal["monitor", "cache_stats"] = Field(
        description="monitor: the cache's performance monitor; cache_stats: its own counters"
    )
    hits: int
    misses: int
    hit_rate: float = Field(description="hits / (hits + misses), a fraction from 0 to 1")
    total_operations: int = Field(description="operations since the cache (or monitor) started")
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    evictions: int | None = None


class TenantKeys(BaseModel):
    tenant_id: str
    keys: int | None = Field(None, description="live keys, where counting them is cheap")


class StatusResponse(BaseModel):
    """Same fields on every call, whatever the cache; values absent are ``null``."""

    backend: str | None = Field(None, description="memory, redis, two-tier, tenant ...")
    preset: str | None = Field(None, description="the CACHE_PRESET the cache was built from")
    redis: RedisStatus
    memory: MemoryStatus
    performance: PerformanceSummary
    tenants: list[TenantKeys] | None = Field(
        None, description="keys per tenant, to authenticated callers, when the cache reports them"
    )
    timestamp: str = Field(description="ISO 8601, UTC")


class MetricsResponse(_Open):
    """The monitor's ``get_performance_stats()`` (or the cache's counters without one)."""

    source: Literal["monitor", "cache_stats"]
    timestamp: str
    retention_hours: float | None
    cache_hit_rate: float = Field(description="a percentage of lookups, 0 to 100")
    total_cache_operations: int
    cache_hits: int
    cache_misses: int


class InvalidationStatsResponse(_Open):
    source: Literal["monitor", "cache_stats"]
    total_invalidations: int | None = Field(description="events; null without a monitor")
    total_keys_invalidated: int | None


class RecommendationsResponse(BaseModel):
    recommendations: list[dict[str, Any]]


class InvalidateResponse(BaseModel):
    message: str = Field(examples=["Cache invalidated for pattern: user:*"])
    pattern: str
    keys_invalidated: int


class TagsInvalidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] = Field(min_length=1, max_length=MAX_TAGS, examples=[["user:5", "catalog"]])


class TagsInvalidateResponse(BaseModel):
    message: str
    tags: list[str]
    keys_invalidated: int


class KeyDeleteResponse(BaseModel):
    message: str
    deleted: bool = Field(description="false when the key was not cached (nothing to do)")


class KeysPage(BaseModel):
    pattern: str
    keys: list[str] = Field(description="the caller's keys (namespace stripped), never values")
    count: int
    limit: int
    next_cursor: str | None = Field(
        description="pass as cursor= for the next page; null when the scan is complete"
    )


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="ok; degraded: Redis is down and the cache serves from memory "
        "(fail-safe); unavailable: the cache is closed or not started"
    )
    redis: RedisState
    memory: MemoryState
