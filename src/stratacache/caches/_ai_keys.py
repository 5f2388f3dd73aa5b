"""Keys for AI responses: deterministic, bounded, and safe to invalidate by operation.

A key must come out identical in every process and after every restart, so nothing
here uses ``hash()`` (salted per process) or relies on dict order: options are
reduced to canonical JSON (sorted keys, fixed separators) and everything long is
replaced by a digest of the configured algorithm. The layout is::

    ai_cache:op:<operation>|opts:<digest or ->|q:<digest or ->|text:<text>
    ai_cache:op:<operation>|opts:<digest or ->|q:<digest or ->|hash:<digest>

The text comes last, so whatever characters it holds cannot be mistaken for
another field: every field before it has a fixed alphabet. A text is kept verbatim
(readable in ``redis-cli``) only when it is at most ``text_hash_threshold``
characters, has no NUL, encodes as UTF-8 and keeps the key within 1024 characters;
otherwise it is hashed. A key with a hashed text is at most 540 characters (with
a 512-bit digest), and no key is longer than :data:`MAX_KEY_LENGTH`.

An operation appears as itself when it is a plain name (letters, digits, ``_ . -``,
up to 64 characters) and as ``~<digest>`` otherwise, so no operation name can put
glob metacharacters, separators or unbounded length into a key or a tag.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from .._keys import MAX_KEY_LENGTH
from ..errors import ValidationError

__all__ = [
    "KEY_PREFIX",
    "AIKeyBuilder",
    "validate_hash_algorithm",
    "validate_operation",
    "validate_text_hash_threshold",
]

KEY_PREFIX = "ai_cache:"
OPERATION_TAG_PREFIX = "ai_op:"
_PLAIN_OPERATION = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_SHAKE_DIGEST_BYTES = 32  # shake_* digests have no natural size: 256 bits, like sha256
_NONE = "-"


def validate_text_hash_threshold(value: object) -> int:
    """Texts longer than this many characters are hashed in keys."""
    if type(value) is not int or value < 0:
        raise ValidationError(
            f"text_hash_threshold must be a non-negative integer (characters), got {value!r:.80}",
            {"text_hash_threshold": repr(value)},
        )
    return value


def validate_hash_algorithm(value: object) -> str:
    """One of :data:`hashlib.algorithms_guaranteed`: available on every Python build."""
    valid = sorted(hashlib.algorithms_guaranteed)
    if not isinstance(value, str) or value not in hashlib.algorithms_guaranteed:
        raise ValidationError(
            f"hash_algorithm must be one of {', '.join(valid)}; got {value!r:.80}",
            {"hash_algorithm": repr(value), "valid": valid},
        )
    try:  # a FIPS build may refuse some (md5) even for non-security use
        hashlib.new(value, usedforsecurity=False)
    except ValueError as exc:
        raise ValidationError(
            f"hash_algorithm {value!r} is not usable on this Python build ({exc}); use sha256",
            {"hash_algorithm": value},
        ) from None
    return value


def validate_operation(operation: object) -> str:
    """An operation name: a non-empty ``str`` (any characters; see the module doc)."""
    if not isinstance(operation, str) or not operation.strip():
        raise ValidationError(
            f"operation must be a non-empty string such as 'summarize', got {operation!r:.80}",
            {"operation": repr(operation)[:80]},
        )
    return operation


class AIKeyBuilder:
    """Builds AI cache keys and operation tags; pure and cheap, with no I/O."""

    def __init__(self, text_hash_threshold: int = 1000, hash_algorithm: str = "sha256") -> None:
        self.text_hash_threshold = validate_text_hash_threshold(text_hash_threshold)
        self.hash_algorithm = validate_hash_algorithm(hash_algorithm)

    def digest(self, data: str) -> str:
        """The hex digest of ``data`` (lone surrogates included: they still hash)."""
        hasher = hashlib.new(self.hash_algorithm, usedforsecurity=False)
        hasher.update(data.encode("utf-8", "surrogatepass"))
        if self.hash_algorithm.startswith("shake_"):
            return hasher.hexdigest(_SHAKE_DIGEST_BYTES)  # type: ignore[call-arg]
        return hasher.hexdigest()

    def operation_label(self, operation: str) -> str:
        """The operation as it appears in keys and tags."""
        validate_operation(operation)
        if _PLAIN_OPERATION.fullmatch(operation):
            return operation
        return "~" + self.digest(operation)  # '~' is not in plain names: no collision

    def operation_tag(self, operation: str) -> str:
        """The tag every response of ``operation`` is stored with."""
        return OPERATION_TAG_PREFIX + self.operation_label(operation)

    def build_key(
        self,
        text: str,
        operation: str,
        options: Mapping[str, Any] | None = None,
        question: str | None = None,
    ) -> str:
        """The cache key for this request (see the module doc for the layout)."""
        if not isinstance(text, str):
            raise ValidationError(f"text must be a str, not {type(text).__name__}")
        if question is not None and not isinstance(question, str):
            raise ValidationError(f"question must be a str or None, not {type(question).__name__}")
        head = (
            f"{KEY_PREFIX}op:{self.operation_label(operation)}"
            f"|opts:{self._options_part(options)}"
            f"|q:{_NONE if question is None else self.digest(question)}"
        )
        if self._keeps_verbatim(text, len(head)):
            return f"{head}|text:{text}"
        return f"{head}|hash:{self.digest(text)}"

    def _options_part(self, options: Mapping[str, Any] | None) -> str:
        if options is None or (isinstance(options, Mapping) and not options):
            return _NONE  # no options and empty options ask the same question
        if not isinstance(options, Mapping):
            raise ValidationError(
                f"options must be a dict or None, not {type(options).__name__}",
                {"options_type": type(options).__name__},
            )
        try:
            canonical = json.dumps(options, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                "options must be JSON data (str keys; str, int, float, bool, None, list "
                f"and dict values; no NaN) so their key is the same everywhere: {exc}",
            ) from None
        return self.digest(canonical)

    def _keeps_verbatim(self, text: str, head_length: int) -> bool:
        if len(text) > self.text_hash_threshold or "\x00" in text:
            return False
        if head_length + len("|text:") + len(text) > MAX_KEY_LENGTH:
            return False
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: Redis could not store the key
            return False
        return True
