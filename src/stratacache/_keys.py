"""Keys, namespaces and Redis-style glob patterns.

Three promises live here:

* **Validation** — a key is a ``str`` of 1 to 1024 characters without NUL.
* **Injectivity** — distinct (namespace, key) pairs never produce the same stored
  key. :func:`encode_part` escapes ``\\`` and ``:`` so a namespace (or any other
  part a builder joins with ``:``) can be parsed back unambiguously from the left.
* **Confinement** — a user pattern is always matched *after* the escaped,
  glob-quoted namespace prefix, so ``*`` in a namespace or tenant id matches only
  itself and a pattern can never reach outside its namespace.

Glob matching follows Redis's ``stringmatchlen`` byte for byte (``*``, ``?``,
``[...]`` with ``^`` negation and ``a-z`` ranges, ``\\`` escapes), so the memory
tier and Redis select exactly the same keys for the same pattern. It is written
here because :mod:`fnmatch` has different rules (no escapes, ``[!...]``, per-char
instead of per-byte matching).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .errors import ValidationError

MAX_KEY_LENGTH = 1024
MAX_PATTERN_LENGTH = 1024
NO_TAGS: frozenset[str] = frozenset()  # shared: each empty frozenset() costs 216 bytes
_GLOB_SPECIALS = re.compile(r"([\\*?\[\]])")


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid cache key, else raise :class:`ValidationError`."""
    if type(key) is not str:
        raise ValidationError(
            f"cache keys must be str, not {type(key).__name__}",
            {"key_type": type(key).__name__},
        )
    if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise ValidationError(_key_problem(key), {"key_length": len(key)})
    if not key.isascii():
        _check_encodable(key, "cache keys")
    return key


def _check_encodable(text: str, what: str) -> None:
    """Refuse lone surrogates: no UTF-8 form exists, so Redis could never hold them."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValidationError(
            f"{what} must be valid Unicode text; this one holds a lone surrogate "
            "(often from decoding bytes with errors='surrogateescape')"
        ) from None


def _key_problem(key: str) -> str:
    if not key:
        return "cache keys must not be empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"cache keys must be at most {MAX_KEY_LENGTH} characters, got {len(key)}"
    return "cache keys must not contain NUL characters"


def validate_pattern(pattern: object) -> str:
    """Return ``pattern`` if it is a usable glob, else raise :class:`ValidationError`."""
    if type(pattern) is not str:
        raise ValidationError(
            f"patterns must be str, not {type(pattern).__name__}",
            {"pattern_type": type(pattern).__name__},
        )
    if not pattern:
        raise ValidationError("patterns must not be empty; use clear() to remove everything")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValidationError(
            f"patterns must be at most {MAX_PATTERN_LENGTH} characters, got {len(pattern)}",
            {"pattern_length": len(pattern)},
        )
    if "\x00" in pattern:
        raise ValidationError("patterns must not contain NUL characters")
    if not pattern.isascii():
        _check_encodable(pattern, "patterns")
    return pattern


def encode_part(part: str) -> str:
    """Escape ``\\`` and ``:`` so that parts joined with ``:`` can be split back.

    ``encode_part("a:b") + ":" + "c"`` and ``encode_part("a") + ":" + "b:c"``
    differ, which is what keeps two namespaces (or tenants) from sharing a key.
    """
    if "\\" not in part and ":" not in part:
        return part
    return part.replace("\\", "\\\\").replace(":", "\\:")


def namespace_prefix(namespace: str) -> str:
    """The prefix every stored key of ``namespace`` starts with ('' for no namespace)."""
    if type(namespace) is not str:
        raise ValidationError(
            f"namespace must be a str, not {type(namespace).__name__}",
            {"namespace_type": type(namespace).__name__},
        )
    if "\x00" in namespace:
        raise ValidationError("namespace must not contain NUL characters")
    return f"{encode_part(namespace)}:" if namespace else ""


def escape_glob(text: str) -> str:
    """Quote ``\\ * ? [ ]`` so that ``text`` matches only itself in a glob."""
    return _GLOB_SPECIALS.sub(r"\\\1", text)


def glob_matcher(pattern: str) -> re.Pattern[bytes]:
    """Compile a Redis glob into a regex over the key's UTF-8 bytes.

    Use ``matcher.fullmatch(key.encode())``; the bytes matter because Redis's
    ``?`` matches one byte, not one character.
    """
    return _compile_glob(pattern.encode())


@lru_cache(maxsize=256)
def _compile_glob(pattern: bytes) -> re.Pattern[bytes]:
    regex = bytearray()
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # '*': runs of stars collapse
            while i + 1 < n and pattern[i + 1] == 0x2A:
                i += 1
            regex += b".*"
        elif c == 0x3F:  # '?'
            regex += b"."
        elif c == 0x5B:  # '['
            members, negate, i = _parse_class(pattern, i + 1)
            regex += _class_regex(members, negate)
        else:
            if c == 0x5C and i + 1 < n:  # '\\' escapes the next byte
                i += 1
            regex += re.escape(pattern[i : i + 1])
        i += 1
    return re.compile(bytes(regex), re.DOTALL)


def _parse_class(pattern: bytes, i: int) -> tuple[set[int], bool, int]:
    """Parse ``[...]`` as Redis does; returns (bytes, negated, index of its last byte)."""
    n = len(pattern)
    negate = i < n and pattern[i] == 0x5E  # '^'
    if negate:
        i += 1
    members: set[int] = set()
    while True:
        if i < n and pattern[i] == 0x5C and n - i >= 2:  # escaped member
            i += 1
            members.add(pattern[i])
        elif i < n and pattern[i] == 0x5D:  # ']'
            break
        elif i >= n:  # unterminated: Redis treats the end of pattern as ']'
            i -= 1
            break
        elif n - i >= 3 and pattern[i + 1] == 0x2D:  # 'a-z' (reversed ranges swap)
            # Redis compares C chars, which are signed: bytes >= 0x80 sort below 'a'.
            low, high = sorted((_signed(pattern[i]), _signed(pattern[i + 2])))
            members.update(b for b in range(256) if low <= _signed(b) <= high)
            i += 2
        else:
            members.add(pattern[i])
        i += 1
    return members, negate, i


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 0x80 else byte


def _class_regex(members: set[int], negate: bool) -> bytes:
    chosen = set(range(256)) - members if negate else members
    if not chosen:
        return b"(?!)"
    return b"[" + b"".join(re.escape(bytes((b,))) for b in sorted(chosen)) + b"]"


def validate_keys(keys: object) -> list[str]:
    """Validate an iterable of keys (a lone ``str`` is refused: it would iterate chars)."""
    if isinstance(keys, (str, bytes)):
        raise ValidationError(
            f"expected an iterable of keys such as ['a', 'b'], not a single {type(keys).__name__}"
        )
    try:
        items = list(keys)  # type: ignore[call-overload]
    except TypeError:
        raise ValidationError(f"expected an iterable of keys, not {type(keys).__name__}") from None
    for key in items:  # validate_key's checks inline: get_many of 100 keys pays them 100 times
        if (
            type(key) is not str
            or not key
            or len(key) > MAX_KEY_LENGTH
            or "\x00" in key
            or not key.isascii()
        ):
            validate_key(key)  # raises, with the precise message
    return items  # type: ignore[no-any-return]  # every item was checked to be a str


def validate_tags(tags: object) -> frozenset[str]:
    """Validate tags: an iterable of non-empty ``str`` (a lone ``str`` is refused)."""
    if not tags:
        return NO_TAGS
    if isinstance(tags, (str, bytes)):
        raise ValidationError(
            f"tags must be an iterable of str such as [{tags!r}], not a single "
            f"{type(tags).__name__}"
        )
    try:
        items: frozenset[object] = frozenset(tags)  # type: ignore[call-overload]
    except TypeError:
        raise ValidationError(
            f"tags must be an iterable of str, not {type(tags).__name__}"
        ) from None
    for tag in items:
        if type(tag) is not str or not tag or len(tag) > MAX_KEY_LENGTH or "\x00" in tag:
            raise ValidationError(
                f"each tag must be a str of 1 to {MAX_KEY_LENGTH} characters without NUL, "
                f"got {tag!r:.80}"
            )
        if not tag.isascii():
            _check_encodable(tag, "tags")
    return items  # type: ignore[return-value]  # every member was checked to be a str
