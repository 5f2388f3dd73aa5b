"""The live dashboard: one self-contained HTML page (no CDN, no build step).

The page (``_static/dashboard.html``) polls ``status`` and ``metrics`` next to its
own URL every 2 seconds with ``fetch`` and shows hit rate, operations per second
(from the growth of the operation count between polls), latency p50/p99, memory,
Redis status and, when the cache reports them to an authenticated caller, keys per
tenant. It writes every figure with ``textContent``, never as HTML, and its inline
script and style run under a per-response CSP nonce, so nothing a cache reports
(tenant ids, say) can run as code in the page.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["render_dashboard"]

_NONCE = "{{nonce}}"


@cache
def _template() -> str:
    return (
        resources.files("stratacache.web")
        .joinpath("_static")
        .joinpath("dashboard.html")
        .read_text("utf-8")
    )


def render_dashboard(nonce: str) -> str:
    """The page, with ``nonce`` on its inline script and style (for the CSP)."""
    if not nonce.replace("-", "").replace("_", "").isalnum():
        raise ValueError("the nonce must be URL-safe base64")
    return _template().replace(_NONCE, nonce)
