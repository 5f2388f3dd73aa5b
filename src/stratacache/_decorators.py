"""``@cached``: memoize async and sync functions and methods in any cache.

::

    @cached(cache, ttl=60, tags=["users"])
    async def get_user(user_id: int, *, full: bool = False) -> dict[str, Any]: ...

    await get_user(5)                  # loads once, then served from the cache
    await get_user.invalidate(5)       # forget that one result
    get_user.key_for(5)                # 'myapp.users.get_user:[5,false]'

Calls go through the cache's ``get_or_set``, so concurrent calls with the same
arguments run the function once (single-flight), an exception reaches every
waiting caller and is never cached, and the next call tries again.

**Default keys** are ``{module}.{qualname}:{arguments}``. The arguments are bound
to the signature first (defaults applied, so ``f(1)``, ``f(1, b=2)`` and
``f(b=2, a=1)`` share one entry when ``b`` defaults to 2), then encoded as
canonical JSON with a type tag for everything that is not a JSON scalar: ``1``,
``1.0``, ``True`` and ``"1"`` get four keys, a set's order never matters, and
nothing depends on ``hash()`` or ``id()``, so every process computes the same key.
Encodings longer than :data:`RAW_ARGUMENTS_LIMIT` characters are replaced by their
SHA-256. Arguments of other types raise :class:`SerializationError` naming them:
give the class a ``__cache_key__()`` method returning an encodable value, or pass
``key=``. Closures sharing a qualified name (functions made by one factory) share
entries too: give them a ``prefix=`` or a ``key=``.

**Methods.** ``self`` and ``cls`` are never part of a key by identity — an
instance's id differs in every process and is reused after it is freed. ``cls``
contributes its qualified name; ``self`` contributes its class's qualified name,
plus its ``__cache_key__()`` when it defines one (for a repository per tenant,
say). So by default every instance of a class shares the results of a method:
right for stateless services, and ``__cache_key__`` or ``key=`` say otherwise.

**Sync functions** cannot await the cache, so the cache work runs on a private
event loop in one daemon thread, started on first use, while the function itself
runs in the calling thread (its thread-locals and context variables intact).
Calls from many threads still load once. This works from any thread, including
one running an event loop (the caller blocks for as long as the lookup, or the
function, takes — as a plain sync call would). Expect tens of microseconds per
call for the thread hop; prefer async functions on hot paths.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import hashlib
import inspect
import json
import os
import pathlib
import re
import string
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from typing import Any, Concatenate, Final, Generic, ParamSpec, TypeVar, overload

from ._keys import encode_part, validate_key, validate_tags
from ._policy import parse_policy
from ._ttl import resolve_ttl
from .caches._interface import CacheInterface
from .errors import InfrastructureError, SerializationError, ValidationError

__all__ = [
    "RAW_ARGUMENTS_LIMIT",
    "AsyncCachedFunction",
    "CacheDecorator",
    "SyncCachedFunction",
    "cached",
]

P = ParamSpec("P")
Q = ParamSpec("Q")
T = TypeVar("T")
S = TypeVar("S")

RAW_ARGUMENTS_LIMIT: Final = 128
"""Longer argument encodings are replaced by ``#`` and their SHA-256 hex digest."""

CacheSource = CacheInterface | Callable[[], CacheInterface]
"""A cache, or a function returning it (for caches built after the decorated code)."""

_RECEIVERS = ("self", "cls")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_UNBOUND: Final[Any] = object()
_FIELD_ROOT = re.compile(r"[^.\[]*")
# A sync function runs in a thread, which no timeout can stop.
_ASYNC_ONLY = frozenset({"loader_timeout"})


def cached(
    cache: CacheSource,
    *,
    ttl: int | Callable[..., int | None] | None = None,
    key: str | Callable[..., str] | None = None,
    tags: Iterable[str] | Callable[..., Iterable[str]] = (),
    prefix: str | None = None,
    **policy: Any,
) -> CacheDecorator:
    """Cache a function's results in ``cache``; see the module docstring.

    Args:
        cache: a :class:`CacheInterface`, or a function of no arguments returning
            one (called on every call, so the cache may be built later).
        ttl: seconds (``None``: the cache's default, ``0``: never expire), or a
            function of the call's arguments returning that.
        key: a format string over the parameter names (``"user:{user_id}"``,
            ``"{self.tenant}:{day}"``) or a function of the call's arguments
            returning the key; used as given, so other code can ``delete`` it.
            Unlike default keys, these are only as distinct as you make them.
        tags: labels for ``invalidate_tags``, or a function of the call's
            arguments returning them.
        prefix: replaces ``{module}.{qualname}`` in default keys.
        policy: ``get_or_set``'s loading options (``stale_while_revalidate``,
            ``stale_if_error``, ``beta``, ``ttl_jitter``, ``lease``,
            ``loader_timeout``). A sync function takes all but ``loader_timeout``
            (nothing can stop a thread); its background reloads run in a worker
            thread.
    """
    if not isinstance(cache, CacheInterface) and not callable(cache):
        raise ValidationError(
            f"cached() needs a CacheInterface (or a function returning one), "
            f"not {type(cache).__name__}"
        )
    if not callable(ttl):
        resolve_ttl(ttl, 0)
    if key is not None and not callable(key) and (type(key) is not str or not key):
        raise ValidationError(
            f"key must be a non-empty format string or a callable, not {key!r:.60}"
        )
    if not callable(tags):
        tags = validate_tags(tags)
    if prefix is not None and (type(prefix) is not str or not prefix or "\x00" in prefix):
        raise ValidationError(f"prefix must be a non-empty str without NUL, not {prefix!r:.60}")
    if "tags" in policy:
        raise ValidationError("give tags as cached(..., tags=...)")
    parse_policy(policy)  # refuse bad options now, not on the first call
    return CacheDecorator(cache, ttl, key, tags, prefix, policy)


class CacheDecorator:
    """What ``cached(...)`` returns: apply it to an async or a sync function."""

    def __init__(
        self,
        cache: CacheSource,
        ttl: int | Callable[..., int | None] | None,
        key: str | Callable[..., str] | None,
        tags: Iterable[str] | Callable[..., Iterable[str]],
        prefix: str | None,
        policy: dict[str, Any],
    ) -> None:
        self._options = (cache, ttl, key, tags, prefix, policy)

    @overload
    def __call__(  # type: ignore[overload-overlap]  # a coroutine function is the special case
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> AsyncCachedFunction[P, T]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> SyncCachedFunction[P, T]: ...

    def __call__(self, fn: Callable[..., Any]) -> Any:
        if isinstance(fn, (classmethod, staticmethod)):
            raise ValidationError(
                "put @cached(...) below @classmethod / @staticmethod, next to the function"
            )
        if not callable(fn):
            raise ValidationError(f"@cached decorates functions, not {type(fn).__name__}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise ValidationError(
                f"cannot cache generator function {fn.__qualname__}: its result is a "
                "one-shot iterator; cache a function returning a list instead"
            )
        spec = _Spec(fn, *self._options)
        if inspect.iscoroutinefunction(fn):
            return AsyncCachedFunction(spec)
        async_only = sorted(set(spec.policy) & _ASYNC_ONLY)
        if async_only:
            raise ValidationError(
                f"{', '.join(async_only)}: only for async functions; {spec.name} is sync, and "
                "nothing can stop a thread running it",
                {"options": async_only},
            )
        return SyncCachedFunction(spec)


class _Spec:
    """Everything a cached function needs to turn a call into a key, TTL and tags."""

    def __init__(
        self,
        fn: Callable[..., Any],
        cache: CacheSource,
        ttl: int | Callable[..., int | None] | None,
        key: str | Callable[..., str] | None,
        tags: Iterable[str] | Callable[..., Iterable[str]],
        prefix: str | None,
        policy: dict[str, Any],
    ) -> None:
        self.fn = fn
        self.policy = policy
        self.name = getattr(fn, "__qualname__", type(fn).__qualname__)
        self.signature = inspect.signature(fn)
        self.parameters = self.signature.parameters
        first = next(iter(self.parameters.values()), None)
        self.receiver = (
            first.name
            if first is not None and first.name in _RECEIVERS and first.kind in _POSITIONAL
            else None
        )
        module = getattr(fn, "__module__", None) or "__main__"
        self.prefix = encode_part(prefix if prefix is not None else f"{module}.{self.name}")
        self.cache_source = cache
        self.ttl = ttl
        self.key_option = key
        self.tags = tags
        if type(key) is str:
            self._check_template(key)

    def _check_template(self, template: str) -> None:
        try:
            fields = [
                field for _, field, _, _ in string.Formatter().parse(template) if field is not None
            ]
        except ValueError as exc:
            raise ValidationError(f"key template {template!r} is malformed: {exc}") from None
        for field in fields:
            match = _FIELD_ROOT.match(field)
            root = match.group() if match else ""
            if not root or root.isdigit():
                raise ValidationError(
                    f"key template {template!r} must name parameters ({{user_id}}), "
                    "not positions ({0} or {})"
                )
            if root not in self.parameters:
                raise ValidationError(
                    f"key template {template!r} names {root!r}, which is not a parameter "
                    f"of {self.name}{self.signature}"
                )

    def cache(self) -> CacheInterface:
        source = self.cache_source
        if isinstance(source, CacheInterface):
            return source
        cache = source()
        if not isinstance(cache, CacheInterface):
            raise ValidationError(
                f"the cache function given to @cached on {self.name} returned "
                f"{type(cache).__name__}, not a CacheInterface"
            )
        return cache

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> inspect.BoundArguments:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}(): {exc}") from None
        bound.apply_defaults()
        return bound

    def key(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        option = self.key_option
        if option is None:
            return self._default_key(self.bind(args, kwargs))
        if type(option) is str:
            try:
                made: object = option.format_map(self.bind(args, kwargs).arguments)
            except (AttributeError, IndexError, KeyError, ValueError) as exc:
                raise ValidationError(
                    f"key template {option!r} failed for {self.name}: {exc!r}"
                ) from None
        else:
            made = option(*args, **kwargs)  # type: ignore[operator]  # a callable here
        if type(made) is not str:
            raise ValidationError(
                f"the key function of {self.name} returned {type(made).__name__}, not str"
            )
        return validate_key(made)

    def _default_key(self, bound: inspect.BoundArguments) -> str:
        encoded: list[Any] = []
        for index, (name, value) in enumerate(bound.arguments.items()):
            if index == 0 and name == self.receiver:
                encoded.append(_receiver(name, value))
                continue
            parameter = self.parameters[name]
            try:
                if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                    encoded.append(["*", *(_tree(item, set()) for item in value)])
                elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
                    items = sorted(value.items())  # names: str, so this sort is total
                    encoded.append(["**", *([k, _tree(v, set())] for k, v in items)])
                else:
                    encoded.append(_tree(value, set()))
            except RecursionError:
                raise SerializationError(
                    f"cannot build a cache key for {self.name}(): argument {name!r} is "
                    "nested too deeply; pass key= to @cached",
                    {"function": self.name, "argument": name},
                ) from None
            except _Unencodable as exc:
                if value is parameter.default:  # a sentinel default, say: it is "the default"
                    encoded.append(["default"])
                    continue
                raise SerializationError(
                    f"cannot build a cache key for {self.name}(): argument {name!r} "
                    f"{exc.where}; pass key= to @cached, or give the class a "
                    "__cache_key__() method returning a str, int or tuple",
                    {"function": self.name, "argument": name, "type": exc.type_name},
                ) from None
        text = json.dumps(encoded, ensure_ascii=True, separators=(",", ":"))
        if len(text) > RAW_ARGUMENTS_LIMIT:
            text = "#" + hashlib.sha256(text.encode("ascii")).hexdigest()
        key = f"{self.prefix}:{text}"
        if len(key) > 1024:
            raise ValidationError(
                f"the default key prefix of {self.name} is too long; pass prefix= to @cached"
            )
        return key

    def ttl_for(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int | None:
        ttl = self.ttl
        return ttl(*args, **kwargs) if callable(ttl) else ttl

    def tags_for(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> frozenset[str]:
        tags = self.tags
        if callable(tags):
            return validate_tags(tags(*args, **kwargs))
        return tags  # type: ignore[return-value]  # validated once, by cached()


# -- the canonical argument encoding ----------------------------------------------------


class _Unencodable(Exception):
    def __init__(self, where: str, type_name: str) -> None:
        super().__init__(where)
        self.where = where
        self.type_name = type_name


def _type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _tag(base: str, value: Any, exact: type) -> str:
    """``base`` for the exact type; ``base:module.Class`` for a subclass (never equal)."""
    kind = type(value)
    return base if kind is exact else f"{base}:{_type_name(kind)}"


def _sorted_trees(trees: Iterable[Any]) -> list[Any]:
    return sorted(trees, key=lambda tree: json.dumps(tree, ensure_ascii=True))


def _tree(value: Any, active: set[int]) -> Any:
    """A JSON-able tree that only equal values of one type share (injective, stable).

    JSON scalars stand for themselves; everything else becomes a list whose first
    item names its type, so a tuple never looks like a list or a str. ``active``
    holds the containers being encoded, to refuse one that contains itself.
    """
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float or kind is bool:
        return value
    hook = getattr(kind, "__cache_key__", None)
    if hook is not None:
        with _visiting(value, active):
            return ["key:" + _type_name(kind), _tree(hook(value), active)]
    if isinstance(value, enum.Enum):
        return ["enum:" + _type_name(kind), value.name]
    if isinstance(value, str):  # subclasses of the scalars: their type, then the plain value
        return ["str:" + _type_name(kind), str.__str__(value)]
    if isinstance(value, int):
        return ["int:" + _type_name(kind), int.__int__(value)]
    if isinstance(value, float):
        return ["float:" + _type_name(kind), float.__float__(value)]
    if isinstance(value, (list, tuple)):
        exact: type = list if isinstance(value, list) else tuple
        with _visiting(value, active):
            return [_tag(exact.__name__, value, exact), *(_tree(item, active) for item in value)]
    if isinstance(value, (set, frozenset)):
        exact = set if isinstance(value, set) else frozenset
        with _visiting(value, active):
            members = _sorted_trees(_tree(item, active) for item in value)
            return [_tag(exact.__name__, value, exact), *members]
    if isinstance(value, dict):
        with _visiting(value, active):
            pairs = _sorted_trees([_tree(k, active), _tree(v, active)] for k, v in value.items())
            return [_tag("dict", value, dict), *pairs]
    return _leaf(value, kind, active)


def _leaf(value: Any, kind: type, active: set[int]) -> Any:
    """Trees for the value types the codec also knows, dataclasses and pydantic models."""
    if isinstance(value, (bytes, bytearray)):
        exact: type = bytes if isinstance(value, bytes) else bytearray
        return [_tag(exact.__name__, value, exact), base64.b64encode(value).decode()]
    if isinstance(value, dt.datetime):
        return [_tag("datetime", value, dt.datetime), value.isoformat()]
    if isinstance(value, (dt.date, dt.time)):
        exact = dt.date if isinstance(value, dt.date) else dt.time
        return [_tag(exact.__name__, value, exact), value.isoformat()]
    if isinstance(value, dt.timedelta):
        tag = _tag("timedelta", value, dt.timedelta)
        return [tag, value.days, value.seconds, value.microseconds]
    if isinstance(value, uuid.UUID):
        return [_tag("uuid", value, uuid.UUID), str(value)]
    if isinstance(value, decimal.Decimal):
        return [_tag("decimal", value, decimal.Decimal), str(value)]
    if isinstance(value, complex):
        return [_tag("complex", value, complex), value.real, value.imag]
    if isinstance(value, pathlib.PurePath):
        return ["path:" + _type_name(kind), str(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        with _visiting(value, active):
            fields = [
                [field.name, _tree(getattr(value, field.name), active)]
                for field in dataclasses.fields(value)
            ]
            return ["dataclass:" + _type_name(kind), *fields]
    dump = getattr(value, "model_dump", None)
    if dump is not None and hasattr(kind, "model_fields"):  # a pydantic model
        with _visiting(value, active):
            return ["model:" + _type_name(kind), _tree(dump(), active)]
    raise _Unencodable(f"is a {_type_name(kind)}, which has no stable encoding", kind.__name__)


@contextlib.contextmanager
def _visiting(container: Any, active: set[int]) -> Iterator[None]:
    """Mark ``container`` as being encoded; refuse it if it already is (a cycle)."""
    marker = id(container)
    if marker in active:
        raise _Unencodable("contains itself", type(container).__name__)
    active.add(marker)
    try:
        yield
    finally:
        active.discard(marker)


def _receiver(name: str, value: Any) -> list[Any]:
    """What ``self`` / ``cls`` adds to a key: a class name, and ``__cache_key__()``."""
    if name == "cls" and isinstance(value, type):
        return ["cls", _type_name(value)]
    kind = type(value)
    hook = getattr(kind, "__cache_key__", None)
    if hook is None:
        return [name, _type_name(kind)]
    try:
        return [name, _type_name(kind), _tree(hook(value), set())]
    except _Unencodable as exc:
        raise SerializationError(
            f"{_type_name(kind)}.__cache_key__() returned a value that {exc.where}; "
            "return a str, int or tuple",
            {"type": kind.__name__},
        ) from None


# -- the cached functions ----------------------------------------------------------------


class _CachedBase:
    """What async and sync cached functions share: binding, metadata, ``key_for``."""

    # Copied from the function by functools.update_wrapper.
    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    def __init__(self, spec: _Spec) -> None:
        self._spec = spec
        self._instance: Any = _UNBOUND
        functools.update_wrapper(self, spec.fn)  # type: ignore[arg-type]  # any object works

    def _bound_copy(self, instance: Any, owner: type[Any] | None) -> Any:
        bound = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound._instance = instance
        getter = getattr(self._spec.fn, "__get__", None)
        if getter is not None:  # so inspect.signature() shows the bound signature
            bound.__dict__["__wrapped__"] = getter(instance, owner)
        return bound

    def _args(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return args if self._instance is _UNBOUND else (self._instance, *args)

    def _key(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        return self._spec.key(self._args(args), kwargs)

    def __repr__(self) -> str:
        bound = "" if self._instance is _UNBOUND else " (bound)"
        return f"<cached function {self._spec.name}{bound}>"


class AsyncCachedFunction(_CachedBase, Generic[P, T]):
    """A cached coroutine function: call and await it as the original."""

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        _mark_coroutine_function(self)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        spec = self._spec
        full = self._args(args)
        key = spec.key(full, kwargs)
        fn = spec.fn
        result: T = await spec.cache().get_or_set(
            key,
            lambda: fn(*full, **kwargs),
            spec.ttl_for(full, kwargs),
            tags=spec.tags_for(full, kwargs),
            **spec.policy,
        )
        return result

    def key_for(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key a call with these arguments uses."""
        return self._key(args, kwargs)

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Forget the result of a call with these arguments; True if one was cached."""
        return await self._spec.cache().delete(self._key(args, kwargs))

    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None
    ) -> AsyncCachedFunction[P, T]: ...

    @overload
    def __get__(
        self: AsyncCachedFunction[Concatenate[S, Q], T],
        instance: S,
        owner: type[Any] | None = None,
    ) -> AsyncCachedFunction[Q, T]: ...

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        return self if instance is None else self._bound_copy(instance, owner)


class SyncCachedFunction(_CachedBase, Generic[P, T]):
    """A cached plain function: call it as the original (see the module docstring)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        spec = self._spec
        full = self._args(args)
        key = spec.key(full, kwargs)
        fn = spec.fn
        result: T = _load_in_caller(
            spec.cache(),
            key,
            lambda: fn(*full, **kwargs),
            spec.ttl_for(full, kwargs),
            spec.tags_for(full, kwargs),
            spec.policy,
        )
        return result

    def key_for(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key a call with these arguments uses."""
        return self._key(args, kwargs)

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Forget the result of a call with these arguments; True if one was cached."""
        cache = self._spec.cache()
        result: bool = _runner().run(cache.delete(self._key(args, kwargs)))
        return result

    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None
    ) -> SyncCachedFunction[P, T]: ...

    @overload
    def __get__(
        self: SyncCachedFunction[Concatenate[S, Q], T],
        instance: S,
        owner: type[Any] | None = None,
    ) -> SyncCachedFunction[Q, T]: ...

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        return self if instance is None else self._bound_copy(instance, owner)


def _mark_coroutine_function(obj: object) -> None:
    """Make ``asyncio``/``inspect.iscoroutinefunction`` true, as frameworks check it."""
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)
    if marker is not None:  # Python < 3.14: asyncio.iscoroutinefunction reads this
        obj.__dict__["_is_coroutine"] = marker
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:  # Python >= 3.12
        mark(obj)


# -- sync functions: the cache on a private loop, the function in the caller's thread ----


def _load_in_caller(
    cache: CacheInterface,
    key: str,
    call: Callable[[], Any],
    ttl: int | None,
    tags: frozenset[str],
    policy: dict[str, Any],
) -> Any:
    """``cache.get_or_set`` for a sync caller; the loader runs in the calling thread.

    The flight's loader, on the private loop, hands the work back: it resolves
    ``wanted`` with a future and waits for the caller to settle it with the
    function's result. Waiters (in any thread) just wait for the flight. A load
    that starts after the caller has its answer (a background reload under
    stale-while-revalidate, XFetch or stale-if-error) runs in a worker thread.
    """
    runner = _runner()
    wanted: concurrent.futures.Future[asyncio.Future[Any]] = concurrent.futures.Future()
    answered = False  # read and written on the private loop only

    async def hand_back() -> Any:
        if answered:  # a background reload, after this call had its answer
            return await asyncio.to_thread(call)
        done = asyncio.get_running_loop().create_future()
        wanted.set_result(done)
        return await done

    async def ask() -> Any:
        nonlocal answered
        try:
            return await cache.get_or_set(key, hand_back, ttl, tags=tags, **policy)
        finally:
            answered = True  # before any background load this call started can run

    outer = runner.submit(ask())
    try:
        concurrent.futures.wait((outer, wanted), return_when=concurrent.futures.FIRST_COMPLETED)
    except BaseException:
        outer.cancel()  # interrupted while waiting: a waiter (if any) takes the load over
        raise
    if not outer.done():  # this caller leads the load
        done = wanted.result()
        try:
            value = call()
        except Exception as exc:
            runner.settle(done, error=exc)
        except BaseException:
            runner.settle(done, abandon=True)  # KeyboardInterrupt...: another caller loads
            raise
        else:
            runner.settle(done, value=value)
    return outer.result()  # the function's error, if it raised, once every waiter has it


class _LoopThread:
    """An event loop running forever in a daemon thread, for sync callers."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="stratacache-sync", daemon=True
        )
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if threading.get_ident() == self.thread.ident:
            coro.close()
            raise InfrastructureError(
                "a sync @cached function was called from stratacache's own loop thread; "
                "this would deadlock"
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def settle(
        self,
        done: asyncio.Future[Any],
        *,
        value: Any = None,
        error: BaseException | None = None,
        abandon: bool = False,
    ) -> None:
        def apply() -> None:
            if done.done():
                return
            if abandon:
                done.cancel()
            elif error is not None:
                done.set_exception(error)
            else:
                done.set_result(value)

        self.loop.call_soon_threadsafe(apply)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


_runner_lock = threading.Lock()
_runners: list[_LoopThread] = []  # at most one per process (a forked child starts its own)


def _runner() -> _LoopThread:
    if _runners and _runners[-1].pid == os.getpid():
        return _runners[-1]
    with _runner_lock:
        if not _runners or _runners[-1].pid != os.getpid():
            if not _runners:
                atexit.register(_stop_runner)
            _runners[:] = [_LoopThread()]
        return _runners[-1]


def _stop_runner() -> None:
    for runner in _runners:
        if runner.pid == os.getpid():
            runner.stop()
