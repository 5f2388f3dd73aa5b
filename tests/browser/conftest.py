"""Headless Chromium for the dashboard tests, through the Python ``playwright`` package.

The browser is the system's Chromium (``/usr/bin/chromium`` from Debian's
``chromium`` package, or ``CHROMIUM_PATH``), not one Playwright downloads: the
machines running these tests may be offline. Without Playwright or Chromium the
tests are skipped with the reason on a laptop and *fail* when ``CI=true``, as the
Redis tests do (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from _support import skip_or_fail

_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The Chromium executable, or skip (fail in CI) saying how to install it."""
    configured = os.environ.get("CHROMIUM_PATH")
    candidates = [configured] if configured else [*_CANDIDATES, shutil.which("chromium")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return skip_or_fail(
        "Chromium is not installed (looked for "
        f"{configured or ', '.join(_CANDIDATES)}); install it with "
        "'apt-get install -y chromium' or set CHROMIUM_PATH"
    )


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    """A headless Chromium driven by Playwright."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install playwright)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            yield launched
        finally:
            await launched.close()
