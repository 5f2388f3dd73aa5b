"""Settings from the environment: read only when asked, every problem named."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stratacache import ConfigurationError
from stratacache.config import CacheSettings, get_preset, load_settings

_VARIABLES = (
    "CACHE_PRESET",
    "CACHE_REDIS_URL",
    "REDIS_URL",
    "ENABLE_AI_CACHE",
    "CACHE_CUSTOM_CONFIG",
    "API_KEY",
    "ADDITIONAL_API_KEYS",
)


def test_an_empty_environment_means_development_without_redis() -> None:
    settings = load_settings({})
    assert settings.preset is get_preset("development")
    assert settings.resolved_redis_url is None
    assert settings.enable_ai_cache is None
    assert settings.custom_config == {}
    assert settings.all_api_keys() == []
    assert settings.cache_config() == get_preset("development").to_config()


def test_an_explicit_mapping_ignores_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://from-os-environ:6379")
    monkeypatch.setenv("CACHE_PRESET", "production")
    settings = load_settings({"CACHE_PRESET": "minimal"})
    assert settings.resolved_redis_url is None
    assert settings.preset.name == "minimal"


def test_without_a_mapping_os_environ_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CACHE_PRESET", "ai-production")
    monkeypatch.setenv("REDIS_URL", "redis://env-host:6379/2")
    monkeypatch.setenv("ENABLE_AI_CACHE", "false")
    for settings in (load_settings(), CacheSettings()):
        assert settings.preset.name == "ai-production"
        assert settings.resolved_redis_url == "redis://env-host:6379/2"
        assert settings.enable_ai_cache is False


def test_importing_the_package_reads_nothing() -> None:
    # A broken environment must not break `import`: settings are read when asked.
    env = {**os.environ, "CACHE_PRESET": "no-such-preset", "CACHE_CUSTOM_CONFIG": "{"}
    code = (
        "import stratacache.config as c\n"
        "try:\n    c.load_settings()\nexcept Exception as e:\n    print(type(e).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "ConfigurationError"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"CACHE_REDIS_URL": "redis://a:1", "REDIS_URL": "redis://b:2"}, "redis://a:1"),
        ({"REDIS_URL": "redis://b:2"}, "redis://b:2"),
        ({"CACHE_REDIS_URL": "redis://a:1"}, "redis://a:1"),
        ({"CACHE_REDIS_URL": "  ", "REDIS_URL": "redis://b:2"}, "redis://b:2"),
        ({"CACHE_REDIS_URL": "", "REDIS_URL": ""}, None),
    ],
)
def test_cache_redis_url_wins_and_blank_means_unset(
    environ: dict[str, str], expected: str | None
) -> None:
    settings = load_settings(environ)
    assert settings.resolved_redis_url == expected
    assert settings.cache_config().get("redis_url") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("1", True), ("yes", True), ("false", False), ("0", False), ("", None)],
)
def test_enable_ai_cache_is_a_boolean(raw: str, expected: bool | None) -> None:
    assert load_settings({"ENABLE_AI_CACHE": raw}).enable_ai_cache is expected


def test_a_bad_boolean_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"ENABLE_AI_CACHE": "maybe"})
    assert "ENABLE_AI_CACHE" in raised.value.message
    assert "true or false" in raised.value.message
    assert "ENABLE_AI_CACHE" in raised.value.context["problems"]


def test_enable_ai_cache_overrides_the_preset_either_way() -> None:
    on = load_settings({"CACHE_PRESET": "simple", "ENABLE_AI_CACHE": "true"}).cache_config()
    off = load_settings({"CACHE_PRESET": "ai-production", "ENABLE_AI_CACHE": "no"}).cache_config()
    assert on["enable_ai_cache"] is True
    assert off["enable_ai_cache"] is False


def test_an_unknown_preset_names_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"CACHE_PRESET": "turbo"})
    assert "turbo" in raised.value.message
    assert "ai-production" in raised.value.message
    assert "disabled" in raised.value.message


def test_the_preset_name_is_normalised() -> None:
    assert load_settings({"CACHE_PRESET": " AI-Production "}).cache_preset == "ai-production"
    assert load_settings({"CACHE_PRESET": ""}).cache_preset == "development"


def test_custom_config_overrides_the_preset_and_the_variables() -> None:
    settings = load_settings(
        {
            "CACHE_PRESET": "production",
            "CACHE_REDIS_URL": "redis://a:1",
            "ENABLE_AI_CACHE": "true",
            "CACHE_CUSTOM_CONFIG": '{"default_ttl": 42, "redis_url": "redis://c:3", '
            '"operation_ttls": {"qa": 5}}',
        }
    )
    config = settings.cache_config()
    assert config["default_ttl"] == 42
    assert config["redis_url"] == "redis://c:3"
    assert config["operation_ttls"] == {"qa": 5}
    assert config["memory_cache_size"] == 500  # from the preset
    assert config["enable_ai_cache"] is True  # from ENABLE_AI_CACHE
    assert settings.custom_config == {
        "default_ttl": 42,
        "redis_url": "redis://c:3",
        "operation_ttls": {"qa": 5},
    }


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ('{"default_ttl": 600,', "line 1, column 21"),
        ('{\n  "default_ttl": 600\n  "memory_cache_size": 5\n}', "line 3, column 3"),
        ("{'default_ttl': 600}", "line 1, column 2"),
        ("not json", "line 1, column 1"),
    ],
)
def test_broken_json_says_which_variable_and_where(raw: str, where: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"CACHE_CUSTOM_CONFIG": raw})
    assert raised.value.message.startswith("CACHE_CUSTOM_CONFIG is not valid JSON")
    assert where in raised.value.message
    assert raised.value.context["variable"] == "CACHE_CUSTOM_CONFIG"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [("[1, 2]", "array"), ('"text"', "string"), ("3", "number"), ("null", "null")],
)
def test_custom_config_must_be_an_object(raw: str, kind: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"CACHE_CUSTOM_CONFIG": raw})
    assert "CACHE_CUSTOM_CONFIG must be a JSON object" in raised.value.message
    assert f"not a JSON {kind}" in raised.value.message


def test_broken_json_in_os_environ_is_a_configuration_error_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CACHE_CUSTOM_CONFIG", "{oops")
    with pytest.raises(ConfigurationError, match="CACHE_CUSTOM_CONFIG is not valid JSON"):
        CacheSettings()


def test_api_keys_combine_drop_blanks_and_repeats() -> None:
    settings = load_settings({"API_KEY": " main ", "ADDITIONAL_API_KEYS": "k1, ,k2,,main, k1 ,"})
    assert settings.all_api_keys() == ["main", "k1", "k2"]
    assert load_settings({"ADDITIONAL_API_KEYS": "only"}).all_api_keys() == ["only"]
    assert load_settings({"API_KEY": "  "}).all_api_keys() == []


def test_secrets_never_appear_in_repr_or_str() -> None:
    settings = load_settings(
        {
            "API_KEY": "primary-secret-key",
            "ADDITIONAL_API_KEYS": "second-secret-key,third-secret-key",
            "CACHE_REDIS_URL": "redis://user:redis-password@host:6379/0",
            "CACHE_CUSTOM_CONFIG": '{"redis_url": "redis://:custom-password@h:1"}',
        }
    )
    for text in (repr(settings), str(settings)):
        for secret in ("primary-secret", "second-secret", "third-secret", "redis-password"):
            assert secret not in text
        assert "custom-password" not in text
        assert "redis://user:***@host:6379/0" in text
        assert "3 configured" in text
