"""``cache_response``: the per-route decorator, on Starlette and FastAPI endpoints.

The rules are the middleware's (one core); these tests check the decorator's own
plumbing — finding the request, FastAPI's view of the signature, sync endpoints,
background tasks — and that the shared rules do apply through it.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from stratacache import InfrastructureError
from stratacache.testing import FakeClock
from stratacache.web import cache_response
from web.http_support import NOW, RecordingCache, client


class Item(BaseModel):
    name: str


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def next(self) -> int:
        self.calls += 1
        return self.calls


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def cache(clock: FakeClock) -> RecordingCache:
    return RecordingCache(clock=clock)


async def test_a_starlette_endpoint_is_cached(cache: RecordingCache, clock: FakeClock) -> None:
    count = Counter()

    @cache_response(cache, ttl=30, clock=clock)
    async def page(request: Request) -> Response:
        return PlainTextResponse(f"{request.url.path} #{count.next()}")

    app = Starlette(routes=[Route("/page", page), Route("/other", page)])
    async with client(app) as http:
        first, second = await http.get("/page"), await http.get("/page")
        assert (first.text, second.text) == ("/page #1", "/page #1")
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
        assert (await http.get("/other")).text == "/other #2"
        not_modified = await http.get("/page", headers={"If-None-Match": first.headers["etag"]})
        assert (not_modified.status_code, not_modified.content) == (304, b"")
        head = await http.head("/page")
        assert (head.status_code, head.content, head.headers["x-cache"]) == (200, b"", "HIT")
        assert head.headers["content-length"] == str(len(b"/page #1"))
        clock.advance(31)
        assert (await http.get("/page")).text == "/page #3"
    assert count.calls == 3


async def test_an_unannotated_starlette_endpoint_is_cached(cache: RecordingCache) -> None:
    count = Counter()

    @cache_response(cache)
    async def page(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse(str(count.next()))

    async with client(Starlette(routes=[Route("/", page)])) as http:
        assert [(await http.get("/")).text for _ in range(2)] == ["1", "1"]


def fastapi_app(cache: RecordingCache, clock: FakeClock, count: Counter) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    @cache_response(cache, clock=clock)
    async def item(item_id: int, q: str | None = None) -> JSONResponse:
        return JSONResponse({"id": item_id, "q": q, "call": count.next()})

    @app.get("/with-request")
    @cache_response(cache, clock=clock)
    async def with_request(request: Request, n: int = 0) -> Response:
        return PlainTextResponse(f"{request.url.path} {n} #{count.next()}")

    @app.get("/sync")
    @cache_response(cache, clock=clock)
    def sync(n: int = 0) -> Response:
        return PlainTextResponse(f"sync {n} #{count.next()}")

    @app.get("/data", response_model=Item)
    @cache_response(cache, clock=clock)
    async def data() -> dict[str, Any]:
        count.next()
        return {"name": "kept", "secret": "filtered out by response_model"}

    return app


async def test_a_fastapi_endpoint_without_a_request_parameter_is_cached(
    cache: RecordingCache, clock: FakeClock
) -> None:
    count = Counter()
    async with client(fastapi_app(cache, clock, count)) as http:
        one = await http.get("/items/1?q=a")
        assert one.json() == {"id": 1, "q": "a", "call": 1}
        assert (await http.get("/items/1?q=a")).json() == {"id": 1, "q": "a", "call": 1}
        assert (await http.get("/items/1?q=b")).json()["call"] == 2
        assert (await http.get("/items/2?q=a")).json()["call"] == 3
        assert (await http.get("/items/x")).status_code == 422  # FastAPI still validates
    assert count.calls == 3


async def test_fastapi_sees_the_endpoints_own_parameters(
    cache: RecordingCache, clock: FakeClock
) -> None:
    app = fastapi_app(cache, clock, Counter())
    operation = app.openapi()["paths"]["/items/{item_id}"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["item_id", "q"]


async def test_an_endpoint_taking_the_request_and_a_sync_endpoint(
    cache: RecordingCache, clock: FakeClock
) -> None:
    count = Counter()
    async with client(fastapi_app(cache, clock, count)) as http:
        texts = [(await http.get(url)).text for url in ("/with-request?n=1",) * 2]
        assert texts == ["/with-request 1 #1"] * 2
        texts = [(await http.get(url)).text for url in ("/sync?n=2",) * 2]
        assert texts == ["sync 2 #2"] * 2
    assert count.calls == 2


async def test_plain_data_is_served_uncached_through_response_model(
    cache: RecordingCache, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    count = Counter()
    async with client(fastapi_app(cache, clock, count)) as http:
        with caplog.at_level(logging.WARNING, logger="stratacache"):
            answers = [await http.get("/data") for _ in range(2)]
    assert [a.json() for a in answers] == [{"name": "kept"}] * 2
    assert count.calls == 2
    assert cache.writes == []
    assert caplog.text.count("not a Response") == 1  # logged once per endpoint


async def test_the_shared_rules_apply_through_the_decorator(cache: RecordingCache) -> None:
    count = Counter()

    @cache_response(cache, max_body_bytes=8)
    async def page(request: Request) -> Response:
        kind = request.query_params["kind"]
        headers = {"Cache-Control": "private"} if kind == "private" else {}
        body = "0123456789" if kind == "big" else f"{kind} #{count.next()}"
        response = PlainTextResponse(body, headers=headers)
        # No Content-Length to give the size away: the decorator must measure the body.
        response.raw_headers = [h for h in response.raw_headers if h[0] != b"content-length"]
        return response

    async with client(Starlette(routes=[Route("/", page)])) as http:
        for kind in ("private", "big"):
            answers = [await http.get(f"/?kind={kind}") for _ in range(2)]
            assert [a.headers["x-cache"] for a in answers] == ["MISS", "MISS"]
        assert "x-cache" not in (await http.get("/?kind=x", headers={"Cookie": "a=1"})).headers
        assert (await http.post("/?kind=x")).status_code == 405  # the route's own rules
    assert cache.writes == []


async def test_scope_separates_users_through_the_decorator(cache: RecordingCache) -> None:
    @cache_response(cache, scope=lambda request: request.headers.get("authorization"))
    async def page(request: Request) -> Response:
        return PlainTextResponse(request.headers.get("authorization", "anonymous"))

    async with client(Starlette(routes=[Route("/", page)])) as http:
        for _ in range(2):
            for user in ("alice", "bob"):
                answer = await http.get("/", headers={"Authorization": user})
                assert answer.text == user
        assert (await http.get("/")).text == "anonymous"
    assert len(cache.writes) == 3


async def test_streaming_responses_pass_through(cache: RecordingCache) -> None:
    async def chunks() -> Any:
        yield b"a"
        yield b"b"

    @cache_response(cache)
    async def page(request: Request) -> Response:
        return StreamingResponse(chunks())

    async with client(Starlette(routes=[Route("/", page)])) as http:
        assert [(await http.get("/")).text for _ in range(2)] == ["ab", "ab"]
    assert cache.writes == []


async def test_a_failing_cache_passes_through_the_decorator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(RecordingCache):
        async def get(self, key: str, default: Any = None) -> Any:
            raise InfrastructureError("Redis connection failed")

    count = Counter()

    @cache_response(Broken())
    async def page(request: Request) -> Response:
        return PlainTextResponse(str(count.next()))

    async with client(Starlette(routes=[Route("/", page)])) as http:
        with caplog.at_level(logging.WARNING, logger="stratacache"):
            assert [(await http.get("/")).text for _ in range(2)] == ["1", "2"]
    assert "Redis connection failed" in caplog.text


async def test_a_background_task_still_runs_on_a_miss(cache: RecordingCache) -> None:
    ran: list[str] = []

    @cache_response(cache)
    async def page(request: Request) -> Response:
        return PlainTextResponse("x", background=BackgroundTask(ran.append, "task"))

    async with client(Starlette(routes=[Route("/", page)])) as http:
        await http.get("/")
        await http.get("/")
    assert ran == ["task"]  # the miss ran it; the hit never called the endpoint


def test_the_wrapper_keeps_the_endpoints_name_and_doc(cache: RecordingCache) -> None:
    async def endpoint(request: Request) -> Response:
        """Doc."""
        return Response()

    wrapped = cache_response(cache)(endpoint)
    assert (wrapped.__name__, wrapped.__doc__) == ("endpoint", "Doc.")


async def test_an_endpoint_called_without_a_request_is_just_called(
    cache: RecordingCache,
) -> None:
    @cache_response(cache)
    async def helper(n: int) -> int:
        return n * 2

    assert await helper(21) == 42
    assert cache.writes == []
