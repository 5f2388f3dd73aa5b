"""The catalog's database: one ``products`` table in SQLite, used through SQLAlchemy async.

SQLite stands in for the service's real database. What the demo shows does not depend
on it: reads go through the cache (:mod:`.caching`), writes commit here and the
SQLAlchemy hook in :mod:`stratacache.integrations.sqlalchemy` drops the affected
cache entries once the commit has succeeded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, Text, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Product", "make_engine", "make_sessions", "utcnow"]


def utcnow() -> dt.datetime:
    """Now in UTC, naive (SQLite keeps no time zone), to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (Index("ix_products_category_id", "category", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(40))
    price_cents: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    def to_dict(self) -> dict[str, Any]:
        """The product as the API returns it (and as the cache stores it)."""
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "price_cents": self.price_cents,
            "stock": self.stock,
            "description": self.description,
            "updated_at": self.updated_at.isoformat() + "Z",
        }


def make_engine(path: Path) -> AsyncEngine:
    """An async engine over the SQLite file at ``path`` (aiosqlite)."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(connection: Any, _: Any) -> None:
        # WAL lets readers run while a write commits; NORMAL is the usual WAL pairing.
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: a committed Product can still be turned into JSON
    # without another query (AsyncSession cannot lazy-load).
    return async_sessionmaker(engine, expire_on_commit=False)
