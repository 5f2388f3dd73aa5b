"""Which cache keys and tags belong to a model: the rules both ORM integrations share.

A *rule* says what to drop when a row of a model changes. Its ``keys`` and ``tags``
are each either fixed (a list of strings, or one string) or a function of the changed
object returning a list (or one string, or ``None`` for nothing). Rules registered for
a base class (a mixin, an abstract model) apply to its subclasses too.

Rendering a rule is a plain function of the object, so what a change invalidates can
be tested without a database, an event loop or a cache. The ORM hooks render at the
moment the row is written (a flush, a ``post_save``), while the object's attributes
are loaded and a lazy load still has a transaction to run in, and hand the result to
the cache only after the transaction commits.

:class:`Previous` lets the same rule describe the row *before* a change: it reads like
the object but answers with the old value of each changed attribute, so a product
moved from category 1 to 2 invalidates ``category:1`` as well as ``category:2``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from .._keys import NO_TAGS, validate_keys, validate_tags
from ..errors import ValidationError

__all__ = ["EMPTY", "SAME", "Invalidation", "Previous", "Registry", "Rule", "Source"]

Items = str | Iterable[str] | None
Source = str | Iterable[str] | Callable[[Any], Items]
"""Fixed keys or tags, or a function of the changed object returning them."""


@dataclass(frozen=True)
class Invalidation:
    """The keys and tags one change (or one transaction) asks the cache to drop."""

    keys: frozenset[str] = NO_TAGS
    tags: frozenset[str] = NO_TAGS

    def __bool__(self) -> bool:
        return bool(self.keys or self.tags)

    def __or__(self, other: Invalidation) -> Invalidation:
        if not other:
            return self
        if not self:
            return other
        return Invalidation(self.keys | other.keys, self.tags | other.tags)

    @classmethod
    def union(cls, parts: Iterable[Invalidation]) -> Invalidation:
        keys: set[str] = set()
        tags: set[str] = set()
        for part in parts:
            keys |= part.keys
            tags |= part.tags
        return cls(frozenset(keys), frozenset(tags)) if keys or tags else EMPTY


EMPTY: Final = Invalidation()


def _fixed(items: Items, what: str) -> frozenset[str]:
    """Validate keys or tags: a string is one item, ``None`` is none."""
    if items is None:
        return NO_TAGS
    if isinstance(items, str):
        items = (items,)
    if what == "keys":
        return frozenset(validate_keys(items))
    return validate_tags(items)


@dataclass(frozen=True)
class Rule:
    """The keys and tags of one registration; see :meth:`Registry.add`."""

    keys: frozenset[str] | Callable[[Any], Items]
    tags: frozenset[str] | Callable[[Any], Items]
    bulk_tags: frozenset[str] | None

    @classmethod
    def build(cls, keys: Source, tags: Source, bulk_tags: Iterable[str] | None) -> Rule:
        rule = cls(
            keys if callable(keys) else _fixed(keys, "keys"),
            tags if callable(tags) else _fixed(tags, "tags"),
            None if bulk_tags is None else _fixed(bulk_tags, "tags"),
        )
        if not (rule.reads_object or rule.keys or rule.tags or rule.bulk_tags):
            raise ValidationError("register() needs keys, tags or bulk_tags to invalidate")
        return rule

    @property
    def reads_object(self) -> bool:
        """Whether what this rule drops depends on the object's attributes."""
        return callable(self.keys) or callable(self.tags)

    def render(self, obj: Any) -> Invalidation:
        """The keys and tags for ``obj`` (raises what the user's functions raise)."""
        keys = self.keys if isinstance(self.keys, frozenset) else _fixed(self.keys(obj), "keys")
        tags = self.tags if isinstance(self.tags, frozenset) else _fixed(self.tags(obj), "tags")
        return Invalidation(keys, tags) if keys or tags else EMPTY

    def bulk(self) -> Invalidation | None:
        """What to drop when a statement changes rows nobody loaded; None if unknown.

        Fixed keys and tags hold for any row; per-row ones cannot be computed
        without the rows, so a rule with a function and no ``bulk_tags`` cannot say.
        """
        fixed_keys = self.keys if isinstance(self.keys, frozenset) else NO_TAGS
        fixed_tags = self.tags if isinstance(self.tags, frozenset) else NO_TAGS
        if self.bulk_tags is not None:
            return Invalidation(fixed_keys, fixed_tags | self.bulk_tags)
        if self.reads_object and not (fixed_keys or fixed_tags):
            return None
        return Invalidation(fixed_keys, fixed_tags)


class Registry:
    """Rules by model class; lookups follow the method resolution order.

    Registration happens at start-up; lookups happen on every write, from any
    thread, so they read a dict that registration replaces rather than mutates.
    """

    def __init__(self) -> None:
        self._rules: dict[type, tuple[Rule, ...]] = {}
        self._resolved: dict[type, tuple[Rule, ...]] = {}
        self._lock = threading.Lock()

    def add(self, model: type, rule: Rule) -> None:
        if not isinstance(model, type):
            raise ValidationError(
                f"register() needs a model class, not {type(model).__name__}",
                {"model_type": type(model).__name__},
            )
        with self._lock:
            rules = dict(self._rules)
            rules[model] = (*rules.get(model, ()), rule)
            self._rules = rules
            self._resolved = {}

    def models(self) -> list[type]:
        """The classes rules were registered for (bases included)."""
        return list(self._rules)

    def rules_for(self, cls: type) -> tuple[Rule, ...]:
        """Every rule that applies to instances of ``cls`` (its bases' rules too)."""
        resolved = self._resolved
        found = resolved.get(cls)
        if found is None:
            rules = self._rules
            found = tuple(rule for klass in cls.__mro__ for rule in rules.get(klass, ()))
            resolved[cls] = found
        return found

    def render(self, cls: type, obj: Any) -> Invalidation:
        """What a change of ``obj`` (an instance of ``cls``, or a stand-in) drops."""
        return Invalidation.union(rule.render(obj) for rule in self.rules_for(cls))

    def reads_object(self, cls: type) -> bool:
        return any(rule.reads_object for rule in self.rules_for(cls))


class _Same:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SAME"


SAME: Final = _Same()
"""What a :class:`Previous` lookup returns for an attribute that did not change."""


class Previous:
    """A read-only stand-in for an object as it was before the pending change.

    ``lookup(name)`` returns the old value of attribute ``name``, or :data:`SAME`
    when it did not change (the object's current value is then read). It passes
    ``isinstance`` checks for the object's class. Only direct attribute reads see old
    values: a Python ``@property`` computing from other attributes sees the new ones.
    """

    __slots__ = ("_lookup", "_obj")

    def __init__(self, obj: Any, lookup: Callable[[str], Any]) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_lookup", lookup)

    def __getattr__(self, name: str) -> Any:
        value = self._lookup(name)
        return getattr(self._obj, name) if value is SAME else value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Previous view is read-only")

    @property  # type: ignore[misc]  # isinstance() consults __class__: pass as the model
    def __class__(self) -> type:
        return type(self._obj)

    def __repr__(self) -> str:
        return f"Previous({self._obj!r})"
