"""Multi-tenancy: tenant-scoped keys, and a cache view confined to one tenant.

**Key format.** :class:`CacheKeyBuilder` produces the format the contract fixes,
``{namespace}:v{version}:t:{tenant_id}:{parts}`` (``zum:v1:t:1:user:5``; without a
tenant ``zum:v1:user:5``; an empty namespace is left out: ``v1:t:1:user:5``).

**Isolation.** Namespace, tenant id and every part go through
:func:`~stratacache._keys.encode_part`, which escapes ``\\`` and ``:``, so the
segments can be split back unambiguously from the left: two tenants never share a
key, and one tenant's prefix is never a prefix of another's (``a`` vs ``a:b``).
Plain ids (``1``, ``acme``, a UUID) are left untouched, so the contract's exact
format holds. What cannot be isolated is refused with :class:`ValidationError`:
an empty id, NUL, lone surrogates (Redis could not store the key) and ids over
:data:`MAX_TENANT_ID_LENGTH` characters (they would leave no room for keys).
Everything else — ``*``, ``?``, ``[``, ``]``, ``{``, ``}``, spaces, RTL marks — is
kept exactly, and glob characters are escaped wherever a prefix enters a pattern.

**Whole-tenant invalidation.** :class:`TenantCache` keeps each tenant's current
*generation* in the underlying cache, under a version key outside the data
keyspace, and puts it in every data key: ``{prefix}g{generation}:{key}``.
:meth:`TenantCache.bump_version` is one atomic ``incr`` of that key, so it is O(1)
and every process sharing the cache sees it at once (through the two-tier cache's
invalidation channel for memory tiers). Entries of older generations are never
read again and simply age out by their TTL (or are evicted); ``clear()`` removes
them too. A generation starts at a random number, so a version key that is lost
(evicted, expired, flushed) never brings back entries of an earlier generation:
the tenant just starts empty.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from .._keys import (
    MAX_KEY_LENGTH,
    MAX_PATTERN_LENGTH,
    encode_part,
    escape_glob,
    validate_key,
    validate_keys,
    validate_pattern,
    validate_tags,
)
from .._policy import parse_policy
from .._stamps import conceal, reveal
from .._ttl import resolve_ttl
from ..errors import InfrastructureError, ValidationError
from ._interface import MISSING, CacheInterface, validate_delta
from ._memory import InMemoryCache

__all__ = ["MAX_TENANT_ID_LENGTH", "CacheKeyBuilder", "TenantCache", "TenantId"]

logger = logging.getLogger("stratacache")

TenantId = str | int | uuid.UUID
"""What a tenant id may be. ``1`` and ``"1"`` name the same tenant (both give ``t:1``)."""

MAX_TENANT_ID_LENGTH: Final = 256
_GENERATION_DIGITS = 19  # the longest generation: a signed 64-bit int
# Random starts stay below 1e14: Lua (Redis scripts) prints larger numbers in exponent form.
_FIRST_GENERATION_RANGE = 1 << 40
_DEGRADED_GENERATION = 0  # never a real generation: those start at 1 or more
_VERSION_SUFFIX = "version"  # data keys continue with "g<digits>:", never with "v"
_SEED_FLIGHT = "stratacache.tenant-version"
_warned_unavailable = False


def _text(value: object, what: str) -> str:
    """The text of a tenant id or key part: ``str``, ``int`` (not bool) or ``UUID``."""
    kind = type(value)
    if kind is str:
        text: str = value  # type: ignore[assignment]  # checked just above
    elif kind is int or isinstance(value, uuid.UUID):
        text = str(value)
    else:
        raise ValidationError(
            f"{what} must be a str, int or UUID, not {kind.__name__}; convert it explicitly",
            {"type": kind.__name__},
        )
    if "\x00" in text:
        raise ValidationError(f"{what} must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{what} must not contain lone surrogates (it could not be stored in Redis)"
        ) from None
    return text


def _tenant_segment(tenant_id: object) -> str:
    """The encoded ``t:{tenant}`` segment, or :class:`ValidationError` for a bad id."""
    text = _text(tenant_id, "tenant_id")
    if not text:
        raise ValidationError("tenant_id must not be empty")
    if len(text) > MAX_TENANT_ID_LENGTH:
        raise ValidationError(
            f"tenant_id must be at most {MAX_TENANT_ID_LENGTH} characters, got {len(text)}",
            {"tenant_id_length": len(text)},
        )
    return f"t:{encode_part(text)}"


class CacheKeyBuilder:
    """Builds namespaced, versioned, tenant-scoped keys.

    >>> CacheKeyBuilder("zum").build("user", 5, tenant_id=1)
    'zum:v1:t:1:user:5'
    >>> CacheKeyBuilder("zum").build("user", 5)
    'zum:v1:user:5'

    Parts are ``str``, ``int`` or ``UUID``; ``\\`` and ``:`` inside them are
    escaped, so ``build("a:b")`` and ``build("a", "b")`` differ. Without a tenant,
    a first part ``"t"`` is refused (it would build a key inside the tenants'
    keyspace), and so is a first part like ``"v2"`` with ``include_version=False``
    (it would build a versioned key). Bump ``version`` to retire every key at once.
    """

    def __init__(self, namespace: str = "", version: int = 1) -> None:
        if type(namespace) is not str:
            raise ValidationError(f"namespace must be a str, not {type(namespace).__name__}")
        _text(namespace, "namespace")
        if type(version) is not int or version < 0:
            raise ValidationError(f"version must be a non-negative int, got {version!r}")
        self._namespace = namespace
        self._version = version
        head = encode_part(namespace)
        self._heads = {True: f"{head}:v{version}:", False: f"{head}:"}
        if not namespace:
            self._heads = {True: f"v{version}:", False: ""}

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def version(self) -> int:
        return self._version

    def __repr__(self) -> str:
        return f"CacheKeyBuilder(namespace={self._namespace!r}, version={self._version})"

    def prefix(self, tenant_id: TenantId | None = None, *, include_version: bool = True) -> str:
        """What every key of this tenant (or of this namespace) starts with; ends in ``:``.

        Without a tenant the prefix also covers every tenant's keys.
        """
        head = self._heads[bool(include_version)]
        if tenant_id is None:
            return head
        return f"{head}{_tenant_segment(tenant_id)}:"

    def pattern(
        self,
        glob: str = "*",
        *,
        tenant_id: TenantId | None = None,
        include_version: bool = True,
    ) -> str:
        """A glob for ``invalidate_pattern``: ``glob`` applied inside the (escaped) prefix."""
        validate_pattern(glob)
        return escape_glob(self.prefix(tenant_id, include_version=include_version)) + glob

    def build(
        self,
        *parts: str | int | uuid.UUID,
        tenant_id: TenantId | None = None,
        include_version: bool = True,
    ) -> str:
        """The key for ``parts``: ``{namespace}:v{version}:t:{tenant_id}:{parts}``."""
        texts = [_text(part, "key parts") for part in parts]
        if tenant_id is None and texts:
            if texts[0] == "t":
                raise ValidationError(
                    "a first part 't' without tenant_id would build a key inside the "
                    "tenants' keyspace; pass tenant_id= or choose another part"
                )
            if not include_version and texts[0][:1] == "v" and texts[0][1:].isdigit():
                raise ValidationError(
                    f"a first part {texts[0]!r} with include_version=False would build a "
                    "versioned key; choose another part"
                )
        prefix = self.prefix(tenant_id, include_version=include_version)
        key = prefix + ":".join(map(encode_part, texts)) if texts else prefix[:-1]
        return validate_key(key)


class TenantCache(CacheInterface):
    """A :class:`CacheInterface` view confined to one tenant of any underlying cache.

    Every key, tag and pattern is placed under the tenant's prefix (see the module
    docstring), so nothing done through the view — ``clear()``, ``delete_pattern("*")``,
    ``invalidate_tags`` — can read or remove another tenant's entries.

    Args:
        cache: the shared cache (memory, Redis, two-tier, even another view).
        tenant_id: ``str``, ``int`` or ``UUID``; see :class:`CacheKeyBuilder`.
        namespace / version: passed to :class:`CacheKeyBuilder` for the prefix.
        owns_cache: if true, ``connect()`` and ``aclose()`` reach the underlying
            cache; by default the view leaves the shared cache's lifecycle to its
            owner and ``aclose()`` only closes the view.

    Keys may be at most :attr:`max_key_length` characters (1024 less the prefix).
    Each operation reads the tenant's generation first: an extra lookup in the
    underlying cache (a memory hit in the two-tier cache, a round trip for a
    Redis-only cache), which also shows in the underlying cache's own stats.
    :meth:`get_stats` counts this view's operations only. Views are cheap to
    create, but the stats live in the view: keep one per tenant to keep them.
    """

    def __init__(
        self,
        cache: CacheInterface,
        tenant_id: TenantId,
        *,
        namespace: str = "",
        version: int = 1,
        owns_cache: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(cache, CacheInterface):
            raise ValidationError(
                f"TenantCache needs a CacheInterface to wrap, not {type(cache).__name__}"
            )
        self.key_builder = CacheKeyBuilder(namespace, version)
        self._prefix = self.key_builder.prefix(tenant_id)
        self.tenant_id = tenant_id
        self.default_ttl = cache.default_ttl
        self.codec = cache.codec
        self._cache = cache
        self._owns = bool(owns_cache)
        self._version_key = self._prefix + _VERSION_SUFFIX
        self.max_key_length = MAX_KEY_LENGTH - len(self._prefix) - len("g:") - _GENERATION_DIGITS
        if self.max_key_length < 1:
            raise ValidationError(
                "namespace and tenant_id are too long: they leave no room for keys",
                {"prefix_length": len(self._prefix)},
            )
        self._closed = False
        self._hits = self._misses = self._sets = self._deletes = self._invalidations = 0
        self._unavailable = 0

    def __repr__(self) -> str:
        return f"TenantCache(tenant_id={self.tenant_id!r:.80}, cache={self._cache!r})"

    @property
    def cache(self) -> CacheInterface:
        """The underlying, shared cache."""
        return self._cache

    @property
    def prefix(self) -> str:
        """What every key of this tenant starts with in the underlying cache."""
        return self._prefix

    # -- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> bool:
        """Connect the underlying cache if this view owns it; else report True."""
        self._check_open()
        if self._owns:
            return await self._cache.connect()
        return True

    async def aclose(self) -> None:
        """Close the view (later operations raise); the underlying cache only if owned."""
        if self._closed:
            return
        self._closed = True
        if self._owns:
            await self._cache.aclose()

    # -- the generation ------------------------------------------------------------------

    async def current_version(self) -> int:
        """The tenant's current generation (starting it if this is the first use)."""
        self._check_open()
        return await self._generation()

    async def bump_version(self) -> int:
        """Invalidate every entry of this tenant at once, in every process; O(1).

        Returns the new generation. Entries of the old one are never read again
        and age out by their TTL. Raises :class:`InfrastructureError` if the
        underlying cache cannot count (Redis down): a bump never fails silently.
        """
        self._check_open()
        cache, key = self._cache, self._version_key
        await cache._start_counter(key, _first_generation())  # a version key to bump
        return await cache.incr(key, 1)

    async def _generation(self) -> int:
        # An ordinary read (not a peek): it keeps the version key the hottest key of
        # an active tenant, so LRU and TinyLFU evict the tenant's data before it.
        value = await self._cache.get(self._version_key, MISSING)
        if type(value) is int:
            return int(value)
        if value is not MISSING:
            raise ValidationError(
                f"the version key {self._version_key!r} holds a {type(value).__name__}, "
                "not an int: something other than TenantCache wrote it"
            )
        # Concurrent first uses on this loop must agree on one generation.
        generation, _ = await self._cache._flights.run(
            (_SEED_FLIGHT, self._version_key), self._start_generation
        )
        return int(generation)

    async def _start_generation(self) -> int:
        try:
            # Atomic: processes (and loops) racing here all get the first one's
            # generation, and it never undoes a concurrent bump.
            generation = await self._cache._start_counter(self._version_key, _first_generation())
        except InfrastructureError as exc:
            # Redis is down and the cache fails safe: serve this operation from a
            # generation no real one ever uses, so nothing stale can be read.
            self._unavailable += 1
            _warn_unavailable(exc)
            return _DEGRADED_GENERATION
        return generation

    # -- keys ------------------------------------------------------------------------

    def _check_key(self, key: str) -> str:
        validate_key(key)
        if len(key) > self.max_key_length:
            raise ValidationError(
                f"keys of this tenant view must be at most {self.max_key_length} characters "
                f"(1024 less the tenant prefix), got {len(key)}",
                {"key_length": len(key), "max_key_length": self.max_key_length},
            )
        return key

    def _data_prefix(self, generation: int) -> str:
        return f"{self._prefix}g{generation}:"

    def _scoped_tags(self, generation: int, tags: Iterable[str]) -> list[str]:
        prefix = self._data_prefix(generation)
        return [prefix + tag for tag in tags]

    async def _full_key(self, key: str) -> str:
        self._check_key(key)
        self._check_open()
        return self._data_prefix(await self._generation()) + key

    async def _full_keys(self, keys: Iterable[str]) -> tuple[list[str], list[str]]:
        valid = [self._check_key(key) for key in validate_keys(keys)]
        self._check_open()
        prefix = self._data_prefix(await self._generation())
        return valid, [prefix + key for key in valid]

    async def _full_pattern(self, pattern: str, generation: int | None = None) -> str:
        validate_pattern(pattern)
        self._check_open()
        if generation is None:
            generation = await self._generation()
        full = escape_glob(self._data_prefix(generation)) + pattern
        if len(full) > MAX_PATTERN_LENGTH:
            room = MAX_PATTERN_LENGTH - len(full) + len(pattern)
            raise ValidationError(
                f"patterns of this tenant view must be at most {room} characters",
                {"pattern_length": len(pattern)},
            )
        return full

    # -- reads -----------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        value = await self._cache.get(await self._full_key(key), MISSING)
        if value is MISSING:
            self._misses += 1
            return default
        self._hits += 1
        return value

    async def exists(self, key: str) -> bool:
        return await self._cache.exists(await self._full_key(key))

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        valid, full = await self._full_keys(keys)
        found = await self._cache.get_many(full)
        result = {key: found[name] for key, name in zip(valid, full, strict=True) if name in found}
        self._hits += len(result)
        self._misses += len(valid) - len(result)
        return result

    async def get_ttl(self, key: str) -> int | None:
        return await self._cache.get_ttl(await self._full_key(key))

    # -- writes ----------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, ttl: int | None = None, *, tags: Iterable[str] = ()
    ) -> None:
        self._check_key(key)
        resolve_ttl(ttl, self.default_ttl)
        labels = validate_tags(tags)
        self._check_open()
        generation = await self._generation()
        full = self._data_prefix(generation) + key
        await self._cache.set(full, value, ttl, tags=self._scoped_tags(generation, labels))
        self._sets += 1

    async def set_many(self, mapping: Mapping[str, Any], ttl: int | None = None) -> None:
        if not isinstance(mapping, Mapping):
            raise ValidationError(f"set_many needs a mapping, not {type(mapping).__name__}")
        resolve_ttl(ttl, self.default_ttl)
        valid, full = await self._full_keys(list(mapping))
        await self._cache.set_many(
            {name: mapping[key] for key, name in zip(valid, full, strict=True)}, ttl
        )
        self._sets += len(valid)

    async def delete(self, key: str) -> bool:
        removed = await self._cache.delete(await self._full_key(key))
        self._deletes += removed
        return removed

    async def delete_many(self, keys: Iterable[str]) -> int:
        _, full = await self._full_keys(keys)
        removed = await self._cache.delete_many(full)
        self._deletes += removed
        return removed

    async def expire(self, key: str, ttl: int | None) -> bool:
        self._check_key(key)
        resolve_ttl(ttl, self.default_ttl)
        return await self._cache.expire(await self._full_key(key), ttl)

    async def incr(self, key: str, delta: int = 1) -> int:
        self._check_key(key)
        validate_delta(delta)
        return await self._cache.incr(await self._full_key(key), delta)

    async def clear(self) -> None:
        """Remove every entry of this tenant, of every generation; nothing else."""
        self._check_open()
        await self._cache.invalidate_pattern(escape_glob(self._prefix) + "g*")

    async def invalidate_pattern(self, pattern: str) -> int:
        """Remove this tenant's keys matching ``pattern``; ``*`` never leaves the tenant."""
        removed = await self._cache.invalidate_pattern(await self._full_pattern(pattern))
        self._invalidations += removed
        return removed

    async def scan_keys(
        self, pattern: str = "*", *, cursor: str | int = 0, count: int = 100
    ) -> tuple[str, list[str]]:
        """A page of this tenant's keys (current generation) matching ``pattern``."""
        generation = await self._generation()
        full = await self._full_pattern(pattern, generation)
        following, keys = await self._cache.scan_keys(full, cursor=cursor, count=count)
        strip = len(self._data_prefix(generation))
        return following, [key[strip:] for key in keys]

    async def delete_pattern(self, pattern: str) -> int:
        """The same as :meth:`invalidate_pattern` (the name django-redis users know)."""
        return await self.invalidate_pattern(pattern)

    async def invalidate_tags(self, *tags: str) -> int:
        labels = validate_tags(tags)
        self._check_open()
        generation = await self._generation()
        removed = await self._cache.invalidate_tags(*self._scoped_tags(generation, labels))
        self._invalidations += removed
        return removed

    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: int | None = None,
        **policy: Any,
    ) -> Any:
        """Return the cached value, or load, cache and return it (once per process).

        The generation is read once, up front: a value loaded while the tenant's
        version is bumped is stored under the old generation, where nobody reads
        it, so a load that raced an invalidation never outlives it. Loading is the
        underlying cache's (its flights, lease and background loads), so views of
        one tenant share a load.
        """
        options = parse_policy(policy)
        if not callable(loader):
            raise ValidationError(f"loader must be callable, not {type(loader).__name__}")
        self._check_key(key)
        seconds = resolve_ttl(ttl, self.default_ttl)
        self._check_open()
        generation = await self._generation()
        full = self._data_prefix(generation) + key
        token = reveal()  # stamps and all: the cache's policies judge them
        try:
            found = await self._cache.get(full, MISSING)
        finally:
            conceal(token)
        if found is MISSING:
            self._misses += 1
        else:
            self._hits += 1
        scoped = replace(options, tags=frozenset(self._scoped_tags(generation, options.tags)))
        return await self._cache._loading.settle(full, found, loader, seconds, scoped)

    # -- stats ---------------------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        """This view's counters; sizes are per cache, so they are ``None`` here."""
        lookups = self._hits + self._misses
        return {
            "tenant_id": str(self.tenant_id),
            "hits": self._hits,
            "misses": self._misses,
            "sets": self._sets,
            "deletes": self._deletes,
            "invalidations": self._invalidations,
            "hit_rate": self._hits / lookups if lookups else 0.0,
            "evictions": None,
            "expirations": None,
            "entries": None,
            "max_size": None,
            "memory_usage_bytes": None,
            "version_unavailable": self._unavailable,
        }

    async def get_cache_stats(self) -> dict[str, Any]:
        """Per-tenant report: counters, generation, key count (memory caches only).

        Only the statuses of the underlying tiers are included, never their
        figures: those describe every tenant.
        """
        self._check_open()
        underlying = await self._cache.get_cache_stats()
        generation = await self._generation()
        return {
            "backend": "tenant",
            "tenant_id": str(self.tenant_id),
            "prefix": self._prefix,
            "version": generation,
            "keys": self._count_keys(generation),
            "tenant": self.get_stats(),
            "memory": {"status": underlying.get("memory", {}).get("status", "disabled")},
            "redis": {"status": underlying.get("redis", {}).get("status", "disabled")},
        }

    def _count_keys(self, generation: int) -> int | None:
        """Live keys of the current generation, where counting is cheap (memory)."""
        if not isinstance(self._cache, InMemoryCache):
            return None  # a Redis count would SCAN the whole database
        prefix = self._data_prefix(generation)
        live = self._cache._tier.keys()  # a method: the live keys
        return sum(1 for key in live if key.startswith(prefix))

    # -- internals -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError(
                "this TenantCache is closed; create a new view", {"prefix": self._prefix}
            )


def _first_generation() -> int:
    return secrets.randbelow(_FIRST_GENERATION_RANGE) + 1


def _warn_unavailable(exc: InfrastructureError) -> None:
    global _warned_unavailable
    log = logger.debug if _warned_unavailable else logger.warning
    _warned_unavailable = True
    log(
        "stratacache: a tenant's version could not be read or started (%s); serving "
        "from an empty generation until the cache recovers",
        exc.message,
    )
