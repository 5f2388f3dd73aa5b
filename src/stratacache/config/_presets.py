"""Named configurations (``CACHE_PRESET``): one word instead of a dozen settings.

Presets are frozen value objects; :meth:`CachePreset.to_config` gives the settings
dict :class:`~stratacache.config.CacheFactory` takes, so a preset is never more than
a starting point that explicit settings override.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ConfigurationError

__all__ = ["DEFAULT_PRESET", "PRESET_NAMES", "CachePreset", "describe_presets", "get_preset"]

DEFAULT_PRESET = "development"


@dataclass(frozen=True)
class CachePreset:
    """A named set of cache settings.

    ``enabled=False`` (the ``disabled`` preset) means no caching at all: the
    factory returns a :class:`~stratacache.config.NullCache`, whose reads always
    miss, rather than a small cache that would still serve stale data.
    """

    name: str
    description: str
    default_ttl: int
    memory_cache_size: int
    compression_threshold: int
    compression_level: int
    enabled: bool = True
    enable_ai_cache: bool = False
    text_hash_threshold: int | None = None
    # hash=False: a mapping is not hashable; the preset's name already identifies it.
    operation_ttls: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def __post_init__(self) -> None:
        # Read-only, so a preset shared by every caller cannot be changed by one.
        object.__setattr__(self, "operation_ttls", MappingProxyType(dict(self.operation_ttls)))

    def to_config(self) -> dict[str, Any]:
        """The factory settings this preset stands for (a fresh, mutable dict)."""
        config: dict[str, Any] = {
            "default_ttl": self.default_ttl,
            "memory_cache_size": self.memory_cache_size,
            "compression_threshold": self.compression_threshold,
            "compression_level": self.compression_level,
            "enable_ai_cache": self.enable_ai_cache,
        }
        if self.enable_ai_cache:
            config["text_hash_threshold"] = self.text_hash_threshold
            config["operation_ttls"] = dict(self.operation_ttls)
        return config

    def describe(self) -> dict[str, Any]:
        """Plain data for a table or ``--json`` output."""
        return {
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "default_ttl": self.default_ttl,
            "memory_cache_size": self.memory_cache_size,
            "compression_threshold": self.compression_threshold,
            "compression_level": self.compression_level,
            "enable_ai_cache": self.enable_ai_cache,
            "text_hash_threshold": self.text_hash_threshold,
            "operation_ttls": dict(self.operation_ttls),
        }


# Operation TTLs, in seconds, ordered by how long an answer stays right for the
# same input: a sentiment label is a near-deterministic classification, so it
# lives longest; summaries and key points are stable per text but change when
# prompts or models do; generated questions are meant to vary; a QA answer
# depends on the question as well and is the most likely to be re-asked after a
# prompt fix, so it is the shortest. Development keeps all of them short so a
# prompt change shows up within minutes; production favours the saved tokens.
_AI_DEVELOPMENT_TTLS = {
    "sentiment": 3600,
    "summarize": 1800,
    "key_points": 1800,
    "questions": 900,
    "qa": 600,
}
_AI_PRODUCTION_TTLS = {
    "sentiment": 86_400,
    "summarize": 43_200,
    "key_points": 28_800,
    "questions": 14_400,
    "qa": 7_200,
}

_PRESETS: dict[str, CachePreset] = {
    preset.name: preset
    for preset in (
        CachePreset(
            name="disabled",
            description="No caching: every read misses, nothing is stored.",
            default_ttl=300,
            memory_cache_size=10,
            compression_threshold=10_000,
            compression_level=1,
            enabled=False,
        ),
        CachePreset(
            name="minimal",
            description="A small cache for tiny services, scripts and CI.",
            default_ttl=900,
            memory_cache_size=25,
            compression_threshold=5_000,
            compression_level=1,
        ),
        CachePreset(
            name="simple",
            description="General-purpose defaults.",
            default_ttl=3600,
            memory_cache_size=100,
            compression_threshold=1_000,
            compression_level=6,
        ),
        CachePreset(
            name="development",
            description="Short TTLs, so changes show up quickly while you work.",
            default_ttl=600,
            memory_cache_size=50,
            compression_threshold=2_000,
            compression_level=3,
        ),
        CachePreset(
            name="production",
            description="Long TTLs, a large memory tier, strong compression.",
            default_ttl=7200,
            memory_cache_size=500,
            compression_threshold=500,
            compression_level=9,
        ),
        CachePreset(
            name="ai-development",
            description="AI response cache with short TTLs for iterating on prompts.",
            default_ttl=1800,
            memory_cache_size=100,
            compression_threshold=1_000,
            compression_level=6,
            enable_ai_cache=True,
            text_hash_threshold=500,
            operation_ttls=_AI_DEVELOPMENT_TTLS,
        ),
        CachePreset(
            name="ai-production",
            description="AI response cache with long TTLs, to save tokens.",
            default_ttl=14_400,
            memory_cache_size=1000,
            compression_threshold=300,
            compression_level=9,
            enable_ai_cache=True,
            text_hash_threshold=1000,
            operation_ttls=_AI_PRODUCTION_TTLS,
        ),
    )
}

PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)


def get_preset(name: str) -> CachePreset:
    """The preset called ``name`` (case and surrounding spaces ignored)."""
    key = name.strip().lower() if isinstance(name, str) else name
    preset = _PRESETS.get(key) if isinstance(key, str) else None
    if preset is None:
        raise ConfigurationError(
            f"unknown cache preset {name!r:.80}; valid presets: {', '.join(PRESET_NAMES)}",
            {"preset": repr(name)[:80], "valid": list(PRESET_NAMES)},
        )
    return preset


def describe_presets() -> list[dict[str, Any]]:
    """Every preset as plain data, in a stable order, for a CLI or docs to print."""
    return [preset.describe() for preset in _PRESETS.values()]
