"""Run the catalog demo under uvicorn: ``python -m examples.catalog --host H --port P``."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from stratacache import CacheError
from stratacache.config import load_settings, redact_url

from .app import MANAGEMENT_PREFIX, create_app
from .caching import build_cache, describe_cache
from .seed import ensure_seeded

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
    """Seed (once), print where everything is, and serve until interrupted."""
    import uvicorn

    seeded = ensure_seeded(database, force=reseed)
    settings = load_settings()
    api_keys = settings.all_api_keys()
    api_key = api_keys[0] if api_keys else secrets.token_urlsafe(24)
    cache = build_cache()
    app = create_app(database=seeded.path, cache=cache, api_key=api_key)
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    redis_url = settings.resolved_redis_url
    lines = [
        "stratacache catalog demo",
        f"  {base}/                               what this service does",
        f"  {base}/products/42                    a product (X-Cache headers)",
        f"  {base}{MANAGEMENT_PREFIX}/dashboard   the cache, live",
        f"  database: {seeded.path} ({seeded.products:,} products"
        + (", seeded now)" if seeded.created else ")"),
        f"  cache:    {describe_cache(cache)}"
        + (f" at {redact_url(redis_url)}" if redis_url and settings.preset.enabled else ""),
        f"  management API key: {api_key}"
        + ("" if api_keys else "  (generated; set API_KEY to choose one)"),
    ]
    print("\n".join(lines), flush=True)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")


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
