"""The Typer app: one function per command, thin; the work is in the sibling modules.

Configuration comes from the environment (``CACHE_PRESET``, ``CACHE_REDIS_URL`` /
``REDIS_URL``, ``CACHE_CUSTOM_CONFIG``, ``API_KEY`` ...), overridden per command by
``--redis-url`` and ``--preset``. Read commands take ``--json``: JSON only on stdout
(errors too, as ``{"ok": false, "error": {...}}``); everything else — notes,
progress bars, error messages — goes to stderr.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich.markup import escape

from .. import __version__
from ..config import describe_presets
from ..config._redact import redact_url
from ..errors import CacheError
from ._common import (
    EXIT_CODES_HELP,
    FLAGS,
    ApiKeyOption,
    ExitCode,
    JsonOption,
    PresetOption,
    RedisUrlOption,
    ServerOption,
    emit_json,
    err_console,
    errors_handled,
    fail,
    out_console,
    run,
    settings_from,
)
from ._doctor import diagnose
from ._render import render_doctor, render_presets, render_stats, render_status
from ._sources import LocalSource, ServerSource
from ._warm import warm_target

__all__ = ["app"]

REPO_ROOT = Path(__file__).resolve().parents[3]
"""The source checkout this package runs from, when it is one (editable installs)."""

app = typer.Typer(
    name="stratacache",
    help="Inspect, invalidate, warm and check a stratacache cache; serve its management API.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stratacache {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the library's log on stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    FLAGS.verbose = verbose


def _ask(
    read: Callable[[LocalSource | ServerSource], Awaitable[dict[str, Any]]],
    show: Callable[[dict[str, Any]], None],
    redis_url: str | None,
    preset: str | None,
    server: str | None,
    api_key: str | None,
    *,
    as_json: bool,
) -> None:
    """Open the configured cache (or a service's API), ``read`` from it, close it, print.

    One place for what every read command does alike: the report is printed as JSON
    with ``--json`` (errors too), else by ``show``.
    """

    async def body() -> dict[str, Any]:
        source: LocalSource | ServerSource
        if server is not None:
            source = ServerSource(server, api_key)
        else:
            source = await LocalSource.open(settings_from(redis_url, preset))
        try:
            return await read(source)
        finally:
            await source.aclose()

    report = run(body(), as_json=as_json)
    if as_json:
        emit_json(report)
    else:
        show(report)


# -- read commands ---------------------------------------------------------------------------


@app.command()
def status(
    redis_url: RedisUrlOption = None,
    preset: PresetOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where the cache is and whether it answers: preset, backend, Redis, memory tier."""
    _ask(
        lambda source: source.status(),
        lambda report: render_status(out_console(), report),
        redis_url,
        preset,
        server,
        api_key,
        as_json=as_json,
    )


@app.command()
def stats(
    redis_url: RedisUrlOption = None,
    preset: PresetOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hit rates and sizes: Redis's counters and key count, or a service's (--server)."""
    _ask(
        lambda source: source.stats(),
        lambda report: render_stats(out_console(), report),
        redis_url,
        preset,
        server,
        api_key,
        as_json=as_json,
    )


@app.command()
def keys(
    pattern: Annotated[
        str, typer.Argument(help="A Redis glob (* ? [abc]), within the cache's namespace.")
    ] = "*",
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1_000_000, help="List at most this many.")
    ] = 100,
    redis_url: RedisUrlOption = None,
    preset: PresetOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List cached keys matching PATTERN (never their values), one per line."""

    async def read(source: LocalSource | ServerSource) -> dict[str, Any]:
        report = await source.keys(pattern, limit)
        return {**report, "count": len(report["keys"])}

    def show(report: dict[str, Any]) -> None:
        for key in report["keys"]:
            typer.echo(key)
        more = f"; there may be more (raise --limit, now {limit})" if report["truncated"] else ""
        err_console().print(
            f"[dim]{report['count']} key(s) matching {escape(repr(pattern))}{escape(more)}[/]"
        )

    _ask(read, show, redis_url, preset, server, api_key, as_json=as_json)


@app.command()
def presets(as_json: JsonOption = False) -> None:
    """The presets CACHE_PRESET (or --preset) can name, with their settings."""
    try:
        current: str | None = settings_from().cache_preset
    except CacheError:  # an invalid environment must not hide the list
        current = None
    if as_json:
        emit_json({"current": current, "presets": describe_presets()})
    else:
        render_presets(out_console(), describe_presets(), current)


@app.command()
def doctor(
    redis_url: RedisUrlOption = None,
    preset: PresetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the configuration and the Redis behind it; say what to fix for each finding.

    Checks: the settings and the cache configuration, API keys, Redis reachability
    and latency (PING p50/max), its version, maxmemory and maxmemory-policy, the
    invalidation channel, and a write/read/delete through the cache. Exit 0: all
    good; 1: findings; 3: Redis unreachable.
    """
    report = run(diagnose(redis_url, preset), as_json=as_json)
    if as_json:
        emit_json(report.to_json())
    else:
        render_doctor(out_console(), report)
    raise typer.Exit(int(report.exit_code))


# -- commands that change things ---------------------------------------------------------


@app.command()
def invalidate(
    pattern: Annotated[
        str, typer.Argument(help="A Redis glob (* ? [abc]), within the cache's namespace.")
    ],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before invalidating everything.")
    ] = False,
    redis_url: RedisUrlOption = None,
    preset: PresetOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove the cached entries whose keys match PATTERN, in every process's memory too."""
    with errors_handled(as_json=as_json):
        if pattern and set(pattern) <= {"*"} and not yes:
            if not _can_ask():
                fail(f"{pattern!r} invalidates everything; pass --yes to confirm")
            if not typer.confirm(f"Invalidate every entry ({pattern!r})?", err=True):
                err_console().print("Nothing invalidated.")
                if as_json:
                    emit_json({"pattern": pattern, "keys_invalidated": 0, "cancelled": True})
                raise typer.Exit(int(ExitCode.OK))

    def show(report: dict[str, Any]) -> None:
        out_console().print(
            f"Invalidated {report['keys_invalidated']} key(s) matching {escape(repr(pattern))}"
        )

    _ask(
        lambda source: source.invalidate(pattern),
        show,
        redis_url,
        preset,
        server,
        api_key,
        as_json=as_json,
    )


@app.command()
def warm(
    target: Annotated[
        str,
        typer.Argument(
            metavar="MODULE:ATTR",
            help="A CacheWarmer, or a function returning one (it may take the configured "
            "cache as its one argument), e.g. myapp.cache:warmer.",
        ),
    ],
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="Loaders running at once.")] = 8,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.001, help="Seconds each loader may take.", show_default=False),
    ] = None,
    redis_url: RedisUrlOption = None,
    preset: PresetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fill the cache ahead of traffic with a CacheWarmer's registered keys."""
    report = run(
        warm_target(
            target,
            concurrency=concurrency,
            timeout=timeout,
            settings=lambda: settings_from(redis_url, preset),
            show_progress=not as_json,
        ),
        as_json=as_json,
    )
    if as_json:
        emit_json(report)
    else:
        failed = report["failed"]
        line = f"Warmed {report['warmed']}/{report['total']} key(s) in {report['seconds']:.2f} s"
        out_console().print(line + (f"; failed: {escape(', '.join(failed))}" if failed else ""))
    if report["failed"]:
        raise typer.Exit(int(ExitCode.FINDINGS))


# -- servers and tools ---------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    redis_url: RedisUrlOption = None,
    preset: PresetOption = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev", help="With no API_KEY, open the endpoints that need one (laptops only)."
        ),
    ] = False,
) -> None:
    """Serve the management API (status, keys, dashboard, /metrics) over the configured cache."""
    with errors_handled():
        settings = settings_from(redis_url, preset)  # check everything before starting
        try:
            import uvicorn

            from ..web import DEFAULT_PREFIX, create_app
        except ImportError as exc:
            fail(f"serve needs the 'web' extra ({exc.name}): pip install 'stratacache[web]'")
        _apply_overrides(redis_url, preset)
        application = create_app(dev_mode=dev)
    console = err_console()
    base = f"http://{host}:{port}"
    url = settings.resolved_redis_url
    console.print(f"stratacache management API on {base}{DEFAULT_PREFIX}")
    console.print(f"  dashboard: {base}{DEFAULT_PREFIX}/dashboard   metrics: {base}/metrics")
    console.print(
        f"  preset {settings.cache_preset}, "
        + (f"Redis {redact_url(url)}" if url else "memory only (no Redis URL)")
    )
    if not settings.all_api_keys():
        console.print(
            "  [yellow]no API_KEY:[/] invalidation and key listing are "
            + ("open (--dev)" if dev else "refused (403); set API_KEY or pass --dev")
        )
    uvicorn.run(application, host=host, port=port, log_level="info")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    redis_url: RedisUrlOption = None,
    preset: PresetOption = None,
    reseed: Annotated[bool, typer.Option(help="Rebuild the demo database first.")] = False,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Run the catalog demo service (FastAPI + SQLite, 10,000 products) on HOST:PORT."""
    with errors_handled():
        settings_from(redis_url, preset)  # check everything before starting
        server = _import_demo_server()
        _apply_overrides(redis_url, preset)
        server.serve(host, port, reseed=reseed, access_log=access_log)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    load: Annotated[
        bool,
        typer.Option(
            "--load", help="Run the HTTP load test (benchmarks.load, needs locust) instead."
        ),
    ] = False,
) -> None:
    """Run the benchmarks (`python -m benchmarks`; extra arguments are passed on)."""
    with errors_handled():
        module = "benchmarks.load" if load else "benchmarks"
        root = _checkout_with("benchmarks/load.py" if load else "benchmarks/__main__.py")
        if root is None:
            fail(
                "the benchmarks are not available here: they live in the source repository's "
                "benchmarks/ directory and are not installed with the package",
                hint="clone the repository and run `make bench` (or `stratacache bench`) there",
            )
        command = [sys.executable, "-m", module, *ctx.args]
        err_console().print(f"[dim]running {' '.join(command[1:])} in {root}[/]")
        completed = subprocess.run(command, cwd=root, check=False)
    raise typer.Exit(int(ExitCode.OK if completed.returncode == 0 else ExitCode.FINDINGS))


# -- helpers --------------------------------------------------------------------------------


def _apply_overrides(redis_url: str | None, preset: str | None) -> None:
    """Hand ``--redis-url`` / ``--preset`` to code that reads the environment (servers)."""
    if redis_url is not None:
        os.environ["CACHE_REDIS_URL"] = redis_url
    if preset is not None:
        os.environ["CACHE_PRESET"] = preset


def _checkout_with(relative: str) -> Path | None:
    """The stratacache checkout holding ``relative``: this package's own, else the current
    directory if it is one (never another project's ``benchmarks`` or ``examples``)."""
    for root in (REPO_ROOT, Path.cwd()):
        if (root / relative).exists() and (root / "src" / "stratacache").is_dir():
            return root
    return None


def _import_demo_server() -> ModuleType:
    """``examples.catalog.server``, from a source checkout: the demo is not installed."""
    root = _checkout_with("examples/catalog/server.py")
    if root is None:
        fail(
            "cannot find the demo: it lives in the source repository (examples/catalog) "
            "and is not installed with the package",
            hint="run this from a checkout of the repository, or `make run` there",
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module("examples.catalog.server")
    except ImportError as exc:
        fail(f"cannot import the demo ({exc})", hint="pip install 'stratacache[all]'")


def _can_ask() -> bool:
    """Whether a person can answer a question (a script, or a pipe, cannot)."""
    return sys.stdin.isatty()
