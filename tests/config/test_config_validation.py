"""The factory's validation: the contract's messages, every problem in one error."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stratacache import ClientOptions, ValidationError
from stratacache.caches._ai import AIResponseCache
from stratacache.config import CacheFactory

# Valid apart from what each test changes; port 1 is closed, so a config that
# wrongly passed validation would fall back to memory instead of raising.
BASE: dict[str, Any] = {"redis_url": "redis://127.0.0.1:1/0"}
YEAR = 365 * 24 * 3600

# (setting, value, the contract's phrase that must be in the message)
CASES = [
    ("redis_url", 6379, "redis_url must be a string"),
    ("redis_url", None, "redis_url is required"),
    ("redis_url", "", "redis_url cannot be empty"),
    ("redis_url", "   ", "redis_url cannot be empty"),
    ("redis_url", "http://localhost:6379", "redis_url must start with 'redis://'"),
    ("redis_url", "localhost:6379", "redis_url must start with 'redis://'"),
    ("redis_url", "redis://", "must include host information"),
    ("default_ttl", "60", "must be an integer"),
    ("default_ttl", 1.5, "must be an integer"),
    ("default_ttl", -1, "must be non-negative"),
    ("default_ttl", YEAR + 1, "must not exceed 365 days"),
    ("text_hash_threshold", -1, "text_hash_threshold must be a non-negative integer"),
    ("text_hash_threshold", "500", "text_hash_threshold must be a non-negative integer"),
    ("memory_cache_size", 0, "must be a positive integer"),
    ("memory_cache_size", -5, "must be a positive integer"),
    ("operation_ttls", ["qa", 60], "must be a dictionary"),
    ("operation_ttls", "qa=60", "must be a dictionary"),
    ("operation_ttls", {"": 60}, "keys must be non-empty strings"),
    ("operation_ttls", {3: 60}, "keys must be non-empty strings"),
    ("operation_ttls", {"qa": -1}, "must be a non-negative integer"),
    ("operation_ttls", {"qa": "60"}, "must be a non-negative integer"),
    ("operation_ttls", {"qa": 1.5}, "must be a non-negative integer"),
]


@pytest.mark.parametrize(("name", "value", "phrase"), CASES)
async def test_each_contract_message(name: str, value: object, phrase: str) -> None:
    config = {**BASE, "enable_ai_cache": True, name: value}
    with pytest.raises(ValidationError) as raised:
        await CacheFactory().create_cache_from_config(config)
    assert phrase in raised.value.message
    assert any(phrase in problem for problem in raised.value.context["problems"][name])


async def test_an_empty_config_needs_redis_url() -> None:
    with pytest.raises(ValidationError, match="redis_url is required"):
        await CacheFactory().create_cache_from_config({})


@pytest.mark.parametrize(
    ("name", "value", "phrase"),
    [case for case in CASES if case[0] in ("text_hash_threshold", "operation_ttls")],
)
async def test_the_ai_cache_itself_uses_the_same_messages(
    name: str, value: object, phrase: str
) -> None:
    with pytest.raises(ValidationError, match=phrase):
        AIResponseCache("redis://127.0.0.1:1/0", **{name: value})  # type: ignore[arg-type]


async def test_every_problem_is_reported_at_once() -> None:
    config = {
        "redis_url": "http://nowhere",
        "default_ttl": -1,
        "memory_cache_size": 0,
        "text_hash_threshold": -3,
        "operation_ttls": {"qa": -1},
        "compression_level": 99,
        "fail_on_connection_error": "yes",
        "enable_ai_cache": True,
    }
    with pytest.raises(ValidationError) as raised:
        await CacheFactory().create_cache_from_config(config)
    message = raised.value.message
    for phrase in (
        "redis_url must start with 'redis://'",
        "must be non-negative",
        "must be a positive integer",
        "text_hash_threshold must be a non-negative integer",
        "must be a non-negative integer",
        "compression_level must be an integer from 1 to 22",
        "fail_on_connection_error must be true or false",
    ):
        assert phrase in message
    problems = raised.value.context["problems"]
    assert set(problems) == set(config) - {"enable_ai_cache"}
    assert "7 problems" in message


async def test_several_problems_even_without_a_redis_url() -> None:
    with pytest.raises(ValidationError) as raised:
        await CacheFactory().create_cache_from_config({"default_ttl": -1, "memory_cache_size": 0})
    for phrase in ("redis_url is required", "must be non-negative", "must be a positive integer"):
        assert phrase in raised.value.message
    assert set(raised.value.context["problems"]) == {
        "redis_url",
        "default_ttl",
        "memory_cache_size",
    }


async def test_validation_happens_before_any_connection_attempt() -> None:
    # A host that would take the whole connect timeout to fail: validation must not wait.
    started = time.perf_counter()
    with pytest.raises(ValidationError):
        await CacheFactory().create_cache_from_config(
            {"redis_url": "redis://10.255.255.1:6379", "default_ttl": -1}
        )
    assert time.perf_counter() - started < 0.5


async def test_an_unknown_setting_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ValidationError) as raised:
        await CacheFactory().create_cache_from_config({**BASE, "defualt_ttl": 60})
    assert "unknown setting 'defualt_ttl'" in raised.value.message
    assert "did you mean 'default_ttl'?" in raised.value.message


@pytest.mark.parametrize(
    ("settings", "phrase"),
    [
        ({"hash_algorithm": "sha3"}, "hash_algorithm must be one of"),
        ({"hash_algorithm": 256}, "hash_algorithm must be one of"),
        ({"text_size_tiers": {}}, "text_size_tiers must be a non-empty dictionary"),
        ({"text_size_tiers": {"small": 0}}, "must be a positive integer"),
        ({"text_size_tiers": {"xlarge": 10}}, "other than 'xlarge'"),
        ({"text_size_tiers": {"a": 10, "b": 10}}, "bounds must be distinct"),
        ({"compression_threshold": -1}, "compression_threshold must be a non-negative"),
        ({"namespace": 5}, "namespace must be a str"),
        ({"options": {"connect_timeout": 1}}, "options must be a stratacache.ClientOptions"),
        ({"enable_memory_cache": 1}, "enable_memory_cache must be true or false"),
        ({"enable_ai_cache": "true"}, "enable_ai_cache must be true or false"),
        ({"memory_cache_size": 10, "l1_cache_size": 20}, "disagree; pass only one"),
        ({"default_ttl": YEAR + 1, "operation_ttls": {"qa": YEAR + 1}}, "must not exceed"),
    ],
)
async def test_other_settings_are_checked_too(settings: dict[str, Any], phrase: str) -> None:
    with pytest.raises(ValidationError, match=phrase):
        await CacheFactory().create_cache_from_config({**BASE, **settings})


async def test_an_invalid_hash_algorithm_names_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as raised:
        AIResponseCache("redis://127.0.0.1:1/0", hash_algorithm="rot13")
    for algorithm in ("sha256", "blake2b", "md5"):
        assert algorithm in raised.value.message


async def test_a_config_that_is_not_a_dict_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be a dict"):
        await CacheFactory().create_cache_from_config([("redis_url", "redis://x")])  # type: ignore[arg-type]


async def test_factory_methods_validate_their_arguments_too() -> None:
    factory = CacheFactory()
    with pytest.raises(ValidationError) as raised:
        await factory.for_web_app("redis://127.0.0.1:1", default_ttl=-1, memory_cache_size=0)
    assert "must be non-negative" in raised.value.message
    assert "must be a positive integer" in raised.value.message
    with pytest.raises(ValidationError, match="text_hash_threshold must be a non-negative"):
        await factory.for_ai_app("redis://127.0.0.1:1", text_hash_threshold=-1)
    with pytest.raises(ValidationError, match="keys must be non-empty strings"):
        await factory.for_ai_app("redis://127.0.0.1:1", operation_ttls={"": 1})
    with pytest.raises(ValidationError, match="must be a positive integer"):
        await factory.for_testing(use_memory_cache=True, memory_cache_size=0)
    with pytest.raises(ValidationError, match="unknown setting 'colour'"):
        await factory.for_web_app("redis://127.0.0.1:1", colour="blue")
    with pytest.raises(ValidationError, match="options must be"):
        await factory.from_preset("simple", "redis://127.0.0.1:1", options=ClientOptions)
