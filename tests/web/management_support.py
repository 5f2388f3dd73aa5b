"""Helpers for the management API tests: clients, a live uvicorn server, shape checks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from stratacache import CacheInterface
from stratacache.web._app import create_app

T = TypeVar("T")

KEY = "test-api-key-12345"
OTHER_KEY = "second-key-\u00e9"
AUTH = {"X-API-Key": KEY}
BEARER = {"Authorization": f"Bearer {KEY}"}
PREFIX = "/internal/cache"


def app_for(cache: CacheInterface, *, api_keys: Iterable[str] = (KEY,), **options: Any) -> FastAPI:
    return create_app(cache, api_keys=list(api_keys), **options)


def client(app: Any, base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


def shape(value: Any) -> Any:
    """The structure of a JSON document: dict keys and value types, recursively."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return (
        "number"
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else type(value).__name__
    )


async def all_keys(
    http: httpx.AsyncClient,
    *,
    pattern: str = "*",
    limit: int = 1000,
    max_pages: int = 10_000,
    headers: dict[str, str] | None = None,
) -> tuple[list[str], list[int]]:
    """Walk GET /keys to the end: (every key in order received, size of each page)."""
    keys: list[str] = []
    pages: list[int] = []
    cursor = "0"
    for _ in range(max_pages):
        response = await http.get(
            f"{PREFIX}/keys",
            params={"pattern": pattern, "cursor": cursor, "limit": limit},
            headers=AUTH if headers is None else headers,
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["count"] == len(page["keys"])
        keys += page["keys"]
        pages.append(len(page["keys"]))
        if page["next_cursor"] is None:
            return keys, pages
        cursor = page["next_cursor"]
    raise AssertionError(f"no end of the scan after {max_pages} pages")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """A real uvicorn server on a loopback port, in a thread with its own event loop.

    ``call(coro)`` runs a coroutine on the server's loop (where the app's cache
    lives) and returns its result.
    """

    def __init__(self, app: Any, *, startup_timeout: float = 15.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            ws="none",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-uvicorn", daemon=True)
        self._startup_timeout = startup_timeout

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._server.serve())
        except BaseException as exc:  # reported by start() / stop()
            self._failure = exc
        finally:
            loop.close()

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"uvicorn did not start: {self._failure!r}")
            if time.monotonic() > deadline:
                self._server.should_exit = True
                raise RuntimeError(f"uvicorn did not start within {self._startup_timeout} s")
            time.sleep(0.02)  # bounded polling of a real server
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "uvicorn did not stop within 15 s"

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        assert self._loop is not None
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)
