"""Presets: the contract's table, immutability, lookup and the description for a CLI."""

from __future__ import annotations

import dataclasses
import json

import pytest

from stratacache import ConfigurationError
from stratacache.config import PRESET_NAMES, CachePreset, describe_presets, get_preset

AI_OPERATIONS = {"summarize", "sentiment", "key_points", "questions", "qa"}

TABLE = [
    # name, default_ttl, memory_cache_size, compression threshold, level, AI cache
    ("disabled", 300, 10, 10_000, 1, False),
    ("minimal", 900, 25, 5_000, 1, False),
    ("simple", 3600, 100, 1_000, 6, False),
    ("development", 600, 50, 2_000, 3, False),
    ("production", 7200, 500, 500, 9, False),
    ("ai-development", 1800, 100, 1_000, 6, True),
    ("ai-production", 14_400, 1000, 300, 9, True),
]


@pytest.mark.parametrize(("name", "ttl", "size", "threshold", "level", "ai"), TABLE)
def test_each_preset_has_the_contract_figures(
    name: str, ttl: int, size: int, threshold: int, level: int, ai: bool
) -> None:
    preset = get_preset(name)
    assert preset.name == name
    assert (preset.default_ttl, preset.memory_cache_size) == (ttl, size)
    assert (preset.compression_threshold, preset.compression_level) == (threshold, level)
    assert preset.enable_ai_cache is ai
    config = preset.to_config()
    assert config["default_ttl"] == ttl
    assert config["memory_cache_size"] == size
    assert config["enable_ai_cache"] is ai


def test_the_presets_are_exactly_the_seven_of_the_contract_in_order() -> None:
    assert [row[0] for row in TABLE] == list(PRESET_NAMES)


@pytest.mark.parametrize(("name", "threshold"), [("ai-development", 500), ("ai-production", 1000)])
def test_ai_presets_carry_a_threshold_and_a_ttl_for_every_operation(
    name: str, threshold: int
) -> None:
    preset = get_preset(name)
    assert preset.text_hash_threshold == threshold
    assert set(preset.operation_ttls) == AI_OPERATIONS
    assert all(type(ttl) is int and ttl > 0 for ttl in preset.operation_ttls.values())
    config = preset.to_config()
    assert config["text_hash_threshold"] == threshold
    assert config["operation_ttls"] == dict(preset.operation_ttls)


def test_production_keeps_answers_longer_than_development() -> None:
    development, production = get_preset("ai-development"), get_preset("ai-production")
    for operation in AI_OPERATIONS:
        assert production.operation_ttls[operation] > development.operation_ttls[operation]


def test_only_ai_presets_put_ai_settings_in_their_config() -> None:
    for name in ("disabled", "minimal", "simple", "development", "production"):
        config = get_preset(name).to_config()
        assert "operation_ttls" not in config
        assert "text_hash_threshold" not in config


def test_only_disabled_turns_caching_off() -> None:
    assert [name for name in PRESET_NAMES if not get_preset(name).enabled] == ["disabled"]


def test_presets_are_immutable() -> None:
    preset = get_preset("ai-production")
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.default_ttl = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        preset.operation_ttls["qa"] = 1  # type: ignore[index]
    config = preset.to_config()
    config["operation_ttls"]["qa"] = 1
    config["default_ttl"] = 1
    assert get_preset("ai-production").operation_ttls["qa"] != 1
    assert get_preset("ai-production").default_ttl == 14_400


def test_a_preset_built_from_a_dict_does_not_share_it() -> None:
    ttls = {"qa": 5}
    preset = CachePreset("custom", "mine", 60, 10, 1000, 6, operation_ttls=ttls)
    ttls["qa"] = 6
    assert preset.operation_ttls["qa"] == 5
    assert hash(preset) == hash(CachePreset("custom", "mine", 60, 10, 1000, 6))


@pytest.mark.parametrize("spelling", ["Production", " production ", "PRODUCTION"])
def test_lookup_ignores_case_and_surrounding_spaces(spelling: str) -> None:
    assert get_preset(spelling) is get_preset("production")


@pytest.mark.parametrize("name", ["prod", "", "ai_production", None, 3])
def test_an_unknown_preset_names_every_valid_one(name: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        get_preset(name)  # type: ignore[arg-type]
    for valid in PRESET_NAMES:
        assert valid in raised.value.message
    assert raised.value.context["valid"] == list(PRESET_NAMES)


def test_describe_presets_is_plain_data_for_a_cli() -> None:
    table = describe_presets()
    assert [row["name"] for row in table] == list(PRESET_NAMES)
    json.dumps(table)  # printable as --json
    for row, (name, ttl, size, threshold, level, ai) in zip(table, TABLE, strict=True):
        assert row["name"] == name
        assert row["description"]
        assert (row["default_ttl"], row["memory_cache_size"]) == (ttl, size)
        assert (row["compression_threshold"], row["compression_level"]) == (threshold, level)
        assert row["enable_ai_cache"] is ai
    table[0]["default_ttl"] = 1
    table[-1]["operation_ttls"]["qa"] = 1
    assert describe_presets()[0]["default_ttl"] == 300
    assert describe_presets()[-1]["operation_ttls"]["qa"] != 1
