"""Configuration: presets, settings from the environment, and ``CacheFactory``.

The only layer besides the edges (web, CLI) that reads the environment, and only
when asked: :func:`load_settings` / :meth:`CacheFactory.from_env`.
"""

from ._factory import CacheFactory
from ._null import NullCache
from ._presets import PRESET_NAMES, CachePreset, describe_presets, get_preset
from ._redact import redact_url
from ._settings import CacheSettings, load_settings

__all__ = [
    "PRESET_NAMES",
    "CacheFactory",
    "CachePreset",
    "CacheSettings",
    "NullCache",
    "describe_presets",
    "get_preset",
    "load_settings",
    "redact_url",
]
