"""Shared fixtures: the Redis URL and the rule that CI never skips Redis tests.

``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) names the server the ``redis``
tests use. Without a reachable server those tests are skipped with a loud reason
on a laptop, and *fail* when ``CI=true``: in CI a missing Redis is a defect.
Tests never flush the database; each works under its own unique key prefix.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from _support import skip_or_fail

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Real redis-server processes (single, Cluster, Sentinel) for fault tests.
pytest_plugins = ["redis_servers"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a reachable Redis, or skip (fail in CI) with the reason."""
    import redis

    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis is not reachable at {url} ({exc}); set REDIS_URL or start redis-server"
        skip_or_fail(message)
    finally:
        client.close()
    return url


@pytest.fixture
def redis_sync(redis_url: str) -> Iterator[object]:
    """A synchronous redis-py client for inspecting the server directly."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def unique_prefix() -> str:
    """A key prefix no other test (or run) uses."""
    return f"stratacache-test:{uuid.uuid4().hex}:"


# -- the command audit: the suite must never run KEYS, FLUSHDB or FLUSHALL ------------

_FORBIDDEN = ("keys", "flushdb", "flushall")
_audit: dict[str, int] = {}


def _forbidden_calls() -> dict[str, int] | None:
    import redis

    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        stats = client.info("commandstats")
    except redis.RedisError:
        return None
    finally:
        client.close()
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in _FORBIDDEN}


def pytest_sessionstart(session: pytest.Session) -> None:
    _audit.update(_forbidden_calls() or {})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if anything sent KEYS, FLUSHDB or FLUSHALL to the shared Redis."""
    after = _forbidden_calls()
    if not _audit or after is None:
        return
    ran = {name: after[name] - _audit.get(name, 0) for name in _FORBIDDEN}
    if any(ran.values()):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\ncommand audit FAILED: the suite sent {ran} to the shared Redis")
    else:
        print("\ncommand audit: no KEYS, FLUSHDB or FLUSHALL reached the shared Redis")
