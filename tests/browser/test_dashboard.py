"""The dashboard in headless Chromium, served by a real uvicorn.

The page must show the figures, pick up new ones within a poll or two after cache
operations, run under its CSP without a single console error, and show keys per
tenant only once it is given a valid API key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from stratacache import InMemoryCache
from stratacache.caches._tenant import TenantCache
from web.management_support import KEY, PREFIX, LiveServer, app_for

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

POLL_TIMEOUT_MS = 15_000  # the page polls every 2 s


@pytest.fixture
def server() -> Iterator[tuple[LiveServer, InMemoryCache]]:
    cache = InMemoryCache(max_size=1000)
    with LiveServer(app_for(cache)) as live:
        yield live, cache


async def _open(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(url)
    return page, problems


async def _text(page: Page, element: str) -> str:
    text = await page.text_content(f"#{element}")
    assert text is not None
    return text


async def test_dashboard_shows_the_figures_and_follows_the_cache(
    browser: Browser, server: tuple[LiveServer, InMemoryCache]
) -> None:
    live, cache = server
    page, problems = await _open(browser, f"{live.url}{PREFIX}/dashboard")

    await page.wait_for_function(
        "() => Number(document.body.dataset.polls) >= 1", timeout=POLL_TIMEOUT_MS
    )
    assert await _text(page, "hit-rate") == "0.0 %"
    assert await _text(page, "redis-status") == "disabled"
    assert await _text(page, "memory-status") == "active"
    assert await _text(page, "entries") == "0 / 1,000"
    assert await _text(page, "error") == ""

    async def operations() -> None:
        for i in range(10):
            await cache.set(f"k:{i}", {"n": i})
        for i in range(5):
            await cache.get(f"k:{i}")
        for i in range(3):
            await cache.get(f"absent:{i}")

    live.call(operations())

    await page.wait_for_function(
        "() => document.getElementById('hits').textContent === '5'", timeout=POLL_TIMEOUT_MS
    )
    assert await _text(page, "misses") == "3"
    assert await _text(page, "hit-rate") == "62.5 %"
    assert (await _text(page, "entries")).startswith("10 /")
    assert (await _text(page, "memory")).endswith(("B", "KiB"))
    assert int((await _text(page, "total-operations")).replace(",", "")) >= 18
    ops = await _text(page, "ops-per-second")
    assert ops != "—"
    assert float(ops.replace(",", "")) > 0
    assert await page.is_hidden("#tenants-card")
    assert problems == []  # no CSP violation, no script error
    await page.close()


async def test_dashboard_shows_keys_per_tenant_to_a_key_holder(browser: Browser) -> None:
    shared = InMemoryCache(max_size=1000)
    tenant = TenantCache(shared, "acme", namespace="app", owns_cache=True)
    with LiveServer(app_for(tenant)) as live:
        live.call(tenant.set_many({f"order:{i}": i for i in range(7)}))
        page, problems = await _open(browser, f"{live.url}{PREFIX}/dashboard")
        await page.wait_for_function(
            "() => Number(document.body.dataset.polls) >= 1", timeout=POLL_TIMEOUT_MS
        )
        assert await page.is_hidden("#tenants-card")

        await page.fill("#api-key", "wrong-key")
        await page.click("#use-key")
        await page.wait_for_function(
            "() => document.getElementById('error').textContent.includes('401')",
            timeout=POLL_TIMEOUT_MS,
        )

        await page.fill("#api-key", KEY)
        await page.click("#use-key")
        await page.wait_for_selector("#tenants-card:not([hidden])", timeout=POLL_TIMEOUT_MS)
        rows = await page.locator("#tenants tr").all_inner_texts()
        assert [row.split() for row in rows] == [["acme", "7"]]
        assert await page.input_value("#api-key") == ""  # the key is not left on screen
        assert [p for p in problems if "401" not in p] == []
        await page.close()
