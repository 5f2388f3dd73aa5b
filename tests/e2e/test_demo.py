"""The catalog demo end to end: through ASGI (seeded SQLite per test), and via ``make run``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from stratacache import CacheInterface, GenericRedisCache, InMemoryCache

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # examples/ is not installed: import it from the checkout
    sys.path.insert(0, str(ROOT))

from examples.catalog import server  # noqa: E402
from examples.catalog.app import create_app  # noqa: E402
from examples.catalog.seed import CATEGORIES, DEFAULT_PRODUCTS, ensure_seeded  # noqa: E402

pytestmark = pytest.mark.e2e

KEY = "demo-test-key-0123456789"
AUTH = {"X-API-Key": KEY}


@dataclass
class Demo:
    app: FastAPI
    http: httpx.AsyncClient
    cache: CacheInterface


MakeDemo = Callable[..., Awaitable[Demo]]


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_seeded(tmp_path_factory.mktemp("catalog") / "catalog.sqlite3").path


@pytest.fixture
def database(seeded_template: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded catalog: tests may write to it."""
    return Path(shutil.copy(seeded_template, tmp_path / "catalog.sqlite3"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CACHE_PRESET",
        "CACHE_REDIS_URL",
        "REDIS_URL",
        "CACHE_CUSTOM_CONFIG",
        "API_KEY",
        "ADDITIONAL_API_KEYS",
        "CATALOG_DB",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def make_demo(database: Path) -> AsyncIterator[MakeDemo]:
    """Start a demo app (its lifespan too) with an ASGI client; all stopped afterwards."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(cache: CacheInterface | None = None) -> Demo:
            app = create_app(database=database, cache=cache, api_key=KEY)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            http = httpx.AsyncClient(transport=transport, base_url="http://catalog.test")
            await stack.enter_async_context(http)
            return Demo(app, http, app.state.cache)

        yield make


def cache_of(response: httpx.Response) -> tuple[str | None, str | None]:
    return response.headers.get("x-cache"), response.headers.get("x-cache-tier")


async def test_the_seed_has_ten_thousand_products_in_fifty_categories(
    make_demo: MakeDemo,
) -> None:
    demo = await make_demo()
    response = await demo.http.get("/categories")
    counts = response.json()["categories"]
    assert len(counts) == len(CATEGORIES) == 50
    assert sum(counts.values()) == DEFAULT_PRODUCTS == 10_000


async def test_a_read_misses_then_hits_the_memory_tier(make_demo: MakeDemo) -> None:
    demo = await make_demo()
    first = await demo.http.get("/products/42")
    assert first.status_code == 200
    assert cache_of(first) == ("MISS", "source")
    assert "db;dur=" in first.headers["server-timing"]
    assert "app;dur=" in first.headers["server-timing"]
    second = await demo.http.get("/products/42")
    assert cache_of(second) == ("HIT", "memory")
    assert "db;dur=" not in second.headers["server-timing"]
    assert second.json() == first.json()
    assert first.json()["id"] == 42


async def test_an_update_drops_the_entry_after_the_commit(make_demo: MakeDemo) -> None:
    demo = await make_demo()
    before = (await demo.http.get("/products/42")).json()
    patched = await demo.http.patch("/products/42", json={"price_cents": before["price_cents"] + 1})
    assert patched.status_code == 200
    assert "product:42" in patched.headers["x-cache-invalidated"]
    after = await demo.http.get("/products/42")
    assert cache_of(after) == ("MISS", "source")
    assert after.json()["price_cents"] == before["price_cents"] + 1
    assert cache_of(await demo.http.get("/products/42")) == ("HIT", "memory")


async def test_moving_a_product_drops_the_old_and_the_new_category(make_demo: MakeDemo) -> None:
    demo = await make_demo()
    old = (await demo.http.get("/products/42")).json()["category"]
    new = next(category for category in CATEGORIES if category != old)

    async def listing(category: str) -> httpx.Response:
        return await demo.http.get("/products", params={"category": category, "limit": 100})

    for category in (old, new):
        assert cache_of(await listing(category)) == ("MISS", "source")
        assert cache_of(await listing(category)) == ("HIT", "memory")
    patched = await demo.http.patch("/products/42", json={"category": new})
    assert patched.status_code == 200
    assert {f"category:{old}", f"category:{new}"} <= set(
        patched.headers["x-cache-invalidated"].split(", ")
    )
    old_list, new_list = await listing(old), await listing(new)
    assert cache_of(old_list) == cache_of(new_list) == ("MISS", "source")
    assert 42 not in [product["id"] for product in old_list.json()["products"]]
    assert 42 in [product["id"] for product in new_list.json()["products"]]


async def test_create_and_delete_invalidate_the_negative_entry(make_demo: MakeDemo) -> None:
    demo = await make_demo()
    created = await demo.http.post(
        "/products",
        json={"name": "Test Lamp", "category": "lighting", "price_cents": 1999, "stock": 3},
    )
    assert created.status_code == 201
    product_id = created.json()["id"]
    assert created.headers["location"] == f"/products/{product_id}"
    first = await demo.http.get(f"/products/{product_id}")
    assert (first.status_code, *cache_of(first)) == (200, "MISS", "source")
    assert first.json()["name"] == "Test Lamp"
    deleted = await demo.http.delete(f"/products/{product_id}")
    assert deleted.status_code == 204
    assert f"product:{product_id}" in deleted.headers["x-cache-invalidated"]
    gone = await demo.http.get(f"/products/{product_id}")
    assert (gone.status_code, *cache_of(gone)) == (404, "MISS", "source")
    again = await demo.http.get(f"/products/{product_id}")  # "not found" is cached too ...
    assert (again.status_code, *cache_of(again)) == (404, "HIT", "memory")
    recreated = await demo.http.post(
        "/products",
        json={"name": "Test Lamp 2", "category": "lighting", "price_cents": 1, "stock": 1},
    )
    assert recreated.json()["id"] == product_id  # SQLite reuses the highest rowid
    back = await demo.http.get(f"/products/{product_id}")  # ... until a write drops it
    assert (back.status_code, back.json()["name"]) == (200, "Test Lamp 2")


async def test_the_management_api_reflects_reads_and_writes(make_demo: MakeDemo) -> None:
    demo = await make_demo()
    for _ in range(3):
        await demo.http.get("/products/7")
    status = (await demo.http.get("/internal/cache/status")).json()
    assert (status["performance"]["hits"], status["performance"]["misses"]) == (2, 1)
    assert status["memory"]["entries"] == 1
    assert status["redis"]["status"] == "disabled"
    assert status["preset"] == "development"
    keys = await demo.http.get("/internal/cache/keys", headers=AUTH)
    assert keys.json()["keys"] == ["product:7"]
    assert (await demo.http.get("/internal/cache/keys")).status_code == 401
    await demo.http.patch("/products/7", json={"stock": 1})
    status = (await demo.http.get("/internal/cache/status")).json()
    assert status["memory"]["entries"] == 0
    await demo.http.get("/products/7")
    dropped = await demo.http.post(
        "/internal/cache/invalidate", params={"pattern": "product:*"}, headers=AUTH
    )
    assert dropped.json()["keys_invalidated"] == 1
    assert cache_of(await demo.http.get("/products/7")) == ("MISS", "source")


async def test_concurrent_cold_reads_share_one_query(make_demo: MakeDemo) -> None:
    demo = await make_demo()
    responses = await asyncio.gather(*(demo.http.get("/products/77") for _ in range(20)))
    assert {response.status_code for response in responses} == {200}
    outcomes = [
        (*cache_of(response), response.headers.get("x-cache-shared-load")) for response in responses
    ]
    assert outcomes.count(("MISS", "source", None)) == 1  # exactly one query ran
    assert set(outcomes) <= {
        ("MISS", "source", None),
        ("MISS", "source", "1"),
        ("HIT", "memory", None),
    }
    assert demo.cache.get_stats()["sets"] == 1


async def test_caching_disabled_always_queries_the_database(
    make_demo: MakeDemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_PRESET", "disabled")
    demo = await make_demo()
    for _ in range(2):
        assert cache_of(await demo.http.get("/products/3")) == ("MISS", "source")
    status = (await demo.http.get("/internal/cache/status")).json()
    assert status["preset"] == "disabled"


async def test_invalid_requests(make_demo: MakeDemo) -> None:
    demo = await make_demo()
    assert (await demo.http.get("/products/0")).status_code == 422
    assert (await demo.http.get("/products", params={"limit": 1000})).status_code == 422
    assert (await demo.http.get("/products", params={"category": "nope"})).status_code == 404
    assert (await demo.http.patch("/products/99999", json={"stock": 1})).status_code == 404
    assert (await demo.http.delete("/products/99999")).status_code == 404
    refused = await demo.http.post(
        "/products", json={"name": "x", "category": "nope", "price_cents": 1, "stock": 1}
    )
    assert refused.status_code == 422


async def test_the_landing_page_explains_and_escapes(make_demo: MakeDemo) -> None:
    demo = await make_demo(InMemoryCache(100))
    page = await demo.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in ("GET /products/{id}", "X-Cache", "/internal/cache/dashboard", "10,000 products"):
        assert text in page.text
    assert "http://catalog.test/products/42" in page.text
    hostile = await demo.http.get("/", headers={"Host": "<script>alert(1)</script>"})
    assert "<script>alert(1)" not in hostile.text
    assert "&lt;script&gt;" in hostile.text


@pytest.mark.redis
async def test_two_tier_processes_share_redis_and_invalidations(
    make_demo: MakeDemo, redis_url: str, unique_prefix: str
) -> None:
    namespace = unique_prefix.rstrip(":")
    one = await make_demo(GenericRedisCache(redis_url, namespace=namespace))
    two = await make_demo(GenericRedisCache(redis_url, namespace=namespace))
    try:
        assert cache_of(await one.http.get("/products/5")) == ("MISS", "source")
        assert cache_of(await one.http.get("/products/5")) == ("HIT", "memory")
        # one's write is announced to the other process; a read racing that message
        # is (rightly) not copied into memory, so let it land first (bounded).
        deadline = time.monotonic() + 2
        while two.cache.get_stats()["invalidations_received"] < 1:
            assert time.monotonic() < deadline, "the write's announcement never arrived"
            await asyncio.sleep(0.005)
        assert cache_of(await two.http.get("/products/5")) == ("HIT", "redis")
        assert cache_of(await two.http.get("/products/5")) == ("HIT", "memory")
        status = (await two.http.get("/internal/cache/status")).json()
        assert status["redis"]["status"] == "connected"
        await one.http.patch("/products/5", json={"stock": 5})
        deadline = time.monotonic() + 2
        while cache_of(response := await two.http.get("/products/5"))[0] == "HIT":
            # bounded: the invalidation crosses Redis pub/sub to the other "process"
            assert time.monotonic() < deadline, "the other process kept serving product:5"
            await asyncio.sleep(0.01)
        assert response.json()["stock"] == 5
    finally:
        await one.cache.clear()


# -- server.serve: what `make run` and `stratacache demo` start (uvicorn replaced) ----------


async def _served(database: Path, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The app ``server.serve`` would hand to uvicorn."""
    import uvicorn

    served: list[FastAPI] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    await asyncio.to_thread(server.serve, database=database)  # serve is synchronous
    [app] = served
    return app


async def _keys_statuses(app: FastAPI, *keys: str) -> list[int]:
    """The status of ``GET /internal/cache/keys`` with each key (one app lifespan)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as http:
            return [
                (await http.get("/internal/cache/keys", headers={"X-API-Key": key})).status_code
                for key in keys
            ]


async def test_serve_accepts_every_configured_key(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = "demo-extra-key-0123456789"
    monkeypatch.setenv("API_KEY", KEY)
    monkeypatch.setenv("ADDITIONAL_API_KEYS", extra)
    app = await _served(database, monkeypatch)
    banner = capsys.readouterr().out
    assert f"management API key: {KEY}\n" in banner
    assert "generated" not in banner
    assert await _keys_statuses(app, KEY, extra, "wrong-key-0123456789") == [200, 200, 401]


async def test_serve_prints_the_key_it_generates(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = await _served(database, monkeypatch)
    line = next(
        line for line in capsys.readouterr().out.splitlines() if "management API key" in line
    )
    assert line.endswith("(generated; set API_KEY to choose one)")
    assert await _keys_statuses(app, line.split()[3]) == [200]


def test_an_unusable_database_path_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    with pytest.raises(SystemExit) as exit_info:
        server.main(["--db", str(blocked / "catalog.sqlite3")])
    message = str(exit_info.value.code)
    assert message.startswith("catalog: cannot build the demo database at ")
    assert "CATALOG_DB" in message


def test_the_seed_runs_as_a_module_without_warnings(tmp_path: Path) -> None:
    # benchmarks/load.py seeds this way; the package must not import the module first.
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "examples.catalog.seed", str(tmp_path / "c.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("seeded ")


# -- `make run`, as a developer types it --------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, headers, json.loads(response.read())


@pytest.mark.slow
def test_make_run_serves_the_demo(tmp_path: Path, seeded_template: Path) -> None:
    port = _free_port()
    database = Path(shutil.copy(seeded_template, tmp_path / "catalog.sqlite3"))
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CACHE_", "REDIS_"))},
        "CATALOG_DB": str(database),
        "API_KEY": KEY,
    }
    process = subprocess.Popen(
        # -o: the virtualenv counts as installed (make test must not reinstall it)
        ["make", "-o", ".venv/.installed-stamp", "run", f"PORT={port}"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/products/42"
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded polling of a real process
            assert process.poll() is None, process.communicate()[0].decode()[-2000:]
            assert time.monotonic() < deadline, "make run did not answer within 60 s"
            try:
                status, headers, body = _get(url)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        assert (status, body["id"]) == (200, 42)
        assert headers["x-cache"] == "MISS"
        assert _get(url)[1]["x-cache"] == "HIT"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            output = process.communicate(timeout=20)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output = process.communicate()[0].decode()
    assert "stratacache catalog demo" in output
    assert f"http://127.0.0.1:{port}/" in output
    assert KEY in output  # the management key is printed at start
