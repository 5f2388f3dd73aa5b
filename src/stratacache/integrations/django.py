"""Drop cache entries when Django rows change — after the transaction commits.

::

    # myapp/apps.py
    class MyAppConfig(AppConfig):
        def ready(self) -> None:
            invalidator = CacheInvalidator(cache)
            invalidator.register(
                Product,
                keys=lambda p: [f"product:{p.pk}"],
                tags=lambda p: ["products", f"category:{p.category_id}"],
            )
            invalidator.connect()

What is seen, and when:

* ``post_save`` and ``post_delete`` of a registered model (its subclasses and proxies
  too) render its keys and tags; ``m2m_changed`` (``add``, ``remove``, ``clear``, from
  either side of the relation) renders those of the instance *and* of the related
  objects, whose reverse sets changed too. Each change is handed to
  ``transaction.on_commit``: nothing reaches the cache before the outermost
  ``atomic`` block commits, a rolled-back savepoint takes its changes with it, and
  in autocommit mode the invalidation runs as soon as the row is written.
* An update is rendered with the row's values before and after the save, so a product
  moved between categories drops both category tags. Django does not keep old
  values, so ``pre_save`` reads the row's loaded fields back (one ``SELECT`` by primary
  key, only for models whose keys or tags are functions); fields that
  ``save(update_fields=...)`` leaves unsaved keep their stored values in the "after"
  rendering. Pass ``previous_values=False`` to skip the read (the instance is then
  rendered as it is) when no key depends on a field that changes.
* Django is synchronous and the cache is async. The invalidation runs on a private
  event loop in a daemon thread, started on first use, and the ``on_commit``
  callback waits for it (at most ``timeout`` seconds): once the ``atomic`` block (or
  ``save()`` in autocommit) returns, the entries are gone. asgiref's
  ``async_to_sync`` is not used because in WSGI code it starts a fresh thread and
  event loop per call, so a Redis-backed cache would open and close a connection on
  every commit; one long-lived loop keeps one. Sharing the cache with an ASGI app's
  own loop is fine: stratacache opens a Redis client per event loop.
* Failures of the cache or of a key function are logged and counted
  (``get_stats()["errors"]``); they never break the save or the commit.

Not seen, because Django sends no signal for them: ``QuerySet.update()``,
``bulk_create()``, ``bulk_update()`` and raw SQL. Invalidate by hand after those
(``await cache.invalidate_tags("products")``). ``QuerySet.delete()`` does send
``post_delete`` for each row, so it is seen.

Receivers are connected per model (never for every sender, which would turn off
Django's fast deletes for all models) with a ``dispatch_uid``, so calling
:meth:`CacheInvalidator.connect` twice connects once; :meth:`~CacheInvalidator.disconnect`
undoes it. They are strong references: an invalidator stays connected until
disconnected, even if nothing else refers to it.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

from django.apps import apps
from django.core.exceptions import AppRegistryNotReady
from django.db import transaction
from django.db.models import signals

from ..caches._interface import CacheInterface
from ..errors import ConfigurationError
from ._base import DEFAULT_TIMEOUT, InvalidatorBase
from ._registry import EMPTY, SAME, Invalidation, Previous, Rule

__all__ = ["CacheInvalidator"]


class CacheInvalidator(InvalidatorBase):
    """Invalidates registered models' keys and tags after Django commits.

    See the module documentation. Register models with :meth:`register`, then call
    :meth:`connect` (from an ``AppConfig.ready()``, once the models are loaded).

    Args:
        cache: the stratacache cache to invalidate.
        timeout: seconds one invalidation may take (``None``: no limit).
        previous_values: read an updated row's old values back in ``pre_save`` so
            the keys and tags it had are dropped too.
    """

    _kind = "django"

    def __init__(
        self,
        cache: CacheInterface,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        previous_values: bool = True,
    ) -> None:
        super().__init__(cache, timeout=timeout)
        self.previous_values = previous_values
        self._uid = f"stratacache.integrations.django.{self._id}"
        self._receivers: set[tuple[Any, Any]] = set()  # (signal, sender)
        self._connected = False
        # Values that pre_save / pre_clear compute for the matching post_ signal,
        # by (id(instance), kind); the weak reference tells a reused id apart and
        # forgets entries of saves that failed in between.
        self._stash: dict[tuple[int, str], tuple[weakref.ref[Any], Any]] = {}

    # -- connecting ------------------------------------------------------------------

    def connect(self) -> None:
        """Connect the signal receivers for every registered model (idempotent).

        Models registered later are connected as they are registered. Raises
        :class:`ConfigurationError` before Django's app registry is ready.
        """
        self._connect_models()
        self._connected = True

    def disconnect(self) -> None:
        """Disconnect every receiver; registrations are kept for a later :meth:`connect`."""
        self._connected = False
        for signal, sender in self._receivers:
            signal.disconnect(sender=sender, dispatch_uid=self._uid)
        self._receivers.clear()

    def _unhook(self) -> None:
        self.disconnect()

    def _add(self, model: type, rule: Rule) -> None:
        super()._add(model, rule)
        if self._connected:
            self._connect_models()

    def _connect_models(self) -> None:
        try:
            models = apps.get_models()
        except AppRegistryNotReady as exc:
            raise ConfigurationError(
                "Django's models are not loaded yet: call CacheInvalidator.connect() "
                "from an AppConfig.ready() method, or after django.setup()"
            ) from exc
        for model in models:
            if self._registry.rules_for(model):
                self._listen(signals.pre_save, self._pre_save, model)
                self._listen(signals.post_save, self._post_save, model)
                self._listen(signals.post_delete, self._post_delete, model)
            for m2m in model._meta.many_to_many:
                other = m2m.remote_field.model
                if self._registry.rules_for(model) or (
                    isinstance(other, type) and self._registry.rules_for(other)
                ):
                    self._listen(signals.m2m_changed, self._m2m_changed, m2m.remote_field.through)

    def _listen(self, signal: Any, receiver: Any, sender: Any) -> None:
        if (signal, sender) not in self._receivers:
            signal.connect(receiver, sender=sender, weak=False, dispatch_uid=self._uid)
            self._receivers.add((signal, sender))

    # -- receivers -------------------------------------------------------------------

    def _pre_save(
        self,
        sender: Any,
        instance: Any,
        raw: bool = False,
        using: str | None = None,
        update_fields: Any = None,
        **kwargs: Any,
    ) -> None:
        if (
            not self.previous_values
            or raw
            or instance._state.adding
            or instance.pk is None
            or not self._registry.reads_object(type(instance))
        ):
            return
        try:
            views = self._row_views(instance, using, update_fields)
        except Exception as exc:
            self._dispatcher.failed(f"reading the old row of {type(instance).__name__}", exc)
            return
        if views is not None:
            before, after = views
            self._stash_put(instance, "save", (self._render(instance, before), after))

    def _post_save(
        self, sender: Any, instance: Any, using: str | None = None, **kwargs: Any
    ) -> None:
        before, after = self._stash_pop(instance, "save") or (EMPTY, None)
        self._on_commit(self._render(instance, after) | before, using)

    def _post_delete(
        self, sender: Any, instance: Any, using: str | None = None, **kwargs: Any
    ) -> None:
        self._on_commit(self._render(instance), using)

    def _m2m_changed(
        self,
        sender: Any,
        instance: Any,
        action: str,
        reverse: bool,
        model: Any,
        pk_set: Any,
        using: str | None = None,
        **kwargs: Any,
    ) -> None:
        if action in ("post_add", "post_remove"):
            if pk_set:
                related = self._render_related(model, using, pk__in=pk_set)
                self._on_commit(self._render(instance) | related, using)
        elif action == "pre_clear":  # the related rows are known only before the clear
            field = _m2m_field(sender, type(instance), model, reverse)
            if field is not None:
                lookup = field.name if reverse else field.related_query_name()
                related = self._render_related(model, using, **{lookup: instance.pk})
                if related:
                    self._stash_put(instance, "clear", related)
        elif action == "post_clear":
            related = self._stash_pop(instance, "clear") or EMPTY
            self._on_commit(self._render(instance) | related, using)

    # -- helpers ---------------------------------------------------------------------

    def _on_commit(self, plan: Invalidation, using: str | None) -> None:
        if plan:
            transaction.on_commit(functools.partial(self._dispatcher.submit, plan), using=using)

    def _render_related(self, model: Any, using: str | None, **lookup: Any) -> Invalidation:
        """What the changed m2m set of each ``model`` row matching ``lookup`` drops."""
        if not self._registry.rules_for(model):
            return EMPTY
        if not self._registry.reads_object(model):
            return self._render_fixed(model)
        try:
            rows = list(model._base_manager.using(using).filter(**lookup))
        except Exception as exc:
            self._dispatcher.failed(f"loading related {model.__name__} rows", exc)
            return EMPTY
        return Invalidation.union(self._render(row) for row in rows)

    def _render_fixed(self, model: type) -> Invalidation:
        return Invalidation.union(rule.render(None) for rule in self._registry.rules_for(model))

    def _row_views(
        self, instance: Any, using: str | None, update_fields: Any
    ) -> tuple[Previous, Previous | None] | None:
        """``instance`` as its row is before the save, and as it will be after it.

        None when the row matches the instance. The row after the save differs from
        the instance when ``update_fields`` leaves changed fields unsaved: those keep
        their old values (None then means "read the instance itself").
        """
        loaded = instance.__dict__  # deferred fields are absent: they cannot have changed
        fields = [
            f for f in instance._meta.concrete_fields if not f.primary_key and f.attname in loaded
        ]
        if not fields:
            return None
        row = (
            type(instance)
            ._base_manager.using(using)
            .filter(pk=instance.pk)
            .values(*(f.attname for f in fields))
            .first()
        )
        if row is None:
            return None
        changed = [f for f in fields if row[f.attname] != loaded[f.attname]]
        if not changed:
            return None
        before = _old_values(instance, changed, row, using)
        if update_fields is None:
            return before, None
        unsaved = [
            f for f in changed if f.name not in update_fields and f.attname not in update_fields
        ]
        after = _old_values(instance, unsaved, row, using) if unsaved else None
        return before, after

    def _stash_put(self, instance: Any, kind: str, value: Any) -> None:
        key = (id(instance), kind)
        stash = self._stash
        ref = weakref.ref(instance, lambda _: stash.pop(key, None))
        stash[key] = (ref, value)

    def _stash_pop(self, instance: Any, kind: str) -> Any:
        entry = self._stash.pop((id(instance), kind), None)
        if entry is None or entry[0]() is not instance:
            return None
        return entry[1]


def _old_values(
    instance: Any, fields: list[Any], row: dict[str, Any], using: str | None
) -> Previous:
    """``instance`` with the row's values for ``fields``.

    A foreign key read by name (``p.category`` rather than ``p.category_id``) gives
    the row's related object, loaded only if a key function asks for it.
    """
    values = {f.attname: row[f.attname] for f in fields}
    relations = {f.name: f for f in fields if f.is_relation}
    found: dict[str, Any] = {}

    def lookup(name: str) -> Any:
        if name in values:
            return values[name]
        field = relations.get(name)
        if field is None:
            return SAME
        if name not in found:
            old = values[field.attname]
            manager = field.related_model._base_manager.using(using)
            target = field.target_field.attname
            found[name] = None if old is None else manager.filter(**{target: old}).first()
        return found[name]

    return Previous(instance, lookup)


def _m2m_field(through: Any, instance_model: Any, model: Any, reverse: bool) -> Any:
    """The ManyToManyField whose table is ``through`` (it lives on the forward side)."""
    owner = model if reverse else instance_model
    for field in owner._meta.many_to_many:
        if field.remote_field.through is through:
            return field
    return None
