"""SQLAlchemy session events invalidate mapped keys and tags after commit (SQLite).

Async tests use ``AsyncSession`` over aiosqlite: the invalidation is a task, awaited
with ``invalidator.drain()``. Sync tests use a plain ``Session`` outside any event
loop: ``commit()`` returns once the invalidation is done. Every test fills the same
universe of entries and asserts exactly which of them are gone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, delete, event, insert, update
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    scoped_session,
    sessionmaker,
)

from stratacache import ClientOptions, GenericRedisCache, InfrastructureError, InMemoryCache
from stratacache.integrations.sqlalchemy import CacheInvalidator


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    category_id: Mapped[int]


class Note(Base):
    """A model whose keys are only per row (no bulk_tags)."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


class Boom(Exception):
    pass


KEYS = ["product:1", "product:2", "note:1"]
TAGS = ["products", "category:1", "category:2"]
P1 = {"product:1", "tagged:products", "tagged:category:1"}  # what a change of product 1 drops
P2 = {"product:2", "tagged:products", "tagged:category:2"}


async def fill(cache: InMemoryCache | GenericRedisCache) -> None:
    for key in KEYS:
        await cache.set(key, "v")
    for tag in TAGS:
        await cache.set(f"tagged:{tag}", "v", tags=[tag])


async def gone(cache: InMemoryCache | GenericRedisCache) -> set[str]:
    """The entries of the universe no longer cached (tags as ``tagged:<tag>``)."""
    names = [*KEYS, *(f"tagged:{tag}" for tag in TAGS)]
    return {name for name in names if not await cache.exists(name)}


def register(invalidator: CacheInvalidator) -> None:
    invalidator.register(
        Product,
        keys=lambda p: [f"product:{p.id}"],
        tags=lambda p: ["products", f"category:{p.category_id}"],
        bulk_tags=["products"],
    )


class BrokenCache(InMemoryCache):
    async def delete_many(self, keys: Any) -> int:
        raise InfrastructureError("redis is down")

    async def invalidate_tags(self, *tags: str) -> int:
        raise InfrastructureError("redis is down")


class HangingCache(InMemoryCache):
    async def delete_many(self, keys: Any) -> int:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def _savepoints(engine: Engine) -> None:
    """Let pysqlite run SAVEPOINTs (SQLAlchemy's documented recipe for SQLite)."""

    @event.listens_for(engine, "connect")
    def no_implicit_begin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def explicit_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


def _seed(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    with engine.begin() as connection:  # a Core connection: no session events
        connection.execute(
            insert(Product),
            [{"id": 1, "name": "a", "category_id": 1}, {"id": 2, "name": "b", "category_id": 2}],
        )
        connection.execute(insert(Note), [{"id": 1, "text": "n"}])


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    _savepoints(engine)
    _seed(engine)
    yield engine
    engine.dispose()


@pytest.fixture
async def async_engine(engine: Engine, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    _savepoints(async_engine.sync_engine)
    yield async_engine
    await async_engine.dispose()


@pytest.fixture
def cache() -> InMemoryCache:
    return InMemoryCache()


@pytest.fixture
async def filled(cache: InMemoryCache) -> InMemoryCache:
    await fill(cache)
    return cache


@pytest.fixture
def invalidator(cache: InMemoryCache) -> Iterator[CacheInvalidator]:
    invalidator = CacheInvalidator(cache)
    register(invalidator)
    yield invalidator
    invalidator.close()


@pytest.fixture
def maker(async_engine: AsyncEngine, invalidator: CacheInvalidator) -> async_sessionmaker[Any]:
    maker = async_sessionmaker(async_engine)
    invalidator.attach(maker)
    return maker


@pytest.fixture
def sync_maker(engine: Engine, invalidator: CacheInvalidator) -> sessionmaker[Session]:
    maker = sessionmaker(engine)
    invalidator.attach(maker)
    return maker


# -- AsyncSession ----------------------------------------------------------------------


async def test_insert_invalidates_after_commit_not_at_flush(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        session.add(Product(id=3, name="c", category_id=2))
        await session.flush()
        await invalidator.drain()
        assert await gone(filled) == set()
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == {"tagged:products", "tagged:category:2"}
    assert invalidator.get_stats()["pending"] == 0


async def test_update_moving_category_invalidates_old_and_new_tags(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        product = await session.get(Product, 1)
        assert product is not None
        product.category_id = 2
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == P1 | {"tagged:category:2"}


async def test_a_blind_write_reads_the_old_value_from_the_database(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        product = await session.get(Product, 1)
        assert product is not None
        await session.commit()  # expires product: its old category is no longer loaded
        await invalidator.drain()
        product.category_id = 2  # set without loading the old value
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == P1 | {"tagged:category:2"}


async def test_delete_invalidates_after_commit(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        product = await session.get(Product, 2)
        await session.delete(product)
        await session.flush()
        await invalidator.drain()
        assert await gone(filled) == set()
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == P2


async def test_deleting_an_expired_object_renders_it_before_the_row_goes(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        product = await session.get(Product, 2)
        await session.commit()  # expired: rendering it needs the row, which still exists
        await session.delete(product)
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == P2
    assert invalidator.get_stats()["errors"] == 0


async def test_rollback_invalidates_nothing(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        product = await session.get(Product, 1)
        assert product is not None
        product.category_id = 2
        session.add(Product(id=3, name="c", category_id=2))
        await session.flush()
        await session.rollback()
        product = await session.get(Product, 2)
        assert product is not None
        await session.commit()  # a later commit does not resurrect the rolled-back work
    await invalidator.drain()
    assert await gone(filled) == set()


async def test_closing_the_session_without_commit_invalidates_nothing(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        session.add(Product(id=3, name="c", category_id=2))
        await session.flush()
        await session.close()  # rolls back; a closed session can be used again
        await invalidator.drain()
        assert await gone(filled) == set()
        session.add(Note(id=2, text="m"))
        await session.commit()  # commits only the note, which is not registered
    await invalidator.drain()
    assert await gone(filled) == set()


async def test_an_unchanged_object_is_not_invalidated(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        product = await session.get(Product, 1)
        assert product is not None
        product.name = product.name  # in session.dirty, but not modified
        assert product in session.dirty
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == set()


async def test_a_rolled_back_savepoint_takes_its_invalidations_with_it(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        first = await session.get(Product, 1)
        assert first is not None
        first.name = "changed"
        await session.flush()
        savepoint = await session.begin_nested()
        second = await session.get(Product, 2)
        assert second is not None
        second.name = "undone"
        await session.flush()
        await savepoint.rollback()
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == P1


async def test_a_released_savepoint_waits_for_the_outer_commit(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        async with session.begin_nested():
            second = await session.get(Product, 2)
            assert second is not None
            second.name = "kept"
        await invalidator.drain()
        assert await gone(filled) == set()  # RELEASE SAVEPOINT is not a commit
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == P2


async def test_a_released_savepoint_in_a_rolled_back_transaction_invalidates_nothing(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        async with session.begin_nested():
            session.add(Product(id=3, name="c", category_id=1))
        await session.rollback()
    await invalidator.drain()
    assert await gone(filled) == set()


async def test_bulk_update_invalidates_the_bulk_tags_after_commit(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        await session.execute(update(Product).where(Product.id == 1).values(name="z"))
        await invalidator.drain()
        assert await gone(filled) == set()
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == {"tagged:products"}


async def test_bulk_delete_and_core_table_update_are_seen(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        await session.execute(delete(Product).where(Product.id == 2))
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == {"tagged:products"}
    await fill(filled)
    async with maker() as session:
        await session.execute(update(Base.metadata.tables["products"]).values(name="core"))
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == {"tagged:products"}


async def test_rolled_back_bulk_update_invalidates_nothing(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with maker() as session:
        await session.execute(update(Product).values(name="z"))
        await session.rollback()
    await invalidator.drain()
    assert await gone(filled) == set()


async def test_bulk_update_of_a_model_with_only_per_row_keys_is_logged_and_counted(
    maker: async_sessionmaker[Any],
    invalidator: CacheInvalidator,
    filled: InMemoryCache,
    caplog: pytest.LogCaptureFixture,
) -> None:
    invalidator.register(Note, keys=lambda n: f"note:{n.id}")
    async with maker() as session:
        await session.execute(update(Note).values(text="z"))
        await session.execute(update(Note).values(text="y"))
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == set()
    assert invalidator.get_stats()["unmapped_bulk"] == 2
    assert caplog.text.count("register bulk_tags") == 1


async def test_a_failing_cache_does_not_break_the_commit(
    async_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    invalidator = CacheInvalidator(BrokenCache())
    register(invalidator)
    maker = async_sessionmaker(async_engine)
    invalidator.attach(maker)
    async with maker() as session:
        session.add(Product(id=3, name="c", category_id=1))
        await session.commit()
    await invalidator.aclose()
    async with maker() as session:
        assert await session.get(Product, 3) is not None
    stats = invalidator.get_stats()
    assert stats["errors"] == 2
    assert "redis is down" in stats["last_error"]
    assert "failed after commit" in caplog.text


async def test_a_failing_key_function_does_not_break_the_flush(
    async_engine: AsyncEngine, filled: InMemoryCache
) -> None:
    invalidator = CacheInvalidator(filled)
    invalidator.register(Product, keys=lambda p: [p.no_such_attribute])
    invalidator.register(Product, tags=["products"])
    maker = async_sessionmaker(async_engine)
    invalidator.attach(maker)
    async with maker() as session:
        session.add(Product(id=3, name="c", category_id=1))
        await session.commit()
    await invalidator.aclose()
    assert await gone(filled) == set()  # all of the object's rules rendered as one
    assert invalidator.get_stats()["errors"] == 1


async def test_attaching_one_async_session(
    async_engine: AsyncEngine, invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    async with AsyncSession(async_engine) as other:
        other.add(Product(id=4, name="d", category_id=1))
        await other.commit()
    async with AsyncSession(async_engine) as session:
        invalidator.attach(session)
        session.add(Product(id=3, name="c", category_id=2))
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == {"tagged:products", "tagged:category:2"}


async def test_attaching_twice_invalidates_once(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    invalidator.attach(maker)
    async with maker() as session:
        session.add(Product(id=3, name="c", category_id=2))
        await session.commit()
    await invalidator.drain()
    assert invalidator.get_stats()["batches"] == 1


async def test_detach_restores_the_async_maker(
    maker: async_sessionmaker[Any], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    assert maker.kw["sync_session_class"] is not Session
    invalidator.detach(maker)
    assert maker.kw["sync_session_class"] is Session
    async with maker() as session:
        session.add(Product(id=3, name="c", category_id=2))
        await session.commit()
    await invalidator.drain()
    assert await gone(filled) == set()


def test_attaching_a_scoped_session_and_every_async_session(
    engine: Engine,
    async_engine: AsyncEngine,
    invalidator: CacheInvalidator,
    cache: InMemoryCache,
) -> None:
    asyncio.run(fill(cache))
    scoped = scoped_session(sessionmaker(engine))
    invalidator.attach(scoped)
    scoped.add(Product(id=3, name="c", category_id=2))
    scoped.commit()
    scoped.remove()
    assert asyncio.run(gone(cache)) == {"tagged:products", "tagged:category:2"}

    asyncio.run(fill(cache))
    invalidator.attach(AsyncSession)  # every session of the process, until detached
    try:

        async def insert_one() -> None:
            async with AsyncSession(async_engine) as session:
                session.add(Product(id=4, name="d", category_id=1))
                await session.commit()
            await invalidator.drain()

        asyncio.run(insert_one())
    finally:
        invalidator.detach(AsyncSession)
    assert asyncio.run(gone(cache)) == {"tagged:products", "tagged:category:1"}
    assert not event.contains(Session, "after_commit", invalidator._hooks["after_commit"])


def test_attach_refuses_what_it_cannot_hook(invalidator: CacheInvalidator) -> None:
    with pytest.raises(ValueError, match="attach\\(\\) needs a Session"):
        invalidator.attach(object())


# -- sync Session ----------------------------------------------------------------------


def test_sync_commit_returns_after_the_invalidation(
    sync_maker: sessionmaker[Session], cache: InMemoryCache
) -> None:
    asyncio.run(fill(cache))
    with sync_maker() as session:
        product = session.get(Product, 1)
        assert product is not None
        product.category_id = 2
        session.flush()
        assert asyncio.run(gone(cache)) == set()
        session.commit()
        assert asyncio.run(gone(cache)) == P1 | {"tagged:category:2"}


def test_sync_blind_write_and_delete(
    sync_maker: sessionmaker[Session], cache: InMemoryCache
) -> None:
    asyncio.run(fill(cache))
    with sync_maker() as session:
        product = session.get(Product, 2)
        assert product is not None
        session.commit()
        product.category_id = 1
        session.commit()
        assert asyncio.run(gone(cache)) == P2 | {"tagged:category:1"}
    asyncio.run(fill(cache))
    with sync_maker() as session:
        session.delete(session.get(Product, 1))
        session.commit()
    assert asyncio.run(gone(cache)) == P1


def test_sync_rollback_and_savepoint(
    sync_maker: sessionmaker[Session], cache: InMemoryCache
) -> None:
    asyncio.run(fill(cache))
    with sync_maker() as session:
        session.add(Product(id=3, name="c", category_id=2))
        session.flush()
        session.rollback()
    assert asyncio.run(gone(cache)) == set()
    with sync_maker() as session:

        def delete_then_fail() -> None:
            with session.begin_nested():
                session.delete(session.get(Product, 2))
                session.flush()
                raise Boom

        with pytest.raises(Boom):
            delete_then_fail()
        first = session.get(Product, 1)
        assert first is not None
        first.name = "kept"
        session.commit()
    assert asyncio.run(gone(cache)) == P1


def test_a_session_subclass_hooks_only_its_sessions(
    engine: Engine, invalidator: CacheInvalidator, cache: InMemoryCache
) -> None:
    class HookedSession(Session):
        pass

    asyncio.run(fill(cache))
    invalidator.attach(HookedSession)
    with Session(engine) as plain:
        plain.add(Product(id=3, name="c", category_id=1))
        plain.commit()
    assert asyncio.run(gone(cache)) == set()
    with HookedSession(engine) as hooked:
        hooked.add(Product(id=4, name="d", category_id=2))
        hooked.commit()
    assert asyncio.run(gone(cache)) == {"tagged:products", "tagged:category:2"}


def test_a_slow_cache_is_abandoned_after_the_timeout(engine: Engine) -> None:
    invalidator = CacheInvalidator(HangingCache(), timeout=0.05)
    register(invalidator)
    maker = sessionmaker(engine)
    invalidator.attach(maker)
    try:
        with maker() as session:
            session.add(Product(id=3, name="c", category_id=2))
            session.commit()
    finally:
        invalidator.close()
    stats = invalidator.get_stats()
    assert stats["errors"] == 1
    assert "took over" in stats["last_error"]


def test_close_stops_the_private_loop_and_detaches(
    sync_maker: sessionmaker[Session], invalidator: CacheInvalidator, cache: InMemoryCache
) -> None:
    with sync_maker() as session:
        session.add(Product(id=3, name="c", category_id=2))
        session.commit()
    name = f"stratacache-sqlalchemy-{invalidator._id}"
    assert name in {thread.name for thread in threading.enumerate()}
    invalidator.close()
    assert name not in {thread.name for thread in threading.enumerate()}
    asyncio.run(fill(cache))
    with sync_maker() as session:
        session.add(Product(id=4, name="d", category_id=1))
        session.commit()
    assert asyncio.run(gone(cache)) == set()


async def test_a_sync_session_inside_a_running_loop_schedules_a_task(
    sync_maker: sessionmaker[Session], invalidator: CacheInvalidator, filled: InMemoryCache
) -> None:
    with sync_maker() as session:
        session.add(Product(id=3, name="c", category_id=2))
        session.commit()
    assert invalidator.get_stats()["pending"] == 1
    await invalidator.drain()
    assert await gone(filled) == {"tagged:products", "tagged:category:2"}


# -- real Redis ------------------------------------------------------------------------


@pytest.mark.redis
async def test_against_redis_from_the_loop_and_from_a_thread(
    redis_url: str, unique_prefix: str, async_engine: AsyncEngine, engine: Engine
) -> None:
    options = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)
    async with GenericRedisCache(redis_url, namespace=unique_prefix, options=options) as cache:
        invalidator = CacheInvalidator(cache)
        register(invalidator)
        maker = async_sessionmaker(async_engine)
        invalidator.attach(maker)
        await fill(cache)
        async with maker() as session:
            product = await session.get(Product, 1)
            assert product is not None
            product.category_id = 2
            await session.commit()
        await invalidator.drain()
        assert await gone(cache) == P1 | {"tagged:category:2"}

        # A sync Session in a worker thread: the private loop, with its own Redis client.
        await fill(cache)
        sync_maker = sessionmaker(engine)
        invalidator.attach(sync_maker)

        def move_back() -> None:
            with sync_maker() as session:
                product = session.get(Product, 1)
                assert product is not None
                product.category_id = 1
                session.commit()

        await asyncio.to_thread(move_back)
        assert await gone(cache) == P1 | {"tagged:category:2"}
        await invalidator.aclose()
        assert invalidator.get_stats()["errors"] == 0
