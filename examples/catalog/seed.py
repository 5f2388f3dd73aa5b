"""Seed the catalog: ~10,000 products in 50 categories, once, in well under a second.

The database is a SQLite file (default: ``<tmp>/stratacache-demo/catalog-v1.sqlite3``,
or ``CATALOG_DB``). It is built once into a temporary file with one bulk insert and
moved into place atomically, then reused by every later start: two processes
starting together never see a half-seeded catalog. ``PRAGMA user_version`` marks a
complete seed. The data are deterministic (a seeded random generator), so two runs
of the load test query the same catalog.

Run ``python -m examples.catalog.seed [--force] [PATH]`` to (re)build it by hand.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

from .db import Base, Product, utcnow

__all__ = [
    "CATEGORIES",
    "DEFAULT_PRODUCTS",
    "SeedReport",
    "default_database_path",
    "ensure_seeded",
]

SEED_VERSION = 1
DEFAULT_PRODUCTS = 10_000
CATEGORIES = (
    "audio", "baby", "bags", "bath", "beauty", "bikes", "books", "cameras", "camping",
    "candles", "cleaning", "clocks", "coffee", "comics", "computers", "cookware", "crafts",
    "cycling", "decor", "drones", "fitness", "flooring", "furniture", "games", "garden",
    "gifts", "grocery", "hats", "health", "jewelry", "kitchen", "lighting", "luggage",
    "movies", "music", "office", "outdoor", "paint", "party", "pets", "phones", "plants",
    "running", "shoes", "sports", "storage", "tea", "tools", "toys", "watches",
)  # fmt: skip
_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Grand", "Handmade", "Light",
    "Modern", "Pocket", "Premium", "Pro", "Rugged", "Smart", "Solid", "Travel", "Ultra",
    "Vintage", "Wireless", "Zen",
)  # fmt: skip
_NOUNS = (
    "Basket", "Bottle", "Box", "Brush", "Case", "Chair", "Clip", "Cup", "Kit", "Lamp",
    "Mat", "Pack", "Pad", "Set", "Stand", "Strap", "Tray", "Unit", "Wrap", "Widget",
)  # fmt: skip


@dataclass(frozen=True)
class SeedReport:
    path: Path
    products: int
    created: bool
    seconds: float


def default_database_path() -> Path:
    """``CATALOG_DB`` if set, else a file in the system's temporary directory."""
    configured = os.environ.get("CATALOG_DB", "").strip()
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "stratacache-demo" / f"catalog-v{SEED_VERSION}.sqlite3"


def ensure_seeded(
    path: Path | None = None,
    *,
    products: int = DEFAULT_PRODUCTS,
    seed: int = 42,
    force: bool = False,
) -> SeedReport:
    """Make sure a seeded catalog exists at ``path``; build it if not (or if ``force``)."""
    path = default_database_path() if path is None else Path(path)
    started = time.perf_counter()
    if not force and _complete(path):
        return SeedReport(path, _count(path), False, time.perf_counter() - started)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.unlink(missing_ok=True)
    try:
        engine = create_engine(f"sqlite:///{scratch}")
        try:
            Base.metadata.create_all(engine)
            with engine.begin() as connection:
                connection.execute(insert(Product), list(_rows(products, seed)))
                connection.exec_driver_sql(f"PRAGMA user_version = {SEED_VERSION}")
        finally:
            engine.dispose()
        for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)  # journals of a previous database
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    return SeedReport(path, products, True, time.perf_counter() - started)


def _rows(count: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    now = utcnow()
    for number in range(1, count + 1):
        adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
        category = CATEGORIES[(number - 1) % len(CATEGORIES)]
        yield {
            "id": number,
            "name": f"{adjective} {noun} {number}",
            "category": category,
            "price_cents": rng.randrange(199, 99_999),
            "stock": rng.randrange(0, 500),
            "description": f"A {adjective.lower()} {noun.lower()} for {category}.",
            "updated_at": now,
        }


def _complete(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        connection = sqlite3.connect(path)
        try:
            (version,) = connection.execute("PRAGMA user_version").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return bool(version == SEED_VERSION)


def _count(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        (count,) = connection.execute("SELECT count(*) FROM products").fetchone()
    finally:
        connection.close()
    return int(count)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the catalog demo's SQLite database.")
    parser.add_argument("path", nargs="?", type=Path, default=None, help="the database file")
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS)
    parser.add_argument("--force", action="store_true", help="rebuild even if it exists")
    args = parser.parse_args(argv)
    report = ensure_seeded(args.path, products=args.products, force=args.force)
    verb = "seeded" if report.created else "already seeded:"
    print(f"{verb} {report.path} ({report.products} products, {report.seconds:.2f} s)")


if __name__ == "__main__":
    main()
