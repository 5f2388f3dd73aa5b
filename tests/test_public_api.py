"""The public surface is exactly ``stratacache.__all__`` (as httpx and anyio check theirs)."""

from __future__ import annotations

import subprocess
import sys
import types

import stratacache
import stratacache.errors
import stratacache.testing


def test_all_lists_every_public_name_and_only_those() -> None:
    public = {
        name
        for name in dir(stratacache)
        if not name.startswith("_") and not isinstance(getattr(stratacache, name), types.ModuleType)
    }
    assert set(stratacache.__all__) - {"__version__"} == public


def test_every_name_in_all_is_importable() -> None:
    for name in stratacache.__all__:
        assert getattr(stratacache, name) is not None


def test_errors_are_re_exported_and_form_one_tree() -> None:
    for name in stratacache.errors.__all__:
        error = getattr(stratacache, name)
        assert error is getattr(stratacache.errors, name)
        assert issubclass(error, stratacache.CacheError)
    assert issubclass(stratacache.ValidationError, ValueError)
    assert issubclass(stratacache.SerializationError, TypeError)


def test_errors_carry_message_and_context() -> None:
    error = stratacache.ValidationError("bad key", {"key_length": 0})
    assert (error.message, error.context, str(error)) == ("bad key", {"key_length": 0}, "bad key")
    assert "bad key" in repr(error)
    assert stratacache.CacheError("plain").context == {}


def test_testing_module_exports_the_fake_clock() -> None:
    assert stratacache.testing.__all__ == ["FakeClock"]


def test_importing_starts_no_threads_loops_or_connections() -> None:
    code = (
        "import asyncio, sys, threading; before = threading.active_count();"
        "import stratacache, stratacache.testing;"
        "assert threading.active_count() == before, 'a thread started at import';"
        "assert asyncio.get_event_loop_policy()._local._loop is None, 'a loop was created';"
        "assert 'redis' not in sys.modules, 'redis imported eagerly';"
        "assert 'pydantic_settings' not in sys.modules, 'the config layer imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
