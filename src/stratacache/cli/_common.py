"""What every command shares: exit codes, errors without tracebacks, settings, output.

Exit codes (scripts may rely on them):

==  ==========================================================================
0   done; every check passed
1   done, but something needs attention: ``doctor`` findings, keys that
    failed to warm, a benchmark that failed
2   usage or configuration error: a bad option, URL, preset, pattern or
    ``MODULE:ATTR``; the management API refused the key
3   unreachable: Redis (or the ``--server``) did not answer
==  ==========================================================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from .._redis_client import validate_redis_url
from ..config import CacheSettings, load_settings
from ..config._settings import ENVIRONMENT_VARIABLES
from ..errors import CacheError, ConfigurationError, InfrastructureError, ValidationError

__all__ = [
    "EXIT_CODES_HELP",
    "FLAGS",
    "UNREACHABLE_HINT",
    "ApiKeyOption",
    "CLIError",
    "ExitCode",
    "JsonOption",
    "PresetOption",
    "RedisUrlOption",
    "ServerOption",
    "describe_exception",
    "emit_json",
    "err_console",
    "errors_handled",
    "fail",
    "out_console",
    "run",
    "settings_from",
    "unreachable_message",
]

T = TypeVar("T")

UNREACHABLE_HINT = (
    "check that Redis is running and that the URL (--redis-url, CACHE_REDIS_URL or "
    "REDIS_URL) is right; `stratacache doctor` checks the whole set-up"
)


class ExitCode(IntEnum):
    """The scheme in this module's docstring; scripts may rely on it."""

    OK = 0
    FINDINGS = 1
    USAGE = 2
    UNREACHABLE = 3


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 done but needs attention (doctor findings, failed warm-ups "
    "or benchmarks); "
    "2 usage or configuration error (bad option, URL, preset, pattern; key refused); "
    "3 Redis or the --server unreachable."
)


class CLIError(Exception):
    """An expected failure: printed as one message (and a hint), never as a traceback."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint


def fail(message: str, code: ExitCode = ExitCode.USAGE, hint: str = "") -> NoReturn:
    """Raise :class:`CLIError` (``NoReturn``, so the type checker narrows after a call)."""
    raise CLIError(message, code, hint)


# -- options shared by several commands -------------------------------------------------

RedisUrlOption = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="Redis URL; overrides CACHE_REDIS_URL and REDIS_URL.",
        show_default=False,
    ),
]
PresetOption = Annotated[
    str | None,
    typer.Option("--preset", help="Cache preset; overrides CACHE_PRESET.", show_default=False),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON (only) on stdout.")
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="STRATACACHE_SERVER",
        help="Ask a running service's management API (e.g. http://127.0.0.1:8000) "
        "instead of connecting to the cache: the way to see a memory-only cache.",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="API_KEY",
        help="Management API key for --server (default: API_KEY).",
        show_default=False,
    ),
]


# -- settings ------------------------------------------------------------------------------


def settings_from(redis_url: str | None = None, preset: str | None = None) -> CacheSettings:
    """The environment's cache settings, with ``--redis-url`` / ``--preset`` applied.

    Only :data:`ENVIRONMENT_VARIABLES` are read, and ``--redis-url`` is validated
    here, so a bad option is a usage error before anything connects.
    """
    environ = {name: os.environ.get(name, "") for name in ENVIRONMENT_VARIABLES}
    if redis_url is not None:
        environ["CACHE_REDIS_URL"] = validate_redis_url(redis_url)
    if preset is not None:
        environ["CACHE_PRESET"] = preset
    return load_settings(environ)


# -- output ----------------------------------------------------------------------------------


def out_console() -> Console:
    """Human output (stdout). Built per call: tests swap ``sys.stdout``."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def err_console() -> Console:
    """Messages, warnings and progress (stderr), so stdout stays data."""
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    """Print ``data`` as the whole of stdout, flushed (a script may read it at once).

    ``default=str``: a report may hold a value JSON has no type for (a datetime, a
    path); a string in its place beats a traceback with nothing on stdout.
    """
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


# -- running a command ---------------------------------------------------------------------


def run(body: Coroutine[Any, Any, T], *, as_json: bool = False) -> T:
    """Run a command's coroutine; expected failures become a message and an exit code."""
    with errors_handled(as_json=as_json), quiet_library_logs():
        return asyncio.run(body)
    raise AssertionError("unreachable")  # pragma: no cover - errors_handled exits


@contextmanager
def errors_handled(*, as_json: bool = False) -> Iterator[None]:
    """Turn expected exceptions into a printed message and :class:`ExitCode`."""
    try:
        yield
    except CLIError as exc:
        _report(exc.message, exc.code, exc.hint, as_json)
    except InfrastructureError as exc:
        _report(unreachable_message(exc), ExitCode.UNREACHABLE, UNREACHABLE_HINT, as_json)
    except (ConfigurationError, ValidationError) as exc:
        _report(exc.message, ExitCode.USAGE, "", as_json)
    except CacheError as exc:  # SerializationError from a warm-up, say
        _report(exc.message, ExitCode.FINDINGS, "", as_json)
    except KeyboardInterrupt:
        err_console().print("interrupted")
        raise typer.Exit(130) from None


def unreachable_message(exc: InfrastructureError) -> str:
    """What a user of the command line should read when Redis cannot be reached.

    The factory's own message ends with advice for library callers (pass
    ``fail_on_connection_error=False``) that no option of this command can follow;
    its context says what was unreachable and why, which is all a user needs.
    Other infrastructure errors (a strict cache failing mid-command) keep their text.
    """
    where = exc.context.get("redis_url")
    if not where:
        return exc.message
    return f"Redis at {where} is unreachable ({exc.context.get('reason') or 'no answer'})"


def describe_exception(exc: BaseException) -> str:
    """``Type: text`` for an exception we did not raise (redis-py's, the OS's).

    Their text alone is often too terse to place ("Connection refused"), and a few
    have none at all.
    """
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _report(message: str, code: ExitCode, hint: str, as_json: bool) -> NoReturn:
    if as_json:
        error: dict[str, Any] = {"message": message, "exit_code": int(code)}
        if hint:
            error["hint"] = hint
        emit_json({"ok": False, "error": error})
    console = err_console()
    console.print(f"[bold red]Error:[/] {escape(message)}")
    if hint:
        console.print(f"[dim]Hint:[/] {escape(hint)}")
    raise typer.Exit(int(code))


class _Flags:
    verbose = False


FLAGS = _Flags()
"""Set by the app's callback for the current invocation (``-v``)."""


@contextmanager
def quiet_library_logs() -> Iterator[None]:
    """Keep the library's log (warnings, tracebacks) out of the output, unless ``-v``.

    The CLI reports failures itself, once, with a fix. With ``--verbose`` the
    library's log goes to stderr instead. Either way the logger is restored
    afterwards: the CLI may run inside another program (a test, a notebook).
    """
    logger = logging.getLogger("stratacache")
    previous = logger.level
    handler: logging.Handler | None = None
    if FLAGS.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    else:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)
        if handler is not None:
            logger.removeHandler(handler)
