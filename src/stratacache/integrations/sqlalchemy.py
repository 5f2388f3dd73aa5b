"""Drop cache entries when SQLAlchemy rows change — after the transaction commits.

::

    invalidator = CacheInvalidator(cache)
    invalidator.register(
        Product,
        keys=lambda p: [f"product:{p.id}"],
        tags=lambda p: ["products", f"category:{p.category_id}"],
    )
    invalidator.attach(async_session_factory)   # or a Session, sessionmaker, Session class

How a change becomes an invalidation (SQLAlchemy 2.x, sync and async sessions):

* **At flush**, the keys and tags of every inserted, deleted, and really modified
  (``Session.is_modified``) object of a registered model are rendered and kept with
  the transaction. Rendering happens here, while the attributes are loaded and the
  transaction is open: after a commit, expired attributes would need a lazy load,
  which an ``AsyncSession`` cannot do from an event hook. An update is rendered
  twice — with the new values (``after_flush``) and with the old ones
  (``before_flush``, from the attribute history) — so a product moved between
  categories drops both category tags. When an attribute was set without its old
  value ever being loaded (an expired object written blind), the old value is read
  from the database in ``before_flush``, and only if a key function asks for it.
* **At commit** of the outermost transaction (``after_commit``) everything kept is
  sent to the cache in one batch: ``delete_many(keys)`` and ``invalidate_tags(*tags)``.
  A savepoint (``begin_nested()``) that rolls back takes its share with it; a rollback
  of the whole transaction, or closing the session without committing, drops it all.
  Nothing reaches the cache before the commit.
* **How the async cache is called** from these synchronous hooks is
  :mod:`stratacache.integrations._dispatch`'s concern: with an ``AsyncSession`` (the
  hooks run on the event loop) the invalidation is a task — ``await
  invalidator.drain()`` waits for it; with a sync ``Session`` outside a loop,
  ``commit()`` returns once the keys are gone.
* **Failures** of the cache or of a key function are logged and counted
  (``get_stats()["errors"]``); they never fail the flush or the commit.

**Bulk statements** — ``session.execute(update(Product).where(...))``, ``delete()``
and ``insert()`` — change rows without loading them, so no per-row key can be
computed without an extra ``SELECT`` of every matched row (expensive, and racy for
the old values). Instead the ``do_orm_execute`` hook drops the model's *fixed* keys
and tags plus its ``bulk_tags`` (and those of mapped subclasses), after commit like
the rest. Tag every entry cached for a row with a model-wide tag (``"products"``) so
that bulk statements reach it. A model whose rules are all functions and that has no
``bulk_tags`` cannot be mapped: the statement is logged once per model and counted.
Not seen at all: textual SQL (``text("UPDATE ...")``), statements run on a
``Connection`` rather than a ``Session``, and the legacy ``bulk_save_objects()`` /
``bulk_update_mappings()`` APIs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session, async_sessionmaker
from sqlalchemy.orm import (
    InstanceState,
    Mapper,
    ORMExecuteState,
    RelationshipProperty,
    Session,
    SessionTransaction,
    UOWTransaction,
    scoped_session,
    sessionmaker,
)

from ..caches._interface import CacheInterface
from ..errors import ValidationError
from ._base import DEFAULT_TIMEOUT, InvalidatorBase
from ._registry import SAME, Invalidation, Previous

__all__ = ["CacheInvalidator"]

logger = logging.getLogger("stratacache")

_EVENTS = (
    "before_flush",
    "after_flush",
    "after_commit",
    "after_soft_rollback",
    "after_transaction_end",
    "do_orm_execute",
)


@dataclass
class _Pending:
    """What one session's current transaction will invalidate once it commits."""

    entries: list[tuple[SessionTransaction | None, Invalidation]] = field(default_factory=list)
    """(the savepoint it happened in, or None for the outer transaction; what to drop)"""
    staged: list[Invalidation] = field(default_factory=list)
    """Rendered by ``before_flush``; kept only if that flush succeeds."""
    seen: set[int] = field(default_factory=set)
    """ids of the deleted objects ``before_flush`` rendered."""


class CacheInvalidator(InvalidatorBase):
    """Invalidates registered models' keys and tags after SQLAlchemy commits.

    See the module documentation for what is seen when. Register models with
    :meth:`register`, then :meth:`attach` the sessions to watch.
    """

    _kind = "sqlalchemy"

    def __init__(self, cache: CacheInterface, *, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        super().__init__(cache, timeout=timeout)
        self._info_key = f"stratacache.invalidator.{self._id}"
        self._hooks: dict[str, Callable[..., None]] = {
            "before_flush": self._before_flush,
            "after_flush": self._after_flush,
            "after_commit": self._after_commit,
            "after_soft_rollback": self._after_soft_rollback,
            "after_transaction_end": self._after_transaction_end,
            "do_orm_execute": self._do_orm_execute,
        }
        self._attached: list[tuple[Any, Callable[[], None]]] = []
        self._unmapped_warned: set[type] = set()

    # -- attaching -----------------------------------------------------------------

    def attach(self, target: Any) -> None:
        """Watch the sessions of ``target``; attaching twice changes nothing.

        ``target`` may be a ``Session`` or ``AsyncSession`` (that session only), a
        ``sessionmaker`` or ``scoped_session`` (the sessions it makes), an
        ``async_sessionmaker`` or ``async_scoped_session`` (its sessions: the maker
        is reconfigured with a ``sync_session_class`` subclass carrying the hooks,
        since SQLAlchemy events cannot target an async maker), or a ``Session``
        subclass — ``Session`` itself means every session in the process.
        """
        target = _event_target(target)
        if isinstance(target, async_sessionmaker):
            self._attach_async_maker(target)
            return
        if not (
            isinstance(target, (Session, sessionmaker))
            or (isinstance(target, type) and issubclass(target, Session))
        ):
            raise ValidationError(
                "attach() needs a Session, AsyncSession, sessionmaker, async_sessionmaker, "
                f"scoped_session or Session class, not {type(target).__name__}",
                {"target_type": type(target).__name__},
            )
        if any(attached is target for attached, _ in self._attached):
            return
        for name in _EVENTS:
            event.listen(target, name, self._hooks[name])
        self._attached.append((target, lambda: self._unlisten(target)))

    def _attach_async_maker(self, maker: async_sessionmaker[Any]) -> None:
        if any(attached is maker for attached, _ in self._attached):
            return
        base: type[Session] = maker.kw.get("sync_session_class", Session)
        hooked = type(f"{base.__name__}WithCacheInvalidation", (base,), {})
        for name in _EVENTS:
            event.listen(hooked, name, self._hooks[name])
        maker.configure(sync_session_class=hooked)

        def undo() -> None:
            self._unlisten(hooked)
            if maker.kw.get("sync_session_class") is hooked:
                maker.configure(sync_session_class=base)

        self._attached.append((maker, undo))

    def _unlisten(self, target: Any) -> None:
        for name in _EVENTS:
            if event.contains(target, name, self._hooks[name]):
                event.remove(target, name, self._hooks[name])

    def detach(self, target: Any = None) -> None:
        """Stop watching ``target`` (as given to :meth:`attach`), or everything."""
        if target is not None:
            target = _event_target(target)
        keep = []
        for attached, undo in self._attached:
            if target is None or attached is target:
                undo()
            else:
                keep.append((attached, undo))
        self._attached = keep

    def _unhook(self) -> None:
        self.detach()

    # -- per-session bookkeeping ---------------------------------------------------

    def _pending(self, session: Session) -> _Pending:
        pending: _Pending | None = session.info.get(self._info_key)
        if pending is None:
            pending = session.info[self._info_key] = _Pending()
        return pending

    def _watched(self, obj: object) -> bool:
        return bool(self._registry.rules_for(type(obj)))

    # -- flush: render what each change drops ----------------------------------------

    def _before_flush(self, session: Session, flush_context: UOWTransaction, _: Any) -> None:
        pending = self._pending(session)
        staged: list[Invalidation] = []
        seen: set[int] = set()
        with session.no_autoflush:
            for obj in session.deleted:
                if self._watched(obj):
                    seen.add(id(obj))
                    staged.append(self._render(obj))
                    if self._registry.reads_object(type(obj)) and session.is_modified(obj):
                        # changed, then deleted: the row (and the cache) hold the old values
                        staged.append(self._render(obj, self._previous(session, obj)))
            for obj in session.dirty:
                if (
                    self._watched(obj)
                    and self._registry.reads_object(type(obj))
                    and session.is_modified(obj)
                ):
                    staged.append(self._render(obj, self._previous(session, obj)))
        pending.staged, pending.seen = staged, seen

    def _after_flush(self, session: Session, flush_context: UOWTransaction) -> None:
        # The session still shows its pre-flush new/dirty/deleted sets and attribute
        # history here, and new rows have their primary keys.
        pending = self._pending(session)
        plans, seen = pending.staged, pending.seen
        pending.staged, pending.seen = [], set()
        for obj in session.new:
            if self._watched(obj):
                plans.append(self._render(obj))
        for obj in session.dirty:
            if self._watched(obj) and session.is_modified(obj):
                plans.append(self._render(obj))
        for obj in session.deleted:  # deleted by another before_flush hook after ours ran
            if self._watched(obj) and id(obj) not in seen:
                plans.append(self._render(obj))
        plan = Invalidation.union(plans)
        if plan:
            pending.entries.append((session.get_nested_transaction(), plan))

    def _previous(self, session: Session, obj: object) -> Previous:
        """``obj`` as the database still has it (call before the flush writes it)."""
        state: InstanceState[Any] = sa_inspect(obj)
        mapper = state.mapper
        found: dict[str, Any] = {}

        def lookup(name: str) -> Any:
            if name in found:
                return found[name]
            value: Any = SAME
            if name in mapper.attrs:
                history = state.attrs[name].history  # never loads anything
                prop = mapper.attrs[name]
                if not history.has_changes():
                    pass
                elif isinstance(prop, RelationshipProperty) and prop.uselist:
                    value = [*(history.unchanged or ()), *(history.deleted or ())]
                elif history.deleted:
                    value = history.deleted[0]
                elif state.has_identity and name in mapper.column_attrs:
                    value = _load_column(session, state, name)  # set without being loaded
            found[name] = value
            return value

        return Previous(obj, lookup)

    # -- transaction boundaries ------------------------------------------------------

    def _after_commit(self, session: Session) -> None:
        if session.in_nested_transaction():  # a savepoint was released: not committed yet
            return
        pending: _Pending | None = session.info.pop(self._info_key, None)
        if pending is not None and pending.entries:
            self._dispatcher.submit(Invalidation.union(plan for _, plan in pending.entries))

    def _after_soft_rollback(self, session: Session, previous: SessionTransaction) -> None:
        pending: _Pending | None = session.info.get(self._info_key)
        if pending is None:
            return
        pending.staged, pending.seen = [], set()
        if previous.parent is None:
            session.info.pop(self._info_key, None)
        elif previous.nested:
            pending.entries = [
                (origin, plan) for origin, plan in pending.entries if not _within(origin, previous)
            ]

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        # The outer transaction ended without after_commit taking the entries (closed
        # or rolled back): nothing it did reached the database.
        if transaction.parent is None:
            session.info.pop(self._info_key, None)

    # -- bulk statements ---------------------------------------------------------------

    def _do_orm_execute(self, state: ORMExecuteState) -> None:
        if not (state.is_update or state.is_delete or state.is_insert):
            return
        mappers = list(state.all_mappers) or self._mappers_of_table(state)
        plans = []
        for mapper in mappers:
            for sub in mapper.self_and_descendants:
                plan = self._bulk_plan(sub.class_)
                if plan:
                    plans.append(plan)
        plan = Invalidation.union(plans)
        if plan:
            session = state.session
            self._pending(session).entries.append((session.get_nested_transaction(), plan))

    def _bulk_plan(self, cls: type) -> Invalidation:
        parts = [rule.bulk() for rule in self._registry.rules_for(cls)]
        if any(part is None for part in parts):
            self._dispatcher.bump("unmapped_bulk")
            if cls not in self._unmapped_warned:
                self._unmapped_warned.add(cls)
                logger.warning(
                    "stratacache: a bulk UPDATE/DELETE/INSERT changed %s rows, whose keys and "
                    "tags are computed per row and so cannot be invalidated; register "
                    "bulk_tags=[...] for it (and tag the cached entries with them)",
                    cls.__name__,
                )
        return Invalidation.union(part for part in parts if part is not None)

    def _mappers_of_table(self, state: ORMExecuteState) -> list[Mapper[Any]]:
        """The registered mappers of a Core ``update(table)`` run through the session."""
        table = getattr(state.statement, "table", None)
        if table is None:
            return []
        found: list[Mapper[Any]] = []
        for model in self._registry.models():
            mapper: Any = sa_inspect(model, raiseerr=False)
            if isinstance(mapper, Mapper) and table in mapper.tables:
                found.append(mapper)
        return found


def _event_target(target: Any) -> Any:
    """What SQLAlchemy's events listen on for ``target`` (an async maker stays itself)."""
    if isinstance(target, (scoped_session, async_scoped_session)):
        return _event_target(target.session_factory)
    if isinstance(target, AsyncSession):
        return target.sync_session
    if isinstance(target, type) and issubclass(target, AsyncSession):
        return target.sync_session_class
    return target


def _within(origin: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    """Whether ``origin`` is ``ancestor`` or a transaction nested inside it."""
    while origin is not None:
        if origin is ancestor:
            return True
        origin = origin.parent
    return False


def _load_column(session: Session, state: InstanceState[Any], name: str) -> Any:
    """The value the database holds for one column of a persistent object."""
    mapper: Mapper[Any] = state.mapper
    cls = mapper.class_
    identity = state.identity or ()
    criteria = [
        getattr(cls, mapper.get_property_by_column(column).key) == value
        for column, value in zip(mapper.primary_key, identity, strict=True)
    ]
    with session.no_autoflush:
        row = session.execute(select(getattr(cls, name)).where(*criteria)).first()
    return SAME if row is None else row[0]
