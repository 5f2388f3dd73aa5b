"""Fixtures for the CLI tests: a clean environment, a runner, a live management API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli.cli_support import API_KEY, CONFIG_VARIABLES, Cli, LiveApp
from stratacache import CacheInterface


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cache settings leak in from the machine (session fixtures read theirs first)."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def live_management() -> Iterator[tuple[LiveApp, CacheInterface]]:
    """stratacache's management app over a memory cache holding three keys."""
    from stratacache import InMemoryCache
    from stratacache.web import create_app

    cache = InMemoryCache(max_size=100)
    with LiveApp(create_app(cache, api_keys=[API_KEY])) as live:
        for key in ("user:1", "user:2", "post:1"):
            live.call(cache.set(key, {"key": key}))
        yield live, cache
