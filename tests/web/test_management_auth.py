"""Authentication and input validation of the management API.

Whatever the credential headers hold, the answer is 200, 401 or 403 — never a 500 —
and always ``Cache-Control: no-store``. Patterns outside 1-256 characters or with
control characters are 422 with a message naming the problem.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from stratacache import InMemoryCache
from stratacache.web._app import create_app
from web.management_support import KEY, OTHER_KEY, PREFIX, app_for, client

Headers = list[tuple[bytes, bytes]]
INVALIDATE = f"{PREFIX}/invalidate?pattern=x:*"


@pytest.fixture
async def cache() -> AsyncIterator[InMemoryCache]:
    async with InMemoryCache() as memory:
        yield memory


@pytest.fixture
async def http(cache: InMemoryCache) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app_for(cache, api_keys=[KEY, OTHER_KEY])) as http:
        yield http


def h(*pairs: tuple[str, str | bytes]) -> Headers:
    return [
        (name.encode(), value if isinstance(value, bytes) else value.encode("utf-8"))
        for name, value in pairs
    ]


ACCEPTED = {
    "x-api-key": h(("X-API-Key", KEY)),
    "bearer": h(("Authorization", f"Bearer {KEY}")),
    "bearer-lowercase": h(("authorization", f"bearer {KEY}")),
    "bearer-extra-spaces": h(("Authorization", f"Bearer   {KEY}  ")),
    "bearer-tab": h(("Authorization", f"Bearer\t{KEY}")),
    "second-key-utf8": h(("X-API-Key", OTHER_KEY)),
    "same-key-twice": h(("X-API-Key", KEY), ("X-API-Key", KEY)),
    "both-headers-same-key": h(("X-API-Key", KEY), ("Authorization", f"Bearer {KEY}")),
    "basic-ignored-beside-key": h(("Authorization", "Basic dXNlcjpwYXNz"), ("X-API-Key", KEY)),
}

REFUSED = {
    "nothing": [],
    "empty-authorization": h(("Authorization", "")),
    "bearer-alone": h(("Authorization", "Bearer")),
    "bearer-space": h(("Authorization", "Bearer ")),
    "basic": h(("Authorization", "Basic xyz")),
    "basic-with-the-key": h(
        ("Authorization", "Basic " + base64.b64encode(f"user:{KEY}".encode()).decode())
    ),
    "key-without-scheme": h(("Authorization", KEY)),
    "empty-x-api-key": h(("X-API-Key", "")),
    "wrong-key": h(("X-API-Key", "wrong")),
    "key-prefix": h(("X-API-Key", KEY[:-1])),
    "key-suffix": h(("X-API-Key", KEY + "x")),
    "key-case": h(("X-API-Key", KEY.upper())),
    "8-kib": h(("X-API-Key", "A" * 8192)),
    "8-kib-bearer": h(("Authorization", "Bearer " + "B" * 8192)),
    "latin-1-bytes": h(("X-API-Key", b"\xff\xfe\xe9")),
    "invalid-utf8-bearer": h(("Authorization", b"Bearer \xc3\x28")),
    "second-key-as-latin-1": h(("X-API-Key", OTHER_KEY.encode("latin-1"))),
    "nul-byte": h(("X-API-Key", KEY.encode() + b"\x00")),
    "two-different-keys": h(("X-API-Key", KEY), ("X-API-Key", OTHER_KEY)),
    "valid-and-wrong": h(("X-API-Key", KEY), ("Authorization", "Bearer wrong")),
    "bearer-two-tokens": h(("Authorization", f"Bearer {KEY} {KEY}")),
}


def _assert_no_store(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("headers", ACCEPTED.values(), ids=ACCEPTED.keys())
async def test_required_endpoint_accepts_valid_keys(
    http: httpx.AsyncClient, headers: Headers
) -> None:
    response = await http.post(INVALIDATE, headers=headers)
    assert response.status_code == 200, response.text
    _assert_no_store(response)


@pytest.mark.parametrize("headers", REFUSED.values(), ids=REFUSED.keys())
async def test_required_endpoint_refuses_anything_else_with_401(
    http: httpx.AsyncClient, headers: Headers
) -> None:
    response = await http.post(INVALIDATE, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    message = response.json()["detail"]["message"]
    assert "Authorization: Bearer <key>" in message
    assert "X-API-Key: <key>" in message
    assert KEY not in response.text
    _assert_no_store(response)


@pytest.mark.parametrize(
    ("method", "url", "options"),
    [
        ("GET", f"{PREFIX}/keys", {}),
        ("POST", f"{PREFIX}/tags/invalidate", {"json": {"tags": ["t"]}}),
        ("DELETE", f"{PREFIX}/keys/k", {}),
    ],
)
async def test_every_required_endpoint_needs_a_key(
    http: httpx.AsyncClient, method: str, url: str, options: dict[str, Any]
) -> None:
    refused = await http.request(method, url, **options)
    accepted = await http.request(method, url, headers={"X-API-Key": KEY}, **options)
    assert refused.status_code == 401
    assert accepted.status_code == 200


async def test_authentication_comes_before_validation(http: httpx.AsyncClient) -> None:
    """A stranger learns nothing about parameters or bodies: 401 first."""
    bad_pattern = await http.post(f"{PREFIX}/invalidate?pattern=%00")
    broken_body = await http.post(
        f"{PREFIX}/tags/invalidate",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad_pattern.status_code == broken_body.status_code == 401


@pytest.mark.parametrize(
    "url", [f"{PREFIX}/status", f"{PREFIX}/metrics", f"{PREFIX}/dashboard", "/metrics"]
)
async def test_optional_endpoints_work_without_a_key_but_refuse_a_wrong_one(
    http: httpx.AsyncClient, url: str
) -> None:
    anonymous = await http.get(url)
    with_key = await http.get(url, headers={"Authorization": f"Bearer {KEY}"})
    proxy_basic = await http.get(url, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    wrong = await http.get(url, headers={"X-API-Key": "wrong"})
    assert (anonymous.status_code, with_key.status_code, proxy_basic.status_code) == (200, 200, 200)
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    for response in (anonymous, with_key, proxy_basic, wrong):
        _assert_no_store(response)


async def test_health_needs_no_key_and_ignores_a_wrong_one(http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{PREFIX}/health", headers={"X-API-Key": "wrong"})).status_code == 200


async def test_keys_are_compared_against_every_configured_key(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(len(a))
        return compare(a, b)

    monkeypatch.setattr("stratacache.web._auth.hmac.compare_digest", counting)
    for key in (KEY, OTHER_KEY, "wrong", "x" * 5000):
        calls.clear()
        await http.post(INVALIDATE, headers=h(("X-API-Key", key)))
        # no early exit, and equal-length digests whatever the length of the key sent
        assert calls == [32, 32], key


async def test_no_key_configured_refuses_required_endpoints_with_403(cache: InMemoryCache) -> None:
    async with client(app_for(cache, api_keys=[])) as http:
        refused = await http.post(INVALIDATE, headers={"X-API-Key": "anything"})
        keys = await http.get(f"{PREFIX}/keys")
        status = await http.get(f"{PREFIX}/status", headers={"X-API-Key": "anything"})
    assert refused.status_code == keys.status_code == 403
    message = refused.json()["detail"]["message"]
    for hint in ("API_KEY", "ADDITIONAL_API_KEYS", "dev_mode"):
        assert hint in message
    assert status.status_code == 200
    _assert_no_store(refused)


async def test_dev_mode_opens_required_endpoints_only_when_no_key_is_configured(
    cache: InMemoryCache,
) -> None:
    async with client(app_for(cache, api_keys=[], dev_mode=True)) as http:
        open_ = await http.post(INVALIDATE)
    async with client(app_for(cache, api_keys=[KEY], dev_mode=True)) as http:
        still_closed = await http.post(INVALIDATE)
    assert open_.status_code == 200
    assert still_closed.status_code == 401


async def test_keys_come_from_the_environment_when_not_given(
    cache: InMemoryCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", "env-key")
    monkeypatch.setenv("ADDITIONAL_API_KEYS", "extra-1, extra-2 ,, ")
    async with client(create_app(cache)) as http:
        codes = [
            (await http.post(INVALIDATE, headers={"X-API-Key": key})).status_code
            for key in ("env-key", "extra-1", "extra-2", "extra-1, extra-2", "")
        ]
    assert codes == [200, 200, 200, 401, 401]


def test_api_keys_must_be_a_list() -> None:
    from stratacache import ConfigurationError

    with pytest.raises(ConfigurationError, match="not a single string"):
        create_app(InMemoryCache(), api_keys="secret")


# -- patterns ---------------------------------------------------------------------------------

BAD_PATTERNS = {
    "empty": ("", "must not be empty"),
    "257-chars": ("x" * 257, "at most 256"),
    "10000-chars": ("x" * 10_000, "at most 256"),
    "nul": ("a\x00b", "control characters"),
    "newline": ("user:\n*", "control characters"),
    "carriage-return": ("a\rb", "control characters"),
    "tab": ("a\tb", "control characters"),
    "escape": ("\x1b[31m", "control characters"),
    "delete": ("a\x7f", "control characters"),
    "c1-control": ("a\x85b", "control characters"),
}


@pytest.mark.parametrize(("pattern", "problem"), BAD_PATTERNS.values(), ids=BAD_PATTERNS.keys())
@pytest.mark.parametrize("endpoint", ["invalidate", "keys"])
async def test_bad_patterns_are_422_naming_the_problem(
    cache: InMemoryCache, http: httpx.AsyncClient, endpoint: str, pattern: str, problem: str
) -> None:
    await cache.set("user:1", 1)
    method = "POST" if endpoint == "invalidate" else "GET"
    response = await http.request(
        method, f"{PREFIX}/{endpoint}", params={"pattern": pattern}, headers={"X-API-Key": KEY}
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "pattern"]
    assert problem in error["msg"]
    assert "pattern" in error["msg"]
    assert pattern not in response.text or not pattern
    _assert_no_store(response)
    assert await cache.get("user:1") == 1


@pytest.mark.parametrize(
    "pattern", ["x" * 256, "*", "user:[0-9]?", "\u043a\u043b\u044e\u0447:*", "a\\*b"]
)
async def test_good_patterns_are_accepted(http: httpx.AsyncClient, pattern: str) -> None:
    response = await http.post(
        f"{PREFIX}/invalidate", params={"pattern": pattern}, headers={"X-API-Key": KEY}
    )
    assert response.status_code == 200
    assert response.json()["pattern"] == pattern
