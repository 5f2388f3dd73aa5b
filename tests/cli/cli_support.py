"""Helpers for the CLI tests (importable as ``cli.cli_support``)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import uvicorn
from typer.testing import CliRunner

from stratacache.cli._app import app

CONFIG_VARIABLES = (
    "CACHE_PRESET",
    "CACHE_REDIS_URL",
    "REDIS_URL",
    "ENABLE_AI_CACHE",
    "CACHE_CUSTOM_CONFIG",
    "API_KEY",
    "ADDITIONAL_API_KEYS",
    "STRATACACHE_SERVER",
)
API_KEY = "cli-test-key-0123456789"
CLOSED_REDIS = "redis://127.0.0.1:1/0"


class Cli:
    """Invoke the Typer app in-process; stdout and stderr kept apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Any:
        result = self.runner.invoke(app, list(args), input=input, catch_exceptions=True)
        # An expected failure exits with a code; anything else is a bug in the CLI.
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert "Traceback" not in result.output, result.output
        return result

    def json(self, *args: str) -> tuple[int, Any]:
        result = self(*args, "--json")
        return result.exit_code, json.loads(result.stdout)


def namespace_config(namespace: str) -> str:
    return json.dumps({"namespace": namespace})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveApp:
    """An ASGI app served by uvicorn on a loopback port, in a thread with its own loop."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self.server.serve())
        finally:
            self.loop.close()

    def __enter__(self) -> LiveApp:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:  # bounded polling of a real server
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "uvicorn did not stop within 15 s"

    def call(self, coroutine: Any) -> Any:
        """Run a coroutine on the server's loop (where its cache lives)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)
