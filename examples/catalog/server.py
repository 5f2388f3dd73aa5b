"""Run the catalog demo under uvicorn: ``python -m examples.catalog --host H --port P``."""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from stratacache import CacheError, ConfigurationError
from stratacache.config import load_settings, redact_url
from stratacache.web import DEFAULT_PREFIX

from .app import create_app
from .caching import build_cache, describe_cache
from .seed import SeedReport, default_database_path, ensure_seeded

__all__ = ["main", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    database: Path | None = None,
    reseed: bool = False,
    access_log: bool = True,
) -> None:
    """Seed (once), print where everything is, and serve until interrupted.

    Raises:
        CacheError: the settings are wrong (a bad ``CACHE_PRESET`` or ``REDIS_URL``),
            or the database cannot be built where ``CATALOG_DB`` (``--db``) says.
    """
    import uvicorn

    seeded = _seed(database, force=reseed)
    settings = load_settings()
    # A key is generated here, not in create_app, so that it can be printed below.
    # Configured keys are left to create_app: it accepts all of them (API_KEY and
    # ADDITIONAL_API_KEYS), and this banner shows the first.
    generated = None if settings.all_api_keys() else secrets.token_urlsafe(24)
    cache = build_cache()
    app = create_app(database=seeded.path, cache=cache, api_key=generated)
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    redis_url = settings.resolved_redis_url
    lines = [
        "stratacache catalog demo",
        f"  {base}/                               what this service does",
        f"  {base}/products/42                    a product (X-Cache headers)",
        f"  {base}{DEFAULT_PREFIX}/dashboard   the cache, live",
        f"  database: {seeded.path} ({seeded.products:,} products"
        + (", seeded now)" if seeded.created else ")"),
        f"  cache:    {describe_cache(cache)}"
        + (f" at {redact_url(redis_url)}" if redis_url and settings.preset.enabled else ""),
        f"  management API key: {app.state.api_keys[0]}"
        + ("  (generated; set API_KEY to choose one)" if generated else ""),
    ]
    print("\n".join(lines), flush=True)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")


def _seed(database: Path | None, *, force: bool) -> SeedReport:
    """:func:`ensure_seeded`, with a path that cannot be written as a settings error.

    ``CATALOG_DB`` (or ``--db``) is a setting like ``CACHE_PRESET``: a wrong one is
    told in one line by both ways of starting the demo, not as a traceback.
    """
    try:
        return ensure_seeded(database, force=force)
    except (OSError, sqlite3.Error) as exc:
        path = default_database_path() if database is None else database
        raise ConfigurationError(
            f"cannot build the demo database at {path} ({exc}); point CATALOG_DB "
            "(or --db) at a file in a writable directory",
            {"database": str(path)},
        ) from exc


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.catalog", description="Run the stratacache catalog demo."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: CATALOG_DB)")
    parser.add_argument("--reseed", action="store_true", help="rebuild the database first")
    parser.add_argument("--no-access-log", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    try:
        serve(
            args.host,
            args.port,
            database=args.db,
            reseed=args.reseed,
            access_log=not args.no_access_log,
        )
    except CacheError as exc:  # a bad CACHE_PRESET, REDIS_URL ...: say so, no traceback
        sys.exit(f"catalog: {exc.message}")
