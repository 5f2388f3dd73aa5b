"""AI cache keys: deterministic everywhere, bounded, order-insensitive, injection-proof."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from stratacache import ValidationError
from stratacache.caches._ai import AIResponseCache

UNUSED_URL = "redis://127.0.0.1:1/0"  # never connected: keys need no server
GLOB = set("*?[]\\")

Make = Callable[..., AIResponseCache]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    """Build AIResponseCaches (not connected); closed when the test ends."""
    caches: list[AIResponseCache] = []

    def build(**settings: Any) -> AIResponseCache:
        cache = AIResponseCache(UNUSED_URL, **settings)
        caches.append(cache)
        return cache

    yield build
    for cache in caches:
        await cache.aclose()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_key_format_is_pinned(make: Make) -> None:
    # Keys outlive processes and releases: a format change would orphan every entry.
    cache = make(text_hash_threshold=10)
    assert cache.build_key("hello", "summarize") == "ai_cache:op:summarize|opts:-|q:-|text:hello"
    long_text = "x" * 11
    canonical_options = '{"a":[1,2],"b":1}'
    assert cache.build_key(long_text, "summarize", {"b": 1, "a": [1, 2]}, "why?") == (
        f"ai_cache:op:summarize|opts:{sha256(canonical_options)}"
        f"|q:{sha256('why?')}|hash:{sha256(long_text)}"
    )


CASES: list[list[Any]] = [
    ["short text", "summarize", None, None],
    ["x" * 5000, "summarize", {"max_length": 100, "style": "brief"}, None],
    ["Some text", "qa", {"model": "m", "nested": {"b": 2, "a": 1}}, "What is it?"],
    ["é ☃ 中文 \n\t tabs", "sentiment", {"z": [3, 2, 1], "a": None}, None],
    ["t", "op with spaces/and*globs?", {}, ""],
]


def _keys_in_a_new_process(cases: list[list[Any]], hash_seed: str) -> list[str]:
    code = (
        "import json, sys\n"
        "from stratacache.caches._ai import AIResponseCache\n"
        "cache = AIResponseCache('redis://127.0.0.1:1/0', text_hash_threshold=100)\n"
        "print(json.dumps([cache.build_key(*case) for case in json.loads(sys.argv[1])]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cases)],
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        check=True,
    )
    keys: list[str] = json.loads(result.stdout)
    return keys


def test_keys_are_the_same_in_separate_processes(make: Make) -> None:
    here = [make(text_hash_threshold=100).build_key(*case) for case in CASES]
    reordered = [
        [text, op, dict(reversed(list(options.items()))) if options else options, question]
        for text, op, options, question in CASES
    ]
    assert _keys_in_a_new_process(CASES, "1") == here
    assert _keys_in_a_new_process(reordered, "2") == here
    assert len(set(here)) == len(CASES)


def test_option_order_does_not_matter_at_any_depth(make: Make) -> None:
    cache = make()
    first = {"a": 1, "b": {"x": 1, "y": [1, {"p": 1, "q": 2}]}}
    second = {"b": {"y": [1, {"q": 2, "p": 1}], "x": 1}, "a": 1}
    assert cache.build_key("t", "op", first) == cache.build_key("t", "op", second)
    assert cache.build_key("t", "op", None) == cache.build_key("t", "op", {})
    # ... but the order inside a list is part of the request
    assert cache.build_key("t", "op", {"a": [1, 2]}) != cache.build_key("t", "op", {"a": [2, 1]})


@pytest.mark.parametrize(
    "other",
    [
        ("t", "op", {"a": 2}, None),  # option value
        ("t", "op", {"a": 1}, "q"),  # question
        ("t", "op", {"a": 1}, ""),  # an empty question is still a question
        ("T", "op", {"a": 1}, None),  # text
        ("t", "op2", {"a": 1}, None),  # operation
    ],
)
def test_anything_that_changes_the_request_changes_the_key(
    make: Make, other: tuple[Any, ...]
) -> None:
    cache = make()
    base = cache.build_key("t", "op", {"a": 1})
    assert cache.build_key(*other) != base


@pytest.mark.parametrize("threshold", [0, 10, 500, 900])
def test_texts_longer_than_the_threshold_are_hashed(make: Make, threshold: int) -> None:
    cache = make(text_hash_threshold=threshold)
    at = "a" * threshold
    above = "Q" * (threshold + 1)
    assert cache.build_key(at, "op").endswith(f"|text:{at}")
    key = cache.build_key(above, "op")
    assert "Q" not in key
    assert key.endswith(f"|hash:{sha256(above)}")


def test_a_short_text_that_would_not_fit_in_a_key_is_hashed_too(make: Make) -> None:
    cache = make()  # threshold 1000, but the key's other fields take room too
    text = "a" * 1000
    key = cache.build_key(text, "op")
    assert key.endswith(f"|hash:{sha256(text)}")
    assert len(key) <= 1024


def test_texts_that_cannot_be_key_characters_are_hashed(make: Make) -> None:
    cache = make()
    for text in ("nul\x00inside", "lone \ud800 surrogate"):
        key = cache.build_key(text, "op")
        assert "|hash:" in key
        assert "\x00" not in key
        key.encode()  # storable in Redis


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha512", "blake2b", "sha3_256", "shake_128"])
def test_every_guaranteed_algorithm_works(make: Make, algorithm: str) -> None:
    cache = make(hash_algorithm=algorithm, text_hash_threshold=1)
    key = cache.build_key("long text", "op", {"a": 1}, "q")
    digest = key.rsplit("|hash:", 1)[1]
    assert int(digest, 16) >= 0
    assert len(digest) >= 32
    assert cache.hash_algorithm == algorithm


def test_keys_start_with_ai_cache_and_stay_within_1024_characters(make: Make) -> None:
    cache = make(text_hash_threshold=100_000)
    huge = "é" * 50_000
    for text, operation, options, question in [
        ("t", "o" * 10_000, None, None),
        ("t", "op", {"k" * 5000: "v" * 5000, "list": list(range(2000))}, None),
        ("t", "op", None, "why " * 5000),
        (huge, "op", None, None),  # under the threshold, but would not fit
        ("x" * 1000, "★" * 300, {"a": "b" * 3000}, "q" * 3000),
    ]:
        key = cache.build_key(text, operation, options, question)
        assert key.startswith("ai_cache:")
        assert len(key) <= 1024
    assert cache.build_key("x" * 900, "op").endswith("x" * 900)  # fits: kept verbatim


@pytest.mark.parametrize(
    "operation", ["sum*", "s?mmarize", "[s]ummarize", "back\\slash", "a|b", "op:x", "ünïcode", " x"]
)
def test_operation_names_cannot_inject_glob_or_separator_characters(
    make: Make, operation: str
) -> None:
    cache = make()
    key = cache.build_key("t", operation)
    label = key[len("ai_cache:op:") : key.index("|opts:")]
    assert not GLOB & set(label)
    assert "|" not in label
    assert ":" not in label
    assert label.startswith("~")
    assert len(label) == 65
    assert cache.build_key("t", "summarize") != key


@pytest.mark.parametrize("operation", ["", "   ", None, 3, b"summarize"])
def test_operations_must_be_non_empty_strings(make: Make, operation: object) -> None:
    cache = make()
    with pytest.raises(ValidationError, match="operation must be a non-empty string"):
        cache.build_key("t", operation)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "phrase"),
    [
        ((b"bytes", "op"), "text must be a str"),
        ((None, "op"), "text must be a str"),
        (("t", "op", ["a"]), "options must be a dict"),
        (("t", "op", {"a": {1, 2}}), "options must be JSON data"),
        (("t", "op", {"a": float("nan")}), "options must be JSON data"),
        (("t", "op", {"a": object()}), "options must be JSON data"),
        (("t", "op", None, 5), "question must be a str"),
    ],
)
def test_bad_arguments_are_refused(make: Make, arguments: tuple[Any, ...], phrase: str) -> None:
    with pytest.raises(ValidationError, match=phrase):
        make().build_key(*arguments)


def test_the_settings_are_visible(make: Make) -> None:
    cache = make(
        text_hash_threshold=7,
        hash_algorithm="sha512",
        operation_ttls={"qa": 5},
        text_size_tiers={"big": 100, "tiny": 10},
        default_ttl=40,
    )
    assert (cache.text_hash_threshold, cache.hash_algorithm) == (7, "sha512")
    assert cache.text_size_tiers == {"tiny": 10, "big": 100}
    assert cache.ttl_for("qa") == 5
    assert cache.ttl_for("summarize") == 40
    assert make().text_size_tiers == {"small": 500, "medium": 5000, "large": 50_000}
    assert make().operation_ttls == {}
