"""The CLI through Typer's runner, without Redis: output, JSON, exit codes, errors."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.error
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from cli.cli_support import API_KEY, CLOSED_REDIS, Cli
from stratacache import InfrastructureError, __version__
from stratacache.cli import _app as cli_app
from stratacache.config import PRESET_NAMES

COMMANDS = (
    "status", "stats", "keys", "presets", "doctor", "invalidate", "warm", "serve", "demo",
    "bench",
)  # fmt: skip


def test_help_lists_every_command_and_the_exit_codes(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout
    text = " ".join(result.stdout.split())
    for code in ("0 ok", "1 done but needs attention", "2 usage", "3 Redis"):
        assert code in text


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.exit_code, result.stdout.strip()) == (0, f"stratacache {__version__}")


def test_an_unknown_option_is_a_usage_error(cli: Cli) -> None:
    assert cli("status", "--no-such-option").exit_code == 2


# -- presets ---------------------------------------------------------------------------------


def test_presets_json_lists_every_preset_and_the_current_one(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_PRESET", "production")
    code, data = cli.json("presets")
    assert code == 0
    assert [preset["name"] for preset in data["presets"]] == list(PRESET_NAMES)
    assert data["current"] == "production"
    production = next(p for p in data["presets"] if p["name"] == "production")
    assert (production["default_ttl"], production["memory_cache_size"]) == (7200, 500)


def test_presets_table_names_them_all_even_with_a_broken_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_PRESET", "no-such-preset")
    result = cli("presets")
    assert result.exit_code == 0
    for name in ("disabled", "minimal", "simple", "development", "production"):
        assert name in result.stdout


# -- status and stats without Redis ----------------------------------------------------------


def test_status_of_a_memory_only_configuration(cli: Cli) -> None:
    code, data = cli.json("status")
    assert code == 0
    assert data["backend"] == "memory"
    assert data["preset"] == "development"
    assert data["redis"] == {"status": "disabled"}
    assert data["memory"]["status"] == "active"
    assert "--server" in data["note"]


def test_status_human_output_names_preset_and_backend(cli: Cli) -> None:
    result = cli("status", "--preset", "production")
    assert result.exit_code == 0
    assert "production" in result.stdout
    assert "memory only" in result.stdout


def test_status_of_the_disabled_preset(cli: Cli) -> None:
    code, data = cli.json("status", "--preset", "disabled")
    assert (code, data["backend"]) == (0, "disabled")
    assert "nothing is cached" in data["note"]  # not "no Redis is configured"


def test_stats_without_redis_explains_where_the_numbers_are(cli: Cli) -> None:
    code, data = cli.json("stats")
    assert code == 0
    assert data["backend"] == "memory"
    assert "--server" in data["note"]


# -- configuration errors: exit 2, one message, no traceback ---------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--preset", "fast"], {}, "unknown cache preset 'fast'"),
        ([], {"CACHE_PRESET": "fast"}, "valid presets: disabled"),
        (["--redis-url", "http://localhost"], {}, "redis_url must start with 'redis://'"),
        (["--redis-url", ""], {}, "redis_url cannot be empty"),
        ([], {"CACHE_CUSTOM_CONFIG": "{not json"}, "CACHE_CUSTOM_CONFIG is not valid JSON"),
        ([], {"CACHE_CUSTOM_CONFIG": '{"default_ttl": -5}'}, "must be non-negative"),
        ([], {"CACHE_CUSTOM_CONFIG": '{"colour": 1}'}, "unknown setting 'colour'"),
    ],
)
def test_configuration_errors_exit_2_with_the_message(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = cli("status", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    code, data = cli.json("status", *args)
    assert code == 2
    assert data["ok"] is False
    assert message in data["error"]["message"]
    assert data["error"]["exit_code"] == 2


@pytest.mark.parametrize("command", ["status", "stats", "keys"])
def test_unreachable_redis_exits_3(cli: Cli, command: str) -> None:
    result = cli(command, "--redis-url", CLOSED_REDIS)
    assert result.exit_code == 3
    assert "127.0.0.1:1" in result.stderr
    assert "is unreachable" in result.stderr
    assert "Hint:" in result.stderr
    code, data = cli.json(command, "--redis-url", CLOSED_REDIS)
    assert (code, data["error"]["exit_code"]) == (3, 3)


def test_a_password_in_the_url_never_reaches_the_output(cli: Cli) -> None:
    result = cli("status", "--redis-url", "redis://user:hunter2secret@127.0.0.1:1/0")
    assert result.exit_code == 3
    assert "hunter2secret" not in result.output
    assert "user:***@" in result.stderr


def test_keys_and_invalidate_refuse_a_memory_only_cache(cli: Cli) -> None:
    for args in (["keys"], ["invalidate", "user:*"]):
        result = cli(*args)
        assert result.exit_code == 2
        assert "no Redis is configured" in result.stderr
        assert "--server" in result.stderr


def test_invalidating_everything_needs_yes_when_not_interactive(cli: Cli) -> None:
    result = cli("invalidate", "*", "--redis-url", CLOSED_REDIS)
    assert result.exit_code == 2  # refused before connecting anywhere
    assert "--yes" in result.stderr


def test_invalidating_everything_asks_first_at_a_terminal(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_app, "_can_ask", lambda: True)
    declined = cli("invalidate", "*", "--json", "--redis-url", CLOSED_REDIS, input="n\n")
    assert declined.exit_code == 0  # nothing done, nothing connected
    # The runner echoes the typed answer into stdout (a terminal would show it, not print it).
    answer, _, printed = declined.stdout.partition("\n")
    assert answer.strip() == "n"
    assert json.loads(printed) == {"pattern": "*", "keys_invalidated": 0, "cancelled": True}
    assert "Nothing invalidated" in declined.stderr
    accepted = cli("invalidate", "*", "--redis-url", CLOSED_REDIS, input="y\n")
    assert accepted.exit_code == 3  # it went on, to the (closed) Redis


# -- doctor without Redis ---------------------------------------------------------------


def test_doctor_memory_only_with_a_good_key_passes(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    code, data = cli.json("doctor")
    assert code == 0, data
    assert data["ok"] is True
    levels = {finding["check"]: finding["level"] for finding in data["findings"]}
    assert levels["redis.configured"] == "info"
    assert levels["api_key"] == "ok"


def test_doctor_warns_without_an_api_key_and_says_how_to_fix(cli: Cli) -> None:
    result = cli("doctor")
    assert result.exit_code == 1
    assert "no API_KEY" in result.stdout
    assert "fix: export API_KEY=" in result.stdout
    code, data = cli.json("doctor")
    finding = next(f for f in data["findings"] if f["check"] == "api_key")
    assert (code, finding["level"]) == (1, "warning")
    assert "secrets.token_urlsafe" in finding["fix"]


def test_doctor_warns_about_a_short_api_key(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "short")
    code, data = cli.json("doctor")
    finding = next(f for f in data["findings"] if f["check"] == "api_key")
    assert (code, finding["level"]) == (1, "warning")
    assert "shorter than 16" in finding["message"]


def test_doctor_reports_every_configuration_problem(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    monkeypatch.setenv(
        "CACHE_CUSTOM_CONFIG", json.dumps({"default_ttl": -1, "memory_cache_size": 0})
    )
    code, data = cli.json("doctor")
    assert code == 1
    errors = {f["check"]: f for f in data["findings"] if f["level"] == "error"}
    assert set(errors) == {"config.default_ttl", "config.memory_cache_size"}
    assert "must be non-negative" in errors["config.default_ttl"]["message"]
    assert "CACHE_CUSTOM_CONFIG" in errors["config.default_ttl"]["fix"]


def test_doctor_reports_an_unknown_preset_as_a_finding(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_PRESET", "fast")
    code, data = cli.json("doctor")
    assert code == 1
    finding = next(f for f in data["findings"] if f["check"] == "config.settings")
    assert finding["level"] == "error"
    assert "unknown cache preset" in finding["message"]


def test_doctor_against_a_closed_port_exits_3_with_the_fix(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    code, data = cli.json("doctor", "--redis-url", CLOSED_REDIS)
    assert code == 3
    assert data["exit_code"] == 3
    finding = next(f for f in data["findings"] if f["check"] == "redis.reachable")
    assert finding["level"] == "error"
    assert "did not answer" in finding["message"]
    assert "start Redis" in finding["fix"]
    human = cli("doctor", "--redis-url", CLOSED_REDIS)
    assert human.exit_code == 3
    assert "✘" in human.stdout
    assert "exit code 3" in human.stdout


# -- the management API of a running service (--server) ----------------------------------------


def test_status_and_stats_from_a_running_service(cli: Cli, live_management: Any) -> None:
    live, cache = live_management
    live.call(cache.get("user:1"))
    code, status = cli.json("status", "--server", live.url)
    assert code == 0
    assert status["source"] == "server"
    assert status["memory"]["entries"] == 3
    assert status["redis"]["status"] == "disabled"
    code, stats = cli.json("stats", "--server", live.url)
    assert code == 0
    assert stats["metrics"]["cache_hits"] == 1
    assert stats["performance"]["hit_rate"] == 1.0
    human = cli("status", "--server", live.url)
    assert human.exit_code == 0
    assert live.url in human.stdout


def test_keys_and_invalidate_through_a_running_service(cli: Cli, live_management: Any) -> None:
    live, cache = live_management
    code, data = cli.json("keys", "user:*", "--server", live.url, "--api-key", API_KEY)
    assert code == 0
    assert sorted(data["keys"]) == ["user:1", "user:2"]
    assert (data["count"], data["truncated"]) == (2, False)
    code, data = cli.json("keys", "--limit", "2", "--server", live.url, "--api-key", API_KEY)
    assert (code, data["count"], data["truncated"]) == (0, 2, True)
    code, data = cli.json("invalidate", "user:*", "--server", live.url, "--api-key", API_KEY)
    assert (code, data["keys_invalidated"]) == (0, 2)
    assert live.call(cache.get("user:1")) is None
    assert live.call(cache.get("post:1")) == {"key": "post:1"}


def test_keys_lists_one_per_line_with_a_count_on_stderr(
    cli: Cli, live_management: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    live, _ = live_management
    monkeypatch.setenv("API_KEY", API_KEY)  # --api-key's default
    monkeypatch.setenv("STRATACACHE_SERVER", live.url)  # --server's default
    result = cli("keys", "user:*")
    assert result.exit_code == 0
    assert sorted(result.stdout.split()) == ["user:1", "user:2"]
    assert "2 key(s)" in result.stderr


def test_a_missing_or_wrong_key_is_refused_with_a_hint(cli: Cli, live_management: Any) -> None:
    live, _ = live_management
    for extra in ([], ["--api-key", "wrong-key-123456789"]):
        result = cli("keys", "--server", live.url, *extra)
        assert result.exit_code == 2
        assert "refused the API key" in result.stderr
        assert "--api-key" in result.stderr


def test_a_bad_pattern_is_a_usage_error(cli: Cli, live_management: Any) -> None:
    live, _ = live_management
    result = cli("invalidate", "a\x01b", "--server", live.url, "--api-key", API_KEY)
    assert result.exit_code == 2
    assert "control characters" in result.stderr


def test_an_unreachable_service_exits_3(cli: Cli) -> None:
    code, data = cli.json("status", "--server", "http://127.0.0.1:1")
    assert code == 3
    assert "cannot reach the service" in data["error"]["message"]


@pytest.fixture
def not_http() -> Iterator[str]:
    """A loopback port that answers every connection with a line that is not HTTP."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            with connection:
                connection.recv(4096)
                connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        thread.join(timeout=5)


def test_a_port_that_does_not_speak_http_is_a_usage_error(cli: Cli, not_http: str) -> None:
    code, data = cli.json("status", "--server", not_http)
    assert (code, data["error"]["exit_code"]) == (2, 2)
    assert "did not answer HTTP" in data["error"]["message"]


def test_a_422_detail_list_becomes_one_message() -> None:
    from stratacache.cli._sources import _http_error

    body = json.dumps({"detail": [{"msg": "pattern too long"}, "also this"]}).encode()
    error = urllib.error.HTTPError("http://x", 422, "Unprocessable", Message(), io.BytesIO(body))
    made = _http_error(error, "http://x/internal/cache")
    assert (made.message, made.code) == ("pattern too long; also this", 2)


def test_a_server_url_must_be_http(cli: Cli) -> None:
    result = cli("status", "--server", "redis://127.0.0.1:6379")
    assert result.exit_code == 2
    assert "--server must be an http://" in result.stderr


def test_a_url_without_a_management_api_is_explained(cli: Cli, live_management: Any) -> None:
    live, _ = live_management
    result = cli("status", "--server", live.url + "/nowhere")
    assert result.exit_code == 2
    assert "no management API" in result.stderr


# -- warm ------------------------------------------------------------------------------------------

WARMERS = """
import asyncio
from stratacache import InMemoryCache
from stratacache import CacheWarmer

cache = InMemoryCache(max_size=10)
warmer = CacheWarmer(cache)
warmer.register("a", lambda: 1)
warmer.register("b", lambda: 2)

def broken():
    raise RuntimeError("the database is down")

warmer.register("c", broken)

async def slow():
    await asyncio.Event().wait()  # never finishes: only --timeout ends it

slow_warmer = CacheWarmer(cache)
slow_warmer.register("quick", lambda: 1)
slow_warmer.register("stuck", slow)
slow_warmer.register("broken", broken)

def factory(cache):
    made = CacheWarmer(cache)
    made.register("x", lambda: "x")
    return made

async def async_factory():
    made = CacheWarmer(InMemoryCache())
    made.register("y", lambda: "y")
    return made

def empty():
    return CacheWarmer(InMemoryCache())

not_a_warmer = 42

def wrong_type():
    return "nope"

def failing_factory():
    raise RuntimeError("no database")

def needs_two(cache, other):
    return CacheWarmer(cache)
"""


@pytest.fixture
def warmers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    module = f"cli_warmers_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(WARMERS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def test_warm_reports_each_key_and_exits_1_when_one_failed(cli: Cli, warmers: str) -> None:
    code, data = cli.json("warm", f"{warmers}:warmer")
    assert code == 1
    assert data["results"] == {"a": True, "b": True, "c": False}
    assert (data["total"], data["warmed"], data["failed"]) == (3, 2, ["c"])


def test_warm_shows_a_progress_bar_and_a_summary(cli: Cli, warmers: str) -> None:
    result = cli("warm", f"{warmers}:warmer", "--concurrency", "1")
    assert result.exit_code == 1
    assert "Warmed 2/3 key(s)" in result.stdout
    assert "failed: c" in result.stdout
    assert "3/3" in result.stderr  # the progress bar's final state
    assert "dry run" in result.stderr  # a memory cache warmed from the CLI is said to be one


def test_warm_times_out_a_stuck_loader_and_goes_on(cli: Cli, warmers: str) -> None:
    result = cli("warm", f"{warmers}:slow_warmer", "--timeout", "0.2", "--concurrency", "1")
    assert result.exit_code == 1
    assert "Warmed 1/3 key(s)" in result.stdout
    assert "stuck" in result.stdout
    assert "broken" in result.stdout
    assert "3/3" in result.stderr  # the bar reached the end past the stuck loader


@pytest.mark.parametrize(("attribute", "keys"), [("factory", ["x"]), ("async_factory", ["y"])])
def test_warm_accepts_factories(cli: Cli, warmers: str, attribute: str, keys: list[str]) -> None:
    code, data = cli.json("warm", f"{warmers}:{attribute}")
    assert code == 0
    assert list(data["results"]) == keys


def test_warm_with_nothing_registered_says_so(cli: Cli, warmers: str) -> None:
    result = cli("warm", f"{warmers}:empty")
    assert result.exit_code == 0
    assert "nothing to warm" in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon_here", "expected MODULE:ATTR"),
        ("no_such_module_xyz:warmer", "no module named 'no_such_module_xyz'"),
        ("{warmers}:missing", "has no attribute 'missing'"),
        ("{warmers}:not_a_warmer", "expected a CacheWarmer or a function"),
        ("{warmers}:wrong_type", "returned str, not a CacheWarmer"),
        ("{warmers}:failing_factory", "failing_factory() failed: RuntimeError: no database"),
        ("{warmers}:needs_two", "missing 1 required positional argument: 'other'"),
    ],
)
def test_warm_target_errors_exit_2(cli: Cli, warmers: str, target: str, message: str) -> None:
    result = cli("warm", target.format(warmers=warmers))
    assert result.exit_code == 2
    assert message in result.stderr


def test_warm_reports_a_module_that_fails_to_import(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cli_broken_module.py").write_text("raise ValueError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = cli("warm", "cli_broken_module:warmer")
    assert result.exit_code == 2
    assert "ValueError: boom at import" in result.stderr


# -- bench, serve and demo (their servers and subprocesses replaced) ----------------------


def test_bench_runs_the_benchmarks_module_with_the_arguments(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[list[str], Path]] = []

    def fake_run(command: list[str], cwd: Path, check: bool) -> Any:
        calls.append((command, cwd))
        return subprocess.CompletedProcess(command, returncode=len(calls) - 1)

    monkeypatch.setattr(subprocess, "run", fake_run)  # the module _app calls through
    assert cli("bench", "--quick").exit_code == 0
    assert cli("bench", "--load").exit_code == 1  # the second fake run "fails"
    assert calls[0][0] == [sys.executable, "-m", "benchmarks", "--quick"]
    assert calls[1][0] == [sys.executable, "-m", "benchmarks.load"]
    assert (calls[0][1] / "benchmarks" / "__main__.py").is_file()


def test_bench_explains_when_the_benchmarks_are_not_here(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_app, "REPO_ROOT", tmp_path)
    result = cli("bench")
    assert result.exit_code == 2
    assert "not installed with the package" in result.stderr


def test_serve_builds_the_management_app_with_the_overrides(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: dict[str, Any] = {}

    def fake_run(application: Any, host: str, port: int, log_level: str) -> None:
        served.update(app=application, host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("CACHE_PRESET", "development")  # restored after the test
    result = cli("serve", "--port", "8123", "--preset", "minimal")
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    paths = set(served["app"].openapi()["paths"])
    assert {"/internal/cache/status", "/internal/cache/invalidate", "/metrics"} <= paths
    assert "refused (403)" in result.stderr  # no API_KEY, no --dev
    assert os.environ["CACHE_PRESET"] == "minimal"  # what the app reads on startup


def test_serve_refuses_a_bad_configuration_before_starting(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    result = cli("serve", "--preset", "nope")
    assert result.exit_code == 2
    assert "unknown cache preset" in result.stderr


def test_demo_starts_the_catalog_service(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(cli_app.REPO_ROOT))
    import examples.catalog.server

    started: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        examples.catalog.server, "serve", lambda *args, **kwargs: started.append((args, kwargs))
    )
    result = cli("demo", "--port", "8124", "--no-access-log")
    assert result.exit_code == 0, result.output
    assert started == [(("127.0.0.1", 8124), {"reseed": False, "access_log": False})]


# -- the console script, logging, and doctor's rarer findings ----------------------------------


def test_main_runs_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    from stratacache.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["presets", "--json"])
    assert exit_info.value.code in (0, None)
    assert json.loads(capsys.readouterr().out)["current"] == "development"


def test_main_without_the_cli_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stratacache.cli import main

    monkeypatch.delitem(sys.modules, "stratacache.cli._app")
    monkeypatch.setitem(sys.modules, "typer", None)  # as if typer were not installed
    with pytest.raises(SystemExit) as exit_info:
        main(["status"])
    assert exit_info.value.code == 2
    assert "pip install 'stratacache[cli]'" in capsys.readouterr().err


def test_verbose_shows_the_library_log_and_restores_the_logger(cli: Cli) -> None:
    import logging

    logger = logging.getLogger("stratacache")
    level, handlers = logger.level, list(logger.handlers)
    quiet = cli("status")
    assert "in-memory cache" not in quiet.stderr
    loud = cli("-v", "status")
    assert "no Redis URL configured; using an in-memory cache" in loud.stderr
    assert (logger.level, logger.handlers) == (level, handlers)


def test_doctor_says_when_caching_is_disabled(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    code, data = cli.json("doctor", "--preset", "disabled")
    findings = {f["check"]: f for f in data["findings"]}
    assert (code, findings["config.preset"]["level"]) == (0, "info")
    assert "CACHE_PRESET" in findings["config.preset"]["fix"]
    assert "redis.configured" not in findings  # "each process keeps its own cache": not so


def test_doctor_reports_a_cache_that_cannot_connect_as_a_finding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stratacache.cli import _doctor
    from stratacache.cli._common import settings_from
    from stratacache.cli._sources import LocalSource

    async def unreachable(settings: Any) -> Any:
        raise InfrastructureError(
            "Redis connection failed: ... pass fail_on_connection_error=False ...",
            {"redis_url": "redis://cache:6379/0", "reason": "Connection refused"},
        )

    monkeypatch.setattr(LocalSource, "open", unreachable)
    report = _doctor.DoctorReport()
    asyncio.run(_doctor._check_cache(report, settings_from(CLOSED_REDIS)))
    [finding] = report.findings
    assert (finding.check, finding.level) == ("cache.connect", "error")
    assert "Redis at redis://cache:6379/0 is unreachable (Connection refused)" in finding.message
    assert "fail_on_connection_error" not in finding.message  # library advice, not for a CLI


@pytest.mark.parametrize(
    ("facts", "level", "text"),
    [
        ({"version": "7.2.4", "server": "redis"}, "ok", "Redis 7.2.4"),
        ({"version": "5.0.7", "server": "redis"}, "error", "too old"),
        ({"version": "8.0.1", "server": "valkey"}, "ok", "Valkey 8.0.1"),
        ({"version": "unknown", "server": "redis"}, "warning", "did not report"),
    ],
)
def test_doctor_version_check(facts: dict[str, Any], level: str, text: str) -> None:
    from stratacache.cli._doctor import DoctorReport, _check_version

    report = DoctorReport()
    _check_version(report, facts)
    [finding] = report.findings
    assert (finding.level, text in finding.message) == (level, True)


@pytest.mark.parametrize(
    ("policy", "level"),
    [
        ("allkeys-lru", "ok"),
        ("allkeys-lfu", "ok"),
        ("volatile-lru", "info"),
        ("volatile-ttl", "warning"),
        ("noeviction", "warning"),
        (None, "warning"),
    ],
)
def test_doctor_memory_policy_check(policy: str | None, level: str) -> None:
    from stratacache.cli._doctor import DoctorReport, _check_memory_policy

    class NoConfig:  # CONFIG is often disabled on managed Redis
        async def config_get(self, name: str) -> dict[str, str]:
            raise PermissionError("CONFIG is disabled")

    report = DoctorReport()
    facts = {"maxmemory_policy": policy, "maxmemory_bytes": 1 << 30}
    asyncio.run(_check_memory_policy(report, NoConfig(), facts))
    [finding] = report.findings
    assert finding.level == level
    if level != "ok":
        assert finding.fix


def test_stats_from_a_running_service_in_a_table(cli: Cli, live_management: Any) -> None:
    live, cache = live_management
    live.call(cache.get("user:1"))
    live.call(cache.get("nope"))
    result = cli("stats", "--server", live.url)
    assert result.exit_code == 0
    assert "50.0% (1 hits, 1 misses)" in result.stdout
    assert "3 / 100 entries" in result.stdout


@pytest.mark.parametrize(("info", "shown"), [({"maxmemory": "0"}, "0 (no limit)"), ({}, "unknown")])
def test_maxmemory_hidden_by_the_provider_is_not_no_limit(info: dict[str, str], shown: str) -> None:
    from rich.console import Console

    from stratacache.cli._doctor import DoctorReport, _check_memory_policy
    from stratacache.cli._render import render_status
    from stratacache.cli._sources import redis_facts

    class Client:
        async def info(self) -> dict[str, str]:
            return {"used_memory": "1024", "maxmemory_policy": "allkeys-lru", **info}

    facts = asyncio.run(redis_facts(Client()))
    report = DoctorReport()
    asyncio.run(_check_memory_policy(report, Client(), facts))
    warned = [finding.check for finding in report.findings if finding.level == "warning"]
    assert warned == (["redis.maxmemory"] if info else [])  # 0 is "no limit"; absent is unknown
    printed = io.StringIO()
    render_status(Console(file=printed, width=200), {"redis": {"status": "connected", **facts}})
    assert f"maxmemory {shown}" in printed.getvalue()
