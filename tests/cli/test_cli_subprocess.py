"""The CLI as users run it: real ``python -m stratacache`` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cli.cli_support import CLOSED_REDIS, CONFIG_VARIABLES
from stratacache.config import PRESET_NAMES

pytestmark = pytest.mark.e2e


def stratacache(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "stratacache", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


def test_status_json_in_a_real_process() -> None:
    done = stratacache("status", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["backend"], data["preset"]) == ("memory", "development")


def test_presets_in_a_real_process() -> None:
    done = stratacache("presets")
    assert done.returncode == 0, done.stderr
    for name in PRESET_NAMES:
        assert name[:10] in done.stdout  # the table may abbreviate long names


def test_unreachable_redis_in_a_real_process_exits_3_without_a_traceback() -> None:
    done = stratacache("status", "--redis-url", CLOSED_REDIS)
    assert done.returncode == 3
    assert done.stdout == ""
    assert "Error:" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors_in_a_real_process_exit_2() -> None:
    done = stratacache("keys", "--limit", "0")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


@pytest.mark.redis
def test_status_json_against_redis_in_a_real_process(redis_url: str) -> None:
    done = stratacache("status", "--json", "--redis-url", redis_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["redis"]["status"] == "connected"


def test_the_cli_needs_neither_the_web_extra_nor_redis_to_start() -> None:
    code = (
        "import sys, stratacache.cli._app;"
        "loaded = [m for m in ('fastapi', 'uvicorn', 'redis', 'sqlalchemy') if m in sys.modules];"
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
