"""Values to bytes and back: the one encoding every tier shares.

Why msgpack (not orjson): msgpack keeps ``bytes`` and ``str`` apart natively, packs
``int`` and ``float`` exactly, and its extension types give ``tuple``, ``set``,
``datetime`` and the other §1 types an exact, compact encoding. orjson is faster
for plain JSON documents but has no bytes type and turns tuples into lists, so
exact round trips would need a tagged layer written in Python on top of it, which
costs more than msgpack's C extension saves. ``strict_types=True`` makes subclasses
(``IntEnum``, ``OrderedDict``, NumPy scalars ...) fail loudly instead of coming back
as their base type.

The framing is one header byte followed by the payload::

    0x01 msgpack          0x02 msgpack, zstd-compressed
    0x03 signed pickle    0x04 signed pickle, zstd-compressed
    0x06 a str as UTF-8 (below the compression threshold)
    '-' or '0'-'9'        a plain decimal int in the int64 range

Plain decimal ints let Redis ``INCRBY`` work on cached counters. Compressed and
plain values coexist, so changing ``compression_threshold`` never strands old data.

Signed pickle is opt-in (``Codec(serializer="pickle", pickle_key=...)``) and is
always HMAC-SHA256 over the cache key, the header and the body, checked in
constant time *before* anything is decompressed or unpickled. The algorithm is
fixed by this module, never read from the data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import logging
import pickle
import threading
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import msgpack
import zstandard

from ._stamps import Stamped, restore
from .errors import ConfigurationError, SerializationError, ValidationError

__all__ = ["IMMUTABLE_TYPES", "Codec", "UndecodableValue", "report_undecodable"]

T = TypeVar("T", bound=type)
logger = logging.getLogger("stratacache")

MSGPACK = 0x01
MSGPACK_ZSTD = 0x02
PICKLE = 0x03
PICKLE_ZSTD = 0x04
TEXT = 0x06  # a str, as UTF-8 (0x05 is the Redis tier's tag envelope)
_TEXT_HEADER = bytes((TEXT,))
_HEADERS = {code: bytes((code,)) for code in (MSGPACK, MSGPACK_ZSTD, PICKLE, PICKLE_ZSTD)}
_INT_FIRST_BYTES = frozenset(b"-0123456789")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAC_SIZE = 32
_MAC_CONTEXT = b"stratacache/pickle/v1\x00"
MIN_PICKLE_KEY_BYTES = 32
DEFAULT_MAX_VALUE_BYTES = 256 * 1024 * 1024

# msgpack extension codes; never renumber them, stored data depends on them.
_EXT_TUPLE = 1
_EXT_SET = 2
_EXT_FROZENSET = 3
_EXT_DATETIME = 4
_EXT_DATE = 5
_EXT_TIME = 6
_EXT_TIMEDELTA = 7
_EXT_UUID = 8
_EXT_DECIMAL = 9
_EXT_BIGINT = 10
_EXT_REGISTERED = 11
_EXT_STAMPED = 12  # a get_or_set entry: [fresh_until, load_seconds, value] (see _stamps)

_BYTES_LIKE = frozenset({bytearray, memoryview})
_MAX_DEPTH = 512  # msgpack's own nesting limit
_SEQUENCES = frozenset({list, tuple, set, frozenset})
_CONTAINERS = _SEQUENCES | {dict}
_SUPPORTED = (
    "None, bool, int, float, str, bytes, list, dict, tuple, set, frozenset, datetime, "
    "date, time, timedelta, UUID, Decimal"
)


IMMUTABLE_TYPES = frozenset({str, bytes, int, float, bool, type(None)})
"""Exact types no caller can mutate: a cache may hand out the object it holds."""


class UndecodableValue(Exception):
    """Stored bytes could not be decoded; callers treat it as a miss."""


def report_undecodable(key: str, exc: UndecodableValue, count: int) -> None:
    """Log the ``count``-th undecodable value of a cache: the first at WARNING."""
    log = logger.warning if count == 1 else logger.debug
    log("stratacache: undecodable value under %r treated as a miss (%s)", key, exc)


class Codec:
    """Turns cached values into bytes and back, identically for every tier.

    Args:
        types: dataclasses, pydantic models and enums to accept, besides the
            built-in types. Register more later with :meth:`register`.
        serializer: ``"msgpack"`` (safe, the default) or ``"pickle"`` (any
            picklable object, HMAC-signed; needs ``pickle_key``).
        pickle_key: the secret for signing pickled values, at least 32 bytes.
        previous_pickle_keys: older secrets still accepted when reading, so a
            key can be rotated without turning every cached value into a miss.
        compression_threshold: compress payloads longer than this many bytes
            with zstd; ``None`` never compresses.
        compression_level: zstd level, 1 (fast) to 22 (small).
        max_value_bytes: refuse to write, or to decompress, anything larger.
    """

    def __init__(
        self,
        *,
        types: Iterable[type] = (),
        serializer: Literal["msgpack", "pickle"] = "msgpack",
        pickle_key: bytes | str | None = None,
        previous_pickle_keys: Iterable[bytes | str] = (),
        compression_threshold: int | None = None,
        compression_level: int = 3,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    ) -> None:
        if serializer not in ("msgpack", "pickle"):
            raise ConfigurationError(
                f"serializer must be 'msgpack' or 'pickle', got {serializer!r}",
                {"serializer": repr(serializer)},
            )
        if serializer == "pickle" and pickle_key is None:
            raise ConfigurationError(
                "serializer='pickle' needs pickle_key: a secret of at least "
                f"{MIN_PICKLE_KEY_BYTES} bytes used to sign every pickled value"
            )
        if compression_threshold is not None and (
            type(compression_threshold) is not int or compression_threshold < 0
        ):
            raise ValidationError(
                "compression_threshold must be a non-negative integer or None",
                {"compression_threshold": repr(compression_threshold)},
            )
        if type(compression_level) is not int or not 1 <= compression_level <= 22:
            raise ValidationError(
                "compression_level must be an integer from 1 to 22",
                {"compression_level": repr(compression_level)},
            )
        if type(max_value_bytes) is not int or max_value_bytes <= 0:
            raise ValidationError("max_value_bytes must be a positive integer")
        self.serializer = serializer
        self.compression_threshold = compression_threshold
        self.compression_level = compression_level
        self.max_value_bytes = max_value_bytes
        self._signing_key = None if pickle_key is None else _signing_key(pickle_key)
        self._verifying_keys = tuple(
            key
            for key in (self._signing_key, *map(_signing_key, previous_pickle_keys))
            if key is not None
        )
        self._by_type: dict[type, str] = {}
        self._by_name: dict[str, type] = {}
        self._local = threading.local()
        for cls in types:
            self.register(cls)

    def register(self, cls: T, *, name: str | None = None) -> T:
        """Accept instances of ``cls`` (a dataclass, pydantic model or enum).

        ``name`` is what is stored to identify the class; it defaults to
        ``module.QualName``. Give a stable name if the class may move. Returns
        ``cls`` so this works as a decorator.
        """
        if not isinstance(cls, type) or _kind(cls) is None:
            raise ValidationError(
                f"only dataclasses, pydantic models and enums can be registered, not {cls!r}",
                {"type": repr(cls)},
            )
        name = name or f"{cls.__module__}.{cls.__qualname__}"
        if self._by_name.get(name, cls) is not cls:
            raise ValidationError(
                f"the name {name!r} is already registered for another class",
                {"name": name},
            )
        self._by_type[cls] = name
        self._by_name[name] = cls
        return cls

    # -- encoding ---------------------------------------------------------------

    def encode(self, value: Any, key: str) -> bytes:
        """Serialize ``value`` stored under ``key``; raises :class:`SerializationError`."""
        if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
            return str(value).encode()
        if type(value) is str and (
            self.compression_threshold is None or len(value) <= self.compression_threshold
        ):
            try:  # the commonest value, decoded 3x faster than through msgpack
                return _TEXT_HEADER + value.encode()
            except UnicodeEncodeError as exc:
                raise SerializationError(
                    f"Cannot cache a str that is not valid Unicode: {exc}", {"type": "str"}
                ) from exc
        if self._signing_key is not None and self.serializer == "pickle":
            return self._encode_pickle(value, key)
        try:
            body = self._pack_top(value)
        except SerializationError:
            raise
        except (ValueError, OverflowError, RecursionError) as exc:
            raise SerializationError(
                f"Cannot serialize the value: {exc}", {"type": _type_name(value)}
            ) from exc
        return self._frame(body, MSGPACK, MSGPACK_ZSTD)

    def _encode_pickle(self, value: Any, key: str) -> bytes:
        try:
            body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(
                f"Cannot pickle a value of type {_type_name(value)!r}: {exc}",
                {"type": _type_name(value)},
            ) from exc
        framed = self._frame(body, PICKLE, PICKLE_ZSTD)
        header, body = framed[:1], framed[1:]
        assert self._signing_key is not None
        return header + _mac(self._signing_key, key, header, body) + body

    def _frame(self, body: bytes, plain: int, compressed: int) -> bytes:
        if len(body) > self.max_value_bytes:
            raise SerializationError(
                f"The serialized value is {len(body)} bytes, over max_value_bytes="
                f"{self.max_value_bytes}",
                {"size": len(body)},
            )
        threshold = self.compression_threshold
        if threshold is not None and len(body) > threshold:
            packed = self._compressor().compress(body)
            if len(packed) < len(body):
                return _HEADERS[compressed] + packed
        return _HEADERS[plain] + body

    def _default(self, obj: Any) -> msgpack.ExtType:
        """Encode the types msgpack does not know; called by msgpack per object."""
        cls = type(obj)
        pack = self._pack
        if cls is tuple:
            return msgpack.ExtType(_EXT_TUPLE, pack(list(obj)))
        if cls is set:
            return msgpack.ExtType(_EXT_SET, pack(list(obj)))
        if cls is frozenset:
            return msgpack.ExtType(_EXT_FROZENSET, pack(list(obj)))
        if cls is dt.datetime:
            state = [obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second]
            state += [obj.microsecond, obj.fold, _tz_state(obj.tzinfo, obj)]
            return msgpack.ExtType(_EXT_DATETIME, pack(state))
        if cls is dt.date:
            return msgpack.ExtType(_EXT_DATE, pack(obj.toordinal()))
        if cls is dt.time:
            state = [obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold]
            state.append(_tz_state(obj.tzinfo, None))
            return msgpack.ExtType(_EXT_TIME, pack(state))
        if cls is dt.timedelta:
            return msgpack.ExtType(_EXT_TIMEDELTA, pack([obj.days, obj.seconds, obj.microseconds]))
        if cls is uuid.UUID:
            return msgpack.ExtType(_EXT_UUID, obj.bytes)
        if cls is Decimal:
            return msgpack.ExtType(_EXT_DECIMAL, str(obj).encode())
        if cls is int:  # outside msgpack's 64-bit range
            return msgpack.ExtType(_EXT_BIGINT, str(obj).encode())
        if cls is Stamped:
            return msgpack.ExtType(
                _EXT_STAMPED, pack([obj.fresh_until, obj.load_seconds, obj.value])
            )
        name = self._by_type.get(cls)
        if name is None:
            raise _unsupported(obj)
        return msgpack.ExtType(_EXT_REGISTERED, pack([name, _state_of(obj)]))

    def _pack_top(self, obj: Any) -> bytes:
        """Pack a whole value with this thread's reusable Packer (40% faster than packb).

        Only for the outermost call: ``_default`` runs inside ``packer.pack`` and
        must not re-enter the same Packer, so nested payloads use :meth:`_pack`.
        """
        try:
            packer = self._local.packer
        except AttributeError:  # Packers are not thread-safe: one per thread
            packer = self._local.packer = msgpack.Packer(
                default=self._default, strict_types=True, autoreset=True
            )
        try:
            packed: bytes = packer.pack(obj)
        except BaseException:
            packer.reset()  # a failed pack leaves partial output behind
            raise
        return _checked(obj, packed)

    def _pack(self, obj: Any) -> bytes:
        """Pack a nested payload (called from ``_default``)."""
        packed: bytes = msgpack.packb(obj, default=self._default, strict_types=True)
        return _checked(obj, packed)

    # -- decoding ---------------------------------------------------------------

    def decode(self, data: bytes, key: str) -> Any:
        """Deserialize bytes stored under ``key``; raises :class:`UndecodableValue`."""
        if not data:
            raise UndecodableValue("empty value")
        header = data[0]
        if header in _INT_FIRST_BYTES:
            try:
                return int(data)
            except ValueError:
                raise UndecodableValue("not a decimal integer") from None
        try:
            if header == TEXT:
                return data[1:].decode()
            if header == MSGPACK:
                return self._unpack(data[1:])
            if header == MSGPACK_ZSTD:
                return self._unpack(self._decompress(data[1:]))
            if header in (PICKLE, PICKLE_ZSTD):
                return self._decode_pickle(data, key)
        except UndecodableValue:
            raise
        except Exception as exc:  # corrupt input can raise almost anything
            raise UndecodableValue(f"{type(exc).__name__}: {exc}") from None
        raise UndecodableValue(f"unknown header byte 0x{header:02x}")

    def decode_many(
        self, keys: Iterable[str], stored: Iterable[bytes | None], prefix: str = ""
    ) -> tuple[dict[str, Any], list[tuple[str, UndecodableValue]]]:
        """Decode a batch read: ``({key: value} of the values found, [(key, error)])``.

        ``stored[i]`` is what is stored under ``prefix + keys[i]``, ``None`` when
        absent (left out of both results). Every value decodes exactly as
        :meth:`decode` would decode it, and every one it would refuse is in the
        second list with the same error.

        Why it exists: a ``get_many`` of 100 str values spent 0.44 µs a key in a
        loop calling ``decode``, of which the UTF-8 decoding itself is 0.14 µs; the
        rest was the call, a stored-key concatenation and four header tests. A
        ``TEXT`` value is decoded here inline (0.2 µs a key, all told); every other
        value, and any ``TEXT`` one that fails (empty or not UTF-8), goes through
        ``decode``, which has the last word.
        """
        found: dict[str, Any] = {}
        failed: list[tuple[str, UndecodableValue]] = []
        decode = self.decode
        # A subclass that overrides decode() decides about every value itself.
        text = TEXT if type(self).decode is Codec.decode else -1
        for key, data in zip(keys, stored, strict=True):
            if data is None:
                continue
            try:
                if data[0] == text:
                    found[key] = data[1:].decode()
                    continue
            except (IndexError, UnicodeDecodeError):
                pass  # empty, or not UTF-8: decode() refuses it in its own words
            try:
                found[key] = decode(data, prefix + key)
            except UndecodableValue as exc:
                failed.append((key, exc))
        return found, failed

    def _decode_pickle(self, data: bytes, key: str) -> Any:
        if not self._verifying_keys:
            raise UndecodableValue("a pickled value, but this codec has no pickle_key")
        header, mac, body = data[:1], data[1 : 1 + _MAC_SIZE], data[1 + _MAC_SIZE :]
        if not any(
            hmac.compare_digest(mac, _mac(secret, key, header, body))
            for secret in self._verifying_keys
        ):
            raise UndecodableValue("bad signature")
        if data[0] == PICKLE_ZSTD:
            body = self._decompress(body)
        return pickle.loads(body)

    def _unpack(self, body: bytes) -> Any:
        return msgpack.unpackb(body, ext_hook=self._ext_hook, strict_map_key=False)

    def _ext_hook(self, code: int, payload: bytes) -> Any:
        if code == _EXT_TUPLE:
            return tuple(self._unpack(payload))
        if code == _EXT_SET:
            return set(self._unpack(payload))
        if code == _EXT_FROZENSET:
            return frozenset(self._unpack(payload))
        if code == _EXT_DATETIME:
            year, month, day, hour, minute, second, micro, fold, tz = self._unpack(payload)
            return dt.datetime(
                year, month, day, hour, minute, second, micro, _tz_from_state(tz), fold=fold
            )
        if code == _EXT_DATE:
            return dt.date.fromordinal(self._unpack(payload))
        if code == _EXT_TIME:
            hour, minute, second, micro, fold, tz = self._unpack(payload)
            return dt.time(hour, minute, second, micro, _tz_from_state(tz), fold=fold)
        if code == _EXT_TIMEDELTA:
            days, seconds, microseconds = self._unpack(payload)
            return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
        if code == _EXT_UUID:
            return uuid.UUID(bytes=payload)
        if code == _EXT_DECIMAL:
            return Decimal(payload.decode())
        if code == _EXT_BIGINT:
            return int(payload)
        if code == _EXT_REGISTERED:
            name, state = self._unpack(payload)
            cls = self._by_name.get(name)
            if cls is None:
                raise UndecodableValue(f"the type {name!r} is not registered with this codec")
            return _from_state(cls, state)
        if code == _EXT_STAMPED:
            fresh_until, load_seconds, value = self._unpack(payload)
            if not {type(fresh_until), type(load_seconds)} <= {int, float}:
                raise UndecodableValue("a freshness stamp whose times are not numbers")
            return restore(value, fresh_until, load_seconds)
        raise UndecodableValue(f"unknown extension type {code}")

    def _decompress(self, body: bytes) -> bytes:
        size = zstandard.frame_content_size(body)
        if size < 0 or size > self.max_value_bytes:
            raise UndecodableValue(f"compressed frame declares {size} bytes")
        return self._decompressor().decompress(body)

    # zstd (de)compressor objects are not thread-safe and costly to create: one per thread.
    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = zstandard.ZstdCompressor(level=self.compression_level)
            self._local.compressor = compressor
        return compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        decompressor = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = zstandard.ZstdDecompressor()
            self._local.decompressor = decompressor
        return decompressor


def _checked(obj: Any, packed: bytes) -> bytes:
    # A bytearray or memoryview packs as msgpack bin (header 0xc4-0xc6). No bin
    # header byte anywhere means there is none, and spares the walk (~1.5 us).
    if 0xC4 in packed or 0xC5 in packed or 0xC6 in packed:
        _refuse_bytes_like(obj)
    return packed


def _refuse_bytes_like(value: Any, depth: int = 0) -> None:
    """Refuse bytearray and memoryview anywhere in ``value``.

    msgpack packs them as ``bytes`` without asking ``default``, so they would come
    back as another type. The type sets are built in C, and only members that are
    containers are visited in Python, so this costs a fraction of the packing.
    """
    cls = type(value)
    if cls is dict:
        types = set(map(type, value.values()))
        types.update(map(type, value))
        members: Any = value.values()
    elif cls in _SEQUENCES:
        types = set(map(type, value))
        members = value
    elif cls in _BYTES_LIKE:
        types, members = {cls}, ()
    else:
        return
    if types & _BYTES_LIKE:
        found = next(iter(types & _BYTES_LIKE))
        raise SerializationError(
            f"Cannot cache a {found.__name__}: it would come back as bytes. "
            "Store bytes(value) instead.",
            {"type": found.__name__},
        )
    if depth < _MAX_DEPTH and types & _CONTAINERS:  # deeper: msgpack refuses it itself
        for member in members:
            if type(member) in _CONTAINERS:
                _refuse_bytes_like(member, depth + 1)


def _signing_key(secret: bytes | str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not isinstance(key, bytes) or len(key) < MIN_PICKLE_KEY_BYTES:
        raise ConfigurationError(
            f"pickle_key must be at least {MIN_PICKLE_KEY_BYTES} bytes; generate one with "
            "python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return key


def _mac(secret: bytes, key: str, header: bytes, body: bytes) -> bytes:
    message = b"".join((_MAC_CONTEXT, key.encode(), b"\x00", header, body))
    return hmac.new(secret, message, hashlib.sha256).digest()


def _tz_state(tz: dt.tzinfo | None, when: dt.datetime | None) -> Any:
    """None, an IANA zone name, or [UTC offset in microseconds, name or None]."""
    if tz is None:
        return None
    if type(tz) is ZoneInfo and tz.key is not None:
        return tz.key
    if type(tz) is dt.timezone:
        offset = tz.utcoffset(when)
        name = tz.tzname(when)
        default_name = dt.timezone(offset).tzname(when)
        return [offset // dt.timedelta(microseconds=1), None if name == default_name else name]
    raise SerializationError(
        f"Cannot cache a datetime or time with tzinfo {tz!r}: use datetime.timezone or "
        "zoneinfo.ZoneInfo(key) (a ZoneInfo loaded from a file has no key to store)",
        {"type": type(tz).__name__},
    )


def _tz_from_state(state: Any) -> dt.tzinfo | None:
    if state is None:
        return None
    if isinstance(state, str):
        return ZoneInfo(state)
    micros, name = state
    offset = dt.timedelta(microseconds=micros)
    if name is not None:
        return dt.timezone(offset, name)
    return dt.timezone.utc if not offset else dt.timezone(offset)


def _kind(cls: type) -> str | None:
    if dataclasses.is_dataclass(cls):
        return "dataclass"
    if issubclass(cls, enum.Enum):
        return "enum"
    if callable(getattr(cls, "model_construct", None)) and hasattr(cls, "model_fields"):
        return "pydantic"
    return None


def _state_of(obj: Any) -> Any:
    kind = _kind(type(obj))
    if kind == "enum":
        return obj.value
    if kind == "dataclass":  # every field, including init=False ones set later
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    fields = {name: getattr(obj, name) for name in type(obj).model_fields}
    extra, private = obj.__pydantic_extra__, obj.__pydantic_private__
    return [fields, extra, sorted(obj.model_fields_set), private]


def _from_state(cls: type, state: Any) -> Any:
    kind = _kind(cls)
    if kind == "enum":
        return cls(state)
    if kind == "dataclass":
        fields = dataclasses.fields(cls)
        obj = cls(**{f.name: state[f.name] for f in fields if f.init})
        for f in fields:
            if not f.init and f.name in state:
                object.__setattr__(obj, f.name, state[f.name])  # works for frozen ones too
        return obj
    fields, extra, fields_set, private = state
    constructor: Callable[..., Any] = cls.model_construct  # type: ignore[attr-defined]
    obj = constructor(_fields_set=set(fields_set), **fields, **(extra or {}))
    if private is not None:
        object.__setattr__(obj, "__pydantic_private__", private)
    return obj


def _type_name(value: Any) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _unsupported(obj: Any) -> SerializationError:
    name = _type_name(obj)
    cls = type(obj)
    if _kind(cls) is not None:
        fix = (
            f"register it: Codec(types=[{cls.__qualname__}]) or codec.register({cls.__qualname__})"
        )
    else:
        fix = (
            "convert it to a supported type, make it a dataclass or pydantic model and "
            "register it with Codec(types=[...]), or opt in to signed pickle with "
            "Codec(serializer='pickle', pickle_key=...)"
        )
    return SerializationError(
        f"Cannot cache a value of type {name!r}: {fix}. Supported types: {_SUPPORTED}, "
        "and registered dataclasses, pydantic models and enums.",
        {"type": name},
    )
