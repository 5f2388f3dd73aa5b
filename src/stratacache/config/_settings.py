"""Cache settings from the environment, read only when asked.

=======================  =============================================================
``CACHE_PRESET``         a preset name (default ``development``); see ``describe_presets()``
``CACHE_REDIS_URL``      the Redis URL; wins over ``REDIS_URL``. Neither: memory only
``ENABLE_AI_CACHE``      true/false: override the preset's choice of the AI cache
``CACHE_CUSTOM_CONFIG``  a JSON object of factory settings that override the preset
``API_KEY``              the management API key
``ADDITIONAL_API_KEYS``  more keys, comma-separated (blanks are ignored)
=======================  =============================================================

Nothing is read at import time: build :class:`CacheSettings` (``os.environ``) or call
:func:`load_settings` with a mapping, which reads only that mapping — what tests
want. Variable names are case-sensitive and blank values count as unset, so
``CACHE_REDIS_URL=`` in a compose file falls through to ``REDIS_URL``. Every
problem is a :class:`ConfigurationError` naming the variable. API keys and Redis
passwords never appear in ``repr()`` or ``str()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..errors import ConfigurationError
from ._presets import DEFAULT_PRESET, CachePreset, get_preset
from ._redact import redact_url

__all__ = ["ENVIRONMENT_VARIABLES", "CacheSettings", "load_settings"]

ENVIRONMENT_VARIABLES = (
    "CACHE_PRESET",
    "CACHE_REDIS_URL",
    "REDIS_URL",
    "ENABLE_AI_CACHE",
    "CACHE_CUSTOM_CONFIG",
    "API_KEY",
    "ADDITIONAL_API_KEYS",
)


class CacheSettings(BaseSettings):
    """The cache's environment variables, validated (see the module docstring)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    cache_preset: str = Field(DEFAULT_PRESET, validation_alias="CACHE_PRESET")
    cache_redis_url: str | None = Field(None, validation_alias="CACHE_REDIS_URL", repr=False)
    redis_url: str | None = Field(None, validation_alias="REDIS_URL", repr=False)
    enable_ai_cache: bool | None = Field(None, validation_alias="ENABLE_AI_CACHE")
    # Kept as the JSON text (a str field is never JSON-decoded by the settings
    # source, whose errors would not say where the JSON is broken); checked below.
    cache_custom_config: str | None = Field(
        None, validation_alias="CACHE_CUSTOM_CONFIG", repr=False
    )
    api_key: SecretStr | None = Field(None, validation_alias="API_KEY", repr=False)
    additional_api_keys: SecretStr | None = Field(
        None, validation_alias="ADDITIONAL_API_KEYS", repr=False
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except PydanticValidationError as exc:
            raise _configuration_error(exc) from None

    @field_validator(
        "cache_redis_url", "redis_url", "enable_ai_cache", "cache_custom_config", "api_key",
        "additional_api_keys", mode="before",
    )  # fmt: skip
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cache_preset", mode="before")
    @classmethod
    def _known_preset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return DEFAULT_PRESET
        return get_preset(value).name  # ConfigurationError names the valid ones

    @field_validator("cache_custom_config")
    @classmethod
    def _json_object(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_custom_config(value)  # raises ConfigurationError saying where
        return value

    # -- what callers use ------------------------------------------------------------

    @property
    def preset(self) -> CachePreset:
        return get_preset(self.cache_preset)

    @property
    def resolved_redis_url(self) -> str | None:
        """``CACHE_REDIS_URL`` if set, else ``REDIS_URL``, else ``None`` (memory only)."""
        return self.cache_redis_url or self.redis_url

    @property
    def custom_config(self) -> dict[str, Any]:
        """``CACHE_CUSTOM_CONFIG`` parsed (``{}`` when unset)."""
        if self.cache_custom_config is None:
            return {}
        return _parse_custom_config(self.cache_custom_config)

    def all_api_keys(self) -> list[str]:
        """``API_KEY`` then each of ``ADDITIONAL_API_KEYS``: stripped, no blanks, no repeats."""
        keys = [self.api_key.get_secret_value()] if self.api_key else []
        if self.additional_api_keys:
            keys += self.additional_api_keys.get_secret_value().split(",")
        return list(dict.fromkeys(key.strip() for key in keys if key.strip()))

    def cache_config(self) -> dict[str, Any]:
        """The factory settings: the preset, then the variables, then CACHE_CUSTOM_CONFIG."""
        config = self.preset.to_config()
        if self.resolved_redis_url is not None:
            config["redis_url"] = self.resolved_redis_url
        if self.enable_ai_cache is not None:
            config["enable_ai_cache"] = self.enable_ai_cache
        config.update(self.custom_config)
        return config

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield from super().__repr_args__()
        url = self.resolved_redis_url
        yield "redis_url", None if url is None else redact_url(url)
        yield "custom_config_keys", sorted(self.custom_config)
        yield "api_keys", f"<{len(self.all_api_keys())} configured>"


def load_settings(environ: Mapping[str, str] | None = None) -> CacheSettings:
    """Read the settings from ``environ`` (only that mapping), or from ``os.environ``."""
    if environ is None:
        return CacheSettings()
    if not isinstance(environ, Mapping):
        raise ConfigurationError(f"environ must be a mapping, not {type(environ).__name__}")
    # Every variable is passed, blank when absent (blank means unset): arguments
    # outrank the environment source, so os.environ cannot fill any gap.
    return CacheSettings(**{name: environ.get(name, "") for name in ENVIRONMENT_VARIABLES})


def _parse_custom_config(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"CACHE_CUSTOM_CONFIG is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}; set it to a JSON object such as "
            '{"default_ttl": 600, "memory_cache_size": 200}',
            {"variable": "CACHE_CUSTOM_CONFIG", "line": exc.lineno, "column": exc.colno},
        ) from None
    if not isinstance(parsed, dict):
        raise ConfigurationError(
            "CACHE_CUSTOM_CONFIG must be a JSON object of settings such as "
            f'{{"default_ttl": 600}}, not a JSON {_json_kind(parsed)}',
            {"variable": "CACHE_CUSTOM_CONFIG"},
        )
    return parsed


def _json_kind(value: object) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


_BOOLEAN = "must be true or false (1/0, yes/no and on/off also work)"
_HINTS = {"bool_parsing": _BOOLEAN, "bool_type": _BOOLEAN}


def _configuration_error(exc: PydanticValidationError) -> ConfigurationError:
    """Name each variable at fault; never echo a value (it may be a secret)."""
    problems = {
        ".".join(str(part) for part in error["loc"]) or "settings": _HINTS.get(
            error["type"], error["msg"]
        )
        for error in exc.errors()
    }
    return ConfigurationError(
        "invalid cache settings: "
        + "; ".join(f"{name}: {message}" for name, message in problems.items()),
        {"problems": problems},
    )
