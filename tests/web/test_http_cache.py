"""HTTPCacheMiddleware end to end, through httpx against a Starlette app.

The ideas come from Django's cache middleware tests (``tests/cache/tests.py``:
CacheMiddlewareTest, CacheHEADTest, PrefixedCacheUtils, CacheI18nTest) and from the
web cache poisoning and deception literature: what must never be stored, what must
never be served to whom, and what a client must never be able to do to the cache.
"""

from __future__ import annotations

import hashlib
import logging
import re
from email.utils import formatdate
from typing import Any

import pytest
from starlette.requests import Request

from stratacache import InfrastructureError, ValidationError
from stratacache.web import HTTPCacheMiddleware
from stratacache.web._http_rules import content_etag, key_part, parse_cache_control
from web.http_support import NOW, Backend, Env, MakeEnv, RecordingCache, client, starlette_app

STRONG_SHA256 = re.compile(r'^"[0-9a-f]{64}"$')


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


# -- hits, misses, headers ------------------------------------------------------------------


async def test_a_second_get_is_served_from_the_cache(http_env: Env) -> None:
    first = await http_env.get()
    second = await http_env.get()
    assert first.status_code == second.status_code == 200
    assert second.content == first.content == b"testserver/page? #1"
    assert http_env.backend.calls == 1
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert "age" not in first.headers
    assert second.headers["age"] == "0"
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["content-length"] == str(len(first.content))
    assert http_env.middleware.get_stats() == {
        "hits": 1,
        "misses": 1,
        "stores": 1,
        "not_stored": 0,
        "passed_through": 0,
        "errors": 0,
    }


async def test_age_counts_the_seconds_since_the_response_was_stored(http_env: Env) -> None:
    await http_env.get()
    http_env.clock.advance(7.9)
    assert (await http_env.get()).headers["age"] == "7"


async def test_the_etag_is_a_quoted_sha256_of_the_content(http_env: Env) -> None:
    http_env.backend.body = b"same body"
    one = await http_env.get("/one")
    other = await http_env.get("/other")
    assert STRONG_SHA256.match(one.headers["etag"])
    assert one.headers["etag"] == other.headers["etag"]  # a content hash, not a key hash
    assert (await http_env.get("/one")).headers["etag"] == one.headers["etag"]  # and on a hit
    http_env.backend.body = b"another body"
    assert (await http_env.get("/third")).headers["etag"] != one.headers["etag"]


async def test_the_etag_changes_with_the_content_type_and_coding(http_env: Env) -> None:
    http_env.backend.body = b"{}"
    plain = await http_env.get("/a")
    http_env.backend.media_type = "application/json"
    json = await http_env.get("/b")
    http_env.backend.headers = {"Content-Encoding": "identity"}
    coded = await http_env.get("/c")
    assert len({plain.headers["etag"], json.headers["etag"], coded.headers["etag"]}) == 3


async def test_an_etag_the_app_set_is_kept_and_validated(http_env: Env) -> None:
    http_env.backend.headers = {"ETag": 'W/"v7"'}
    first = await http_env.get()
    assert first.headers.get_list("etag") == ['W/"v7"']
    hit = await http_env.get()
    assert hit.headers.get_list("etag") == ['W/"v7"']
    revalidated = await http_env.get(headers={"If-None-Match": '"v7"'})
    assert revalidated.status_code == 304


async def test_the_stored_entry_is_a_plain_dict_every_cache_can_hold(http_env: Env) -> None:
    await http_env.get()
    assert isinstance(http_env.cache, RecordingCache)
    [(key, entry, ttl, _tags)] = http_env.cache.writes
    assert key.startswith("http:")
    assert ttl == 60

    def plain(value: Any) -> bool:
        if isinstance(value, dict):
            return all(type(k) is str and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return type(value) in (bytes, str, int, float)

    assert plain(entry)
    assert entry["body"] == b"testserver/page? #1"


async def test_cached_headers_drop_hop_by_hop_fields(http_env: Env) -> None:
    http_env.backend.headers = {"Connection": "close", "Keep-Alive": "5", "X-App": "yes"}
    await http_env.get()
    hit = await http_env.get()
    assert hit.headers["x-app"] == "yes"
    assert "keep-alive" not in hit.headers
    assert "connection" not in hit.headers


# -- conditional requests -------------------------------------------------------------------


async def test_a_matching_if_none_match_gets_a_bodiless_304_with_the_validators(
    http_env: Env,
) -> None:
    http_env.backend.headers = {
        "Cache-Control": "public, max-age=600",
        "Vary": "Accept-Language",
        "Content-Location": "/page.en",
        "Date": http_date(NOW),
        "Expires": http_date(NOW + 300),
        "Last-Modified": http_date(NOW - 60),
        "X-Other": "not in a 304",
    }
    etag = (await http_env.get()).headers["etag"]
    answer = await http_env.get(headers={"If-None-Match": etag})
    assert answer.status_code == 304
    assert answer.content == b""
    for name in ("etag", "cache-control", "vary", "content-location", "date", "expires"):
        assert name in answer.headers, name
    assert answer.headers["etag"] == etag
    assert answer.headers["vary"] == "Accept-Language"
    assert answer.headers["x-cache"] == "HIT"
    assert "x-other" not in answer.headers
    assert "content-type" not in answer.headers
    assert "content-length" not in answer.headers
    assert http_env.backend.calls == 1


async def test_a_miss_is_fetched_in_full_and_then_answered_304(http_env: Env) -> None:
    http_env.backend.body = b"known"
    etag = (await http_env.get("/elsewhere")).headers["etag"]  # same body, same content hash
    answer = await http_env.get(headers={"If-None-Match": etag})
    assert (answer.status_code, answer.headers["x-cache"]) == (304, "MISS")
    _method, seen = http_env.backend.seen[-1]
    assert "if-none-match" not in seen  # the app gave the full body, which was stored
    full = await http_env.get()
    assert (full.status_code, full.content, full.headers["x-cache"]) == (200, b"known", "HIT")


@pytest.mark.parametrize(
    ("template", "status"),
    [
        ("{etag}", 304),
        ('"a", {etag}, "b"', 304),
        ('"a" ,{etag}', 304),
        ("W/{etag}", 304),  # weak comparison for GET and HEAD
        ('"with,comma", W/{etag}', 304),
        ("*", 304),
        ('"other"', 200),
        ('W/"other", "more"', 200),
        ("{bare}", 200),  # unquoted: not an entity tag
        ("", 200),
        ('"a", *', 200),  # '*' only counts alone
    ],
)
async def test_if_none_match_lists_weak_tags_and_star(
    http_env: Env, template: str, status: int
) -> None:
    etag = (await http_env.get()).headers["etag"]
    header = template.format(etag=etag, bare=etag.strip('"'))
    for _ in range(2):  # the same on a hit as on a miss's fresh response
        answer = await http_env.get(headers={"If-None-Match": header})
        assert answer.status_code == status
        assert answer.content == (b"" if status == 304 else b"testserver/page? #1")


async def test_if_none_match_split_over_several_fields_is_one_list(http_env: Env) -> None:
    etag = (await http_env.get()).headers["etag"]
    answer = await http_env.get(headers=[("If-None-Match", '"x"'), ("If-None-Match", etag)])
    assert answer.status_code == 304


async def test_if_modified_since_is_used_only_without_if_none_match(http_env: Env) -> None:
    http_env.backend.headers = {"Last-Modified": http_date(NOW - 100)}
    await http_env.get()
    assert (
        await http_env.get(headers={"If-Modified-Since": http_date(NOW - 50)})
    ).status_code == 304
    assert (
        await http_env.get(headers={"If-Modified-Since": http_date(NOW - 150)})
    ).status_code == 200
    assert (await http_env.get(headers={"If-Modified-Since": "yesterday"})).status_code == 200
    both = {"If-Modified-Since": http_date(NOW), "If-None-Match": '"nope"'}
    assert (await http_env.get(headers=both)).status_code == 200
    assert http_env.backend.calls == 1


# -- what is never stored -------------------------------------------------------------------


async def test_a_response_setting_a_cookie_is_never_stored(http_env: Env) -> None:
    http_env.backend.headers = {"Set-Cookie": "session=secret; HttpOnly", "Vary": "Cookie"}
    first = await http_env.get()
    http_env.http.cookies.clear()  # the next request is again a cookie-less one
    second = await http_env.get()
    assert http_env.backend.calls == 2
    assert first.headers["x-cache"] == second.headers["x-cache"] == "MISS"
    assert second.cookies["session"] == "secret"
    assert isinstance(http_env.cache, RecordingCache)
    assert http_env.cache.writes == []


@pytest.mark.parametrize(
    "cache_control",
    [
        "private",
        "Private, max-age=600",
        'private="X-User"',
        "no-store",
        "public, NO-STORE",
        "no-cache",
        'no-cache="Set-Cookie"',
        "max-age=0",
        "public, s-maxage=0, max-age=600",
        "max-age=soon",
    ],
)
async def test_responses_that_forbid_or_outlive_storage_are_not_stored(
    http_env: Env, cache_control: str
) -> None:
    http_env.backend.headers = {"Cache-Control": cache_control}
    await http_env.get()
    answer = await http_env.get()
    assert http_env.backend.calls == 2
    assert answer.headers["x-cache"] == "MISS"
    assert answer.headers["cache-control"] == cache_control  # passed on untouched
    assert http_env.middleware.get_stats()["not_stored"] == 2


async def test_pragma_no_cache_counts_only_without_cache_control(http_env: Env) -> None:
    http_env.backend.headers = {"Pragma": "no-cache"}
    await http_env.get("/a")
    await http_env.get("/a")
    http_env.backend.headers = {"Pragma": "no-cache", "Cache-Control": "max-age=60"}
    await http_env.get("/b")
    await http_env.get("/b")
    assert http_env.backend.calls == 3


@pytest.mark.parametrize("vary", ["*", "Accept, *", "Accept-Language, bad header"])
async def test_vary_star_is_never_stored(http_env: Env, vary: str) -> None:
    http_env.backend.headers = {"Vary": vary}
    await http_env.get()
    await http_env.get()
    assert http_env.backend.calls == 2


@pytest.mark.parametrize("status", [201, 203, 204, 206, 301, 302, 304, 404, 410, 500, 503])
async def test_only_200_is_stored(http_env: Env, status: int) -> None:
    http_env.backend.status = status
    http_env.backend.body = b"" if status in (204, 304) else None
    first = await http_env.get()
    second = await http_env.get()
    assert first.status_code == second.status_code == status
    assert http_env.backend.calls == 2
    assert "etag" not in second.headers


async def test_an_expires_in_the_past_or_invalid_is_not_stored(http_env: Env) -> None:
    http_env.backend.headers = {"Expires": "0"}
    await http_env.get("/a")
    await http_env.get("/a")
    http_env.backend.headers = {"Expires": http_date(NOW - 10)}
    await http_env.get("/b")
    await http_env.get("/b")
    assert http_env.backend.calls == 4


# -- methods --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_other_methods_pass_through_and_never_touch_the_cache(
    http_env: Env, method: str
) -> None:
    await http_env.get()
    for _ in range(2):
        answer = await http_env.http.request(method, "/page")
        assert answer.status_code == 200
        assert "x-cache" not in answer.headers
        assert "etag" not in answer.headers
    assert http_env.backend.calls == 3
    assert [seen[0] for seen in http_env.backend.seen] == ["GET", method, method]
    assert (await http_env.get()).headers["x-cache"] == "HIT"  # a write request did not purge it


async def test_head_is_cached_like_get_and_shares_its_entry(http_env: Env) -> None:
    # Django's CacheHEADTest: a HEAD is cached, and a cached GET answers a HEAD.
    first = await http_env.http.head("/page")
    second = await http_env.http.head("/page")
    get = await http_env.get()
    assert http_env.backend.calls == 1
    assert http_env.backend.seen[0][0] == "GET"  # the miss was fetched as a GET
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.content == second.content == b""
    assert second.headers["content-length"] == str(len(get.content))
    assert second.headers["etag"] == get.headers["etag"]
    assert (get.headers["x-cache"], get.content) == ("HIT", b"testserver/page? #1")


async def test_head_after_a_cached_get(http_env: Env) -> None:
    get = await http_env.get()
    head = await http_env.http.head("/page")
    assert (head.status_code, head.content, head.headers["x-cache"]) == (200, b"", "HIT")
    assert head.headers["etag"] == get.headers["etag"]
    assert http_env.backend.calls == 1


async def test_head_of_an_unstorable_response_still_has_no_body(http_env: Env) -> None:
    http_env.backend.headers = {"Cache-Control": "no-store"}
    head = await http_env.http.head("/page")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(b"testserver/page? #1"))


# -- the key --------------------------------------------------------------------------------


async def test_the_query_string_is_in_the_key_as_sent(http_env: Env) -> None:
    # Like Django, the order is kept: ?a=1&b=2 and ?b=2&a=1 may mean different things.
    for url in ("/p?a=1", "/p?a=2", "/p?a=1&b=2", "/p?b=2&a=1", "/p", "/p?a=1&a=2"):
        assert (await http_env.get(url)).headers["x-cache"] == "MISS", url
    assert (await http_env.get("/p?a=1&b=2")).content == b"testserver/p?a=1&b=2 #3"
    assert http_env.backend.calls == 6


async def test_the_path_is_in_the_key(http_env: Env) -> None:
    await http_env.get("/a")
    assert (await http_env.get("/b")).content == b"testserver/b? #2"
    assert (await http_env.get("/a/")).headers["x-cache"] == "MISS"


async def test_the_host_is_in_the_key_so_one_host_never_gets_anothers_page(http_env: Env) -> None:
    a = await http_env.get("http://a.example/page")
    b = await http_env.get("http://b.example/page")
    assert (a.content, b.content) == (b"a.example/page? #1", b"b.example/page? #2")
    spoofed = await http_env.get("http://b.example/page", headers={"Host": "a.example"})
    assert spoofed.content == b"a.example/page? #1"  # a's page, for a request naming a
    assert (await http_env.get("http://b.example/page")).content == b"b.example/page? #2"


async def test_the_host_is_normalized_for_case_and_default_port(http_env: Env) -> None:
    # httpx drops a default port from URLs, so the Host fields are spelled out here.
    await http_env.get("http://a.example/page")
    for url, host, verdict in [
        ("http://a.example/page", "A.Example:80", "HIT"),
        ("http://a.example/page", "a.example:8080", "MISS"),
        ("https://a.example/page", "a.example", "MISS"),
        ("https://a.example/page", "a.example:443", "HIT"),
        ("https://a.example/page", "a.example:80", "MISS"),
    ]:
        answer = await http_env.get(url, headers={"Host": host})
        assert answer.headers["x-cache"] == verdict, (url, host)


async def test_without_a_host_field_the_server_address_is_the_host() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})

    cache = RecordingCache()
    middleware = HTTPCacheMiddleware(app, cache=cache)
    verdicts = []
    for server in [("10.0.0.1", 80), ("10.0.0.1", 80), ("10.0.0.2", 80), None, None]:
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        async def send(message: Any, sent: list[Any] = sent) -> None:
            sent.append(message)

        scope: dict[str, Any] = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [],
            "server": server,
        }
        await middleware(scope, receive, send)
        verdicts.append(dict(sent[0]["headers"])[b"x-cache"])
    assert verdicts == [b"MISS", b"HIT", b"MISS", b"MISS", b"HIT"]


async def test_several_host_fields_are_never_cached(http_env: Env) -> None:
    headers = [("Host", "a.example"), ("Host", "b.example")]
    for _ in range(2):
        assert "x-cache" not in (await http_env.get("http://a.example/", headers=headers)).headers
    assert http_env.backend.calls == 2


async def test_vary_separates_entries_by_the_named_request_headers(http_env: Env) -> None:
    # Django's CacheI18nTest and test_patch_vary_headers, in one.
    http_env.backend.headers = {"Vary": "Accept-Language, Accept-Encoding"}
    http_env.backend.body_from = lambda r: (
        f"{r.headers.get('accept-language')}|{r.headers.get('accept-encoding')}".encode()
    )
    variants = [
        {"Accept-Language": "en", "Accept-Encoding": "gzip"},
        {"Accept-Language": "fr", "Accept-Encoding": "gzip"},
        {"Accept-Language": "en", "Accept-Encoding": "identity"},
    ]
    for headers in variants * 2:
        answer = await http_env.get(headers=headers)
        assert (
            answer.content == f"{headers['Accept-Language']}|{headers['Accept-Encoding']}".encode()
        )
    assert http_env.backend.calls == 3
    other = {"Accept-Language": "en", "Accept-Encoding": "gzip", "Accept": "text/html"}
    assert (await http_env.get(headers=other)).headers["x-cache"] == "HIT"  # Accept is not in Vary


async def test_a_vary_that_changes_over_time_never_mixes_variants(http_env: Env) -> None:
    http_env.backend.body_from = lambda r: r.headers.get("accept-language", "none").encode()
    await http_env.get(headers={"Accept-Language": "en"})  # no Vary yet: one shared entry
    assert (await http_env.get(headers={"Accept-Language": "fr"})).content == b"en"
    http_env.clock.advance(61)
    http_env.backend.headers = {"Vary": "Accept-Language"}
    assert (await http_env.get(headers={"Accept-Language": "fr"})).content == b"fr"
    assert (await http_env.get(headers={"Accept-Language": "en"})).content == b"en"
    assert (await http_env.get(headers={"Accept-Language": "fr"})).headers["x-cache"] == "HIT"


async def test_forwarded_host_is_not_in_the_key_unless_configured(make_http_env: MakeEnv) -> None:
    def echo(request: Request) -> bytes:
        return request.headers.get("x-forwarded-host", "-").encode()

    default = make_http_env(Backend(body_from=echo))
    await default.get()
    spoof = await default.get(headers={"X-Forwarded-Host": "evil.example"})
    assert (spoof.headers["x-cache"], spoof.content) == ("HIT", b"-")

    trusting = make_http_env(Backend(body_from=echo), key_headers=["X-Forwarded-Host"])
    evil = await trusting.get(headers={"X-Forwarded-Host": "evil.example"})
    clean = await trusting.get()
    assert (evil.content, clean.content) == (b"evil.example", b"-")
    assert clean.headers["x-cache"] == "MISS"  # the spoofed page was never served to others


async def test_cached_pages_carry_the_configured_tags(make_http_env: MakeEnv) -> None:
    http_env = make_http_env(tags=lambda request: [f"page:{request.url.path}"])
    await http_env.get("/a")
    await http_env.get("/b")
    assert await http_env.cache.invalidate_tags("page:/a") == 1
    assert (await http_env.get("/a")).headers["x-cache"] == "MISS"
    assert (await http_env.get("/b")).headers["x-cache"] == "HIT"
    http_env.backend.headers = {"Vary": "Accept"}
    await http_env.get("/c")
    assert await http_env.cache.invalidate_tags("page:/c") == 2  # the page and its Vary index
    assert (await http_env.get("/c")).headers["x-cache"] == "MISS"


async def test_the_key_prefix_namespaces_the_keys(make_http_env: MakeEnv) -> None:
    http_env = make_http_env(key_prefix="pages")
    await http_env.get()
    assert isinstance(http_env.cache, RecordingCache)
    assert http_env.cache.writes[0][0].startswith("pages:")
    assert await http_env.cache.invalidate_pattern("pages:*") == 1
    assert (await http_env.get()).headers["x-cache"] == "MISS"
    # Two apps sharing one cache under different prefixes never share pages.
    neighbour = HTTPCacheMiddleware(starlette_app(Backend(body=b"theirs")), cache=http_env.cache)
    async with client(neighbour) as http:
        assert (await http.get("/page")).content == b"theirs"
    assert (await http_env.get()).content == b"testserver/page? #2"


# -- credentials and scope ------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [{"Authorization": "Bearer alice"}, {"Cookie": "session=alice"}, {"X-API-Key": "k"}],
)
async def test_requests_with_credentials_are_neither_served_nor_stored(
    http_env: Env, credentials: dict[str, str]
) -> None:
    await http_env.get()  # an anonymous page is cached
    for _ in range(2):
        answer = await http_env.get(headers=credentials)
        assert answer.content not in (b"testserver/page? #1",)
        assert "x-cache" not in answer.headers
    assert http_env.backend.calls == 3
    assert http_env.middleware.get_stats()["passed_through"] == 2


def user_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header.removeprefix("Bearer ") or None


async def test_scope_separates_users(make_http_env: MakeEnv) -> None:
    backend = Backend(body_from=lambda r: r.headers.get("authorization", "anonymous").encode())
    http_env = make_http_env(backend, scope=user_of)
    alice = {"Authorization": "Bearer alice"}
    bob = {"Authorization": "Bearer bob"}
    assert (await http_env.get(headers=alice)).content == b"Bearer alice"
    assert (await http_env.get(headers=bob)).content == b"Bearer bob"
    assert (await http_env.get()).content == b"anonymous"
    hits = [await http_env.get(headers=h) for h in (alice, bob, {})]
    assert [h.content for h in hits] == [b"Bearer alice", b"Bearer bob", b"anonymous"]
    assert all(h.headers["x-cache"] == "HIT" for h in hits)
    assert backend.calls == 3


async def test_scope_may_be_async_and_none_keeps_a_credentialed_request_uncached(
    make_http_env: MakeEnv,
) -> None:
    async def tenant(request: Request) -> str | None:
        return request.headers.get("x-tenant")

    http_env = make_http_env(scope=tenant)
    cookie = {"Cookie": "session=1"}
    await http_env.get(headers=cookie)
    assert "x-cache" not in (await http_env.get(headers=cookie)).headers  # no tenant: uncached
    scoped = {"Cookie": "session=1", "X-Tenant": "t1"}
    await http_env.get(headers=scoped)
    assert (await http_env.get(headers=scoped)).headers["x-cache"] == "HIT"
    other = {"Cookie": "session=1", "X-Tenant": "t2"}
    assert (await http_env.get(headers=other)).headers["x-cache"] == "MISS"


async def test_an_empty_scope_is_no_scope(make_http_env: MakeEnv) -> None:
    http_env = make_http_env(scope=lambda request: "")
    await http_env.get(headers={"Cookie": "a=1"})
    await http_env.get(headers={"Cookie": "a=2"})
    assert http_env.backend.calls == 2
    assert http_env.middleware.get_stats()["stores"] == 0


@pytest.mark.parametrize("bad", [lambda r: 1 / 0, lambda r: 42])
async def test_a_failing_scope_serves_the_request_uncached(
    make_http_env: MakeEnv, caplog: pytest.LogCaptureFixture, bad: Any
) -> None:
    http_env = make_http_env(scope=bad)
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        assert (await http_env.get()).status_code == 200
        assert (await http_env.get()).status_code == 200
    assert http_env.backend.calls == 2
    assert http_env.middleware.get_stats()["errors"] == 2
    assert "serving without the cache" in caplog.text


# -- clients cannot bypass, poison or invalidate --------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "no-cache"},
        {"Cache-Control": "max-age=0"},
        {"Cache-Control": "no-store"},
        {"Pragma": "no-cache"},
        {"Cache-Control": "must-revalidate, no-cache", "Pragma": "no-cache"},
    ],
)
async def test_request_cache_control_cannot_bypass_or_refresh(
    http_env: Env, headers: dict[str, str]
) -> None:
    await http_env.get()
    answer = await http_env.get(headers=headers)
    assert (answer.headers["x-cache"], answer.content) == ("HIT", b"testserver/page? #1")
    assert http_env.backend.calls == 1


async def test_request_headers_cannot_set_the_server_side_ttl(http_env: Env) -> None:
    await http_env.get(headers={"Cache-Control": "max-age=100000, min-fresh=0"})
    assert isinstance(http_env.cache, RecordingCache)
    assert http_env.cache.writes[0][2] == 60
    http_env.clock.advance(61)
    assert (await http_env.get()).headers["x-cache"] == "MISS"


async def test_a_client_cannot_store_an_unkeyed_variant(http_env: Env) -> None:
    # The app reads X-Forwarded-Host but only declares it in Vary: the Vary keeps
    # the attacker's page to attackers.
    http_env.backend.headers = {"Vary": "X-Forwarded-Host"}
    http_env.backend.body_from = lambda r: r.headers.get("x-forwarded-host", "-").encode()
    assert (await http_env.get(headers={"X-Forwarded-Host": "evil"})).content == b"evil"
    assert (await http_env.get()).content == b"-"
    assert (await http_env.get()).headers["x-cache"] == "HIT"


# -- lifetimes ------------------------------------------------------------------------------


async def test_entries_expire_after_the_ttl(http_env: Env) -> None:
    await http_env.get()
    http_env.clock.advance(59)
    assert (await http_env.get()).headers["x-cache"] == "HIT"
    http_env.clock.advance(2)
    answer = await http_env.get()
    assert (answer.headers["x-cache"], answer.content) == ("MISS", b"testserver/page? #2")


@pytest.mark.parametrize(
    ("ttl", "headers", "lifetime"),
    [
        (60, {"Cache-Control": "max-age=10"}, 10),
        (60, {"Cache-Control": "public, max-age=600"}, 60),
        (60, {"Cache-Control": "max-age=5, s-maxage=30"}, 30),  # s-maxage wins for us
        (60, {"Cache-Control": "max-age=20, max-age=40"}, 20),
        (60, {"Expires": http_date(NOW + 15)}, 15),
        (60, {"Expires": http_date(NOW + 15), "Date": http_date(NOW - 5)}, 20),
        (60, {"Expires": http_date(NOW + 15), "Cache-Control": "max-age=25"}, 25),
        (0, {"Cache-Control": "max-age=45"}, 45),  # ttl=0: as long as the response allows
    ],
)
async def test_the_ttl_is_capped_by_the_responses_own_lifetime(
    make_http_env: MakeEnv, ttl: int, headers: dict[str, str], lifetime: int
) -> None:
    http_env = make_http_env(Backend(headers=headers), ttl=ttl)
    await http_env.get()
    assert isinstance(http_env.cache, RecordingCache)
    assert http_env.cache.writes[0][2] == lifetime
    http_env.clock.advance(lifetime - 1)
    assert (await http_env.get()).headers["x-cache"] == "HIT"
    http_env.clock.advance(2)
    assert (await http_env.get()).headers["x-cache"] == "MISS"


async def test_ttl_zero_without_a_response_lifetime_never_expires(make_http_env: MakeEnv) -> None:
    http_env = make_http_env(ttl=0)
    await http_env.get()
    http_env.clock.advance(10 * 365 * 86400)
    assert (await http_env.get()).headers["x-cache"] == "HIT"


# -- bodies ---------------------------------------------------------------------------------


async def test_streamed_bodies_within_the_limit_are_stored(make_http_env: MakeEnv) -> None:
    http_env = make_http_env(Backend(chunks=[b"ab", b"cd", b"ef"]), max_body_bytes=6)
    first = await http_env.get()
    second = await http_env.get()
    assert first.content == second.content == b"abcdef"
    assert second.headers["x-cache"] == "HIT"
    assert second.headers["content-length"] == "6"


async def test_bodies_over_the_limit_pass_through_whole_and_uncached(
    make_http_env: MakeEnv,
) -> None:
    http_env = make_http_env(Backend(chunks=[b"ab", b"cd", b"efg", b"h"]), max_body_bytes=6)
    answers = [await http_env.get() for _ in range(2)]
    assert [a.content for a in answers] == [b"abcdefgh"] * 2
    assert [a.headers["x-cache"] for a in answers] == ["MISS"] * 2
    assert "etag" not in answers[0].headers
    assert http_env.backend.calls == 2

    declared = make_http_env(Backend(body=b"x" * 7), max_body_bytes=6)  # Content-Length says so
    assert (await declared.get()).content == b"x" * 7
    assert (await declared.get()).headers["x-cache"] == "MISS"


async def test_event_streams_are_never_buffered_or_stored(make_http_env: MakeEnv) -> None:
    http_env = make_http_env(Backend(chunks=[b"data: 1\n\n"], media_type="text/event-stream"))
    await http_env.get()
    answer = await http_env.get()
    assert (answer.content, answer.headers["x-cache"]) == (b"data: 1\n\n", "MISS")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("ttl", -1),
        ("ttl", 1.5),
        ("max_body_bytes", 0),
        ("key_prefix", ""),
        ("key_headers", ["bad header"]),
        ("credential_headers", [b"cookie"]),
        ("tags", "single-string"),
        ("scope", "not callable"),
    ],
)
def test_bad_settings_are_refused_at_construction(option: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        HTTPCacheMiddleware(
            starlette_app(Backend()),
            cache=RecordingCache(),
            **{option: value},
        )


def test_a_cache_must_be_given() -> None:
    with pytest.raises(ValidationError, match="cache must be"):
        HTTPCacheMiddleware(starlette_app(Backend()), cache=object())  # type: ignore[arg-type]


# -- a failing cache never fails a request --------------------------------------------------


class BrokenCache(RecordingCache):
    """Reads or writes raise, as a cache in strict mode would during an outage."""

    def __init__(self, *, reads: bool, writes: bool) -> None:
        super().__init__()
        self.break_reads, self.break_writes = reads, writes

    async def get(self, key: str, default: Any = None) -> Any:
        if self.break_reads:
            raise InfrastructureError("Redis connection failed")
        return await super().get(key, default)

    async def set(self, key: str, value: Any, ttl: int | None = None, **kwargs: Any) -> None:
        if self.break_writes:
            raise InfrastructureError("Redis connection failed")
        await super().set(key, value, ttl, **kwargs)


@pytest.mark.parametrize(("reads", "writes"), [(True, True), (True, False), (False, True)])
async def test_a_failing_cache_passes_requests_through(
    make_http_env: MakeEnv, caplog: pytest.LogCaptureFixture, reads: bool, writes: bool
) -> None:
    http_env = make_http_env(cache=BrokenCache(reads=reads, writes=writes))
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        answers = [await http_env.get() for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.content for a in answers] == [b"testserver/page? #1", b"testserver/page? #2"]
    assert http_env.middleware.get_stats()["errors"] == 2
    assert "InfrastructureError" in caplog.text
    assert "Redis connection failed" in caplog.text


async def test_foreign_data_under_a_key_is_a_miss(http_env: Env) -> None:
    await http_env.get()
    assert isinstance(http_env.cache, RecordingCache)
    key = http_env.cache.writes[0][0]
    for junk in ("text", {"v": 1, "body": "not bytes"}, {"vary": "x"}, {"v": 1, "vary": [1]}):
        await http_env.cache.set(key, junk)
        answer = await http_env.get()
        assert (answer.status_code, answer.headers["x-cache"]) == (200, "MISS")
    assert http_env.middleware.get_stats()["errors"] == 0


# -- ASGI details -----------------------------------------------------------------------------


async def test_non_http_scopes_and_the_app_are_left_alone() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = HTTPCacheMiddleware(app, cache=RecordingCache())

    async def nothing() -> Any:
        return {}

    async def discard(message: Any) -> None:
        pass

    await middleware({"type": "lifespan"}, nothing, discard)
    await middleware({"type": "websocket", "path": "/", "headers": []}, nothing, discard)
    assert seen == ["lifespan", "websocket"]


async def test_a_large_stream_is_forwarded_as_it_is_produced() -> None:
    # Above the limit, chunks must reach the client before the app finishes.
    sent: list[Any] = []
    observed: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(4):
            await send({"type": "http.response.body", "body": b"x" * 4, "more_body": n < 3})
            observed.append(len(sent))

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    middleware = HTTPCacheMiddleware(app, cache=RecordingCache(), max_body_bytes=6)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", b"h")]}
    await middleware(scope, receive, send)
    assert observed == [0, 2, 3, 4]  # first chunk buffered, then forwarded as they come
    assert b"".join(m.get("body", b"") for m in sent) == b"x" * 16
    assert (b"x-cache", b"MISS") in sent[0]["headers"]


async def drive(middleware: HTTPCacheMiddleware, method: str = "GET", path: str = "/") -> list[Any]:
    """Run one request through the middleware by hand; returns the messages it sent."""
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [(b"host", b"h")]}
    await middleware(scope, receive, send)
    return sent


@pytest.mark.parametrize("path", ["/stored", "/no-store"])
async def test_head_never_sends_a_body_even_to_a_lenient_server(path: str) -> None:
    # httpx's ASGITransport drops HEAD bodies itself, so look at the ASGI messages.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        cache_control = b"no-store" if scope["path"] == "/no-store" else b"max-age=60"
        headers = [(b"cache-control", cache_control), (b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"body"})

    middleware = HTTPCacheMiddleware(app, cache=RecordingCache())
    for method in ("HEAD", "HEAD", "GET"):
        sent = await drive(middleware, method, path)
        start, *bodies = sent
        assert (b"content-length", b"4") in start["headers"]
        expected = b"body" if method == "GET" else b""
        assert b"".join(m["body"] for m in bodies) == expected


async def test_a_declared_length_over_the_limit_streams_from_the_first_chunk() -> None:
    observed: list[int] = []
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        observed.append(len(sent))
        await send({"type": "http.response.body", "body": b"x" * 4, "more_body": True})
        observed.append(len(sent))
        await send({"type": "http.response.body", "body": b"x" * 4})

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    middleware = HTTPCacheMiddleware(app, cache=RecordingCache(), max_body_bytes=6)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", b"h")]}
    await middleware(scope, receive, send)
    assert observed == [1, 2]  # nothing held back: the length said it would not fit


async def test_responses_with_trailers_are_streamed_and_not_stored() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": [], "trailers": True}
        await send(start)
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})

    cache = RecordingCache()
    sent = await drive(HTTPCacheMiddleware(app, cache=cache))
    assert [m["type"] for m in sent] == [
        "http.response.start",
        "http.response.body",
        "http.response.trailers",
    ]
    assert sent[0]["trailers"] is True
    assert cache.writes == []


async def test_zero_copy_sends_pass_through_and_a_head_never_gets_them() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if "http.response.pathsend" in scope.get("extensions", {}):
            await send({"type": "http.response.pathsend", "path": "/srv/file"})
        else:
            await send({"type": "http.response.body", "body": b"file"})

    cache = RecordingCache()
    middleware = HTTPCacheMiddleware(app, cache=cache)

    async def run(method: str) -> list[Any]:
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": method,
            "path": "/",
            "headers": [(b"host", b"h")],
            "extensions": {"http.response.pathsend": {}},
        }
        await middleware(scope, receive, send)
        return sent

    get = await run("GET")
    assert [m["type"] for m in get] == ["http.response.start", "http.response.pathsend"]
    assert cache.writes == []  # the file never went through the middleware
    head = await run("HEAD")
    assert "http.response.pathsend" not in [m["type"] for m in head]
    assert b"".join(m.get("body", b"") for m in head[1:]) == b""
    assert len(cache.writes) == 1  # the HEAD's GET read the file as a body, and stored it


async def test_an_app_that_breaks_off_its_response_is_not_stored() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})

    cache = RecordingCache()
    sent = await drive(HTTPCacheMiddleware(app, cache=cache))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert (sent[1]["body"], sent[1]["more_body"]) == (b"part", True)  # not completed by us
    assert cache.writes == []


async def test_an_app_error_reaches_the_server_untouched() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom")

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    cache = RecordingCache()
    middleware = HTTPCacheMiddleware(app, cache=cache)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", b"h")]}
    with pytest.raises(RuntimeError, match="boom"):
        await middleware(scope, receive, send)
    assert sent == []  # nothing half-sent, so the server can still answer 500
    assert cache.writes == []


def test_a_content_hash_is_stable() -> None:
    # The ETag of a plain-text body, computed independently.
    digest = hashlib.sha256(key_part(b"text/plain") + key_part(b"") + b"hello").hexdigest()
    assert content_etag([(b"content-type", b"text/plain")], b"hello") == f'"{digest}"'


@pytest.mark.parametrize(
    ("field", "directives"),
    [
        ("no-cache", {"no-cache": [None]}),
        ('private="a, b", max-age=5', {"private": ["a, b"], "max-age": ["5"]}),
        ("Max-Age = 7 ,S-MAXAGE=9", {"max-age": ["7"], "s-maxage": ["9"]}),
        ("max-age=1, max-age=2", {"max-age": ["1", "2"]}),
        ("", {}),
    ],
)
def test_cache_control_parsing(field: str, directives: dict[str, list[str | None]]) -> None:
    assert parse_cache_control(field) == directives
