"""API-key authentication for the management API.

**Where keys come from.** ``api_keys`` when given (an empty list means none), else
the environment: ``API_KEY`` plus the comma-separated ``ADDITIONAL_API_KEYS``
(blanks ignored). Only SHA-256 digests of the keys are kept.

**How they are sent.** ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The
raw header bytes are used (no decoding can fail), surrounding whitespace is
ignored, and an empty value counts as not sent. Other ``Authorization`` schemes
(``Basic`` from a proxy, say) are not ours and are ignored. Several *different*
keys in one request (repeated headers, or both headers) are refused: which one
would be meant?

**How they are checked.** The candidate's digest is compared with every
configured key's digest with :func:`hmac.compare_digest`, with no early exit, so
the time taken says nothing about which key matched or how long keys are.

**What each endpoint asks.**

=========  =================================================================
required   a valid key, else 401 (``WWW-Authenticate: Bearer``). With no key
           configured: 403 saying how to configure one — unless ``dev_mode``,
           which opens these endpoints (for a laptop, never production).
optional   works without a key; a key that is sent must be valid (401
           otherwise), so a client with a wrong key learns it at once rather
           than when it first calls a required endpoint. With no key
           configured, keys sent are ignored.
=========  =================================================================

Nothing here raises anything but :class:`~fastapi.HTTPException` 401/403, whatever
the headers hold (8 KiB of bytes, non-ASCII, ``Bearer`` alone, duplicates).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from enum import Enum
from typing import Final

from fastapi import HTTPException, Request

from ..errors import ConfigurationError

__all__ = ["API_KEY_HEADER", "ApiKeyAuth", "Verdict"]

logger = logging.getLogger("stratacache")

API_KEY_HEADER: Final = "X-API-Key"
_AUTHORIZATION = b"authorization"
_X_API_KEY = API_KEY_HEADER.lower().encode()
_BEARER = b"bearer"

_HOW = (
    "send the key as 'Authorization: Bearer <key>' or as 'X-API-Key: <key>'; keys "
    "are configured with API_KEY and ADDITIONAL_API_KEYS (comma-separated)"
)
_MISSING = "This endpoint needs an API key: " + _HOW
_INVALID = "The API key is not valid: " + _HOW
_AMBIGUOUS = "Several different API keys were sent; send exactly one: " + _HOW
_UNCONFIGURED = (
    "No API key is configured, so this endpoint is disabled. Set API_KEY (and "
    "optionally ADDITIONAL_API_KEYS, comma-separated) in the environment, or pass "
    "api_keys=[...] to management_router() / create_app(). For local development "
    "only, dev_mode=True opens it without a key."
)


class Verdict(Enum):
    """What a request's credentials amount to."""

    NONE = "none"  # no credentials of ours were sent
    VALID = "valid"
    INVALID = "invalid"
    AMBIGUOUS = "ambiguous"


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class ApiKeyAuth:
    """Checks requests against a fixed set of API keys (see the module docstring).

    Args:
        keys: the accepted keys (``str``, compared as their UTF-8 bytes).
        dev_mode: with no key configured, let requests reach required endpoints.
    """

    def __init__(self, keys: Iterable[str], *, dev_mode: bool = False) -> None:
        digests = []
        for key in keys:
            if not isinstance(key, str):
                raise ConfigurationError(f"API keys must be str, not {type(key).__name__}")
            stripped = key.strip()
            if stripped:
                digests.append(_digest(stripped.encode("utf-8", "surrogatepass")))
        self._digests = tuple(dict.fromkeys(digests))
        self.dev_mode = bool(dev_mode)

    def __repr__(self) -> str:  # never the keys
        return f"ApiKeyAuth({len(self._digests)} key(s), dev_mode={self.dev_mode})"

    @property
    def configured(self) -> bool:
        """Whether any key is configured."""
        return bool(self._digests)

    def verdict(self, request: Request) -> Verdict:
        """Judge the request's credentials (constant time over the configured keys)."""
        candidates = _credentials(request.scope.get("headers") or ())
        if not candidates:
            return Verdict.NONE
        if len(candidates) > 1:
            return Verdict.AMBIGUOUS
        candidate = _digest(candidates.pop())
        matched = False
        for digest in self._digests:  # every key, no early exit
            matched |= hmac.compare_digest(candidate, digest)
        return Verdict.VALID if matched else Verdict.INVALID

    def authenticated(self, request: Request) -> bool:
        """True when the request carries a valid key (never raises)."""
        return self.configured and self.verdict(request) is Verdict.VALID

    # -- FastAPI dependencies ------------------------------------------------------------

    async def require(self, request: Request) -> None:
        """A valid key, or 401; 403 when no key is configured (unless dev mode)."""
        if not self.configured:
            if self.dev_mode:
                return
            raise HTTPException(403, detail={"message": _UNCONFIGURED})
        verdict = self.verdict(request)
        if verdict is not Verdict.VALID:
            raise _unauthorized(verdict, request)

    async def optional(self, request: Request) -> None:
        """No key, or a valid one; 401 for a wrong key (when keys are configured)."""
        if not self.configured:
            return
        verdict = self.verdict(request)
        if verdict is not Verdict.NONE and verdict is not Verdict.VALID:
            raise _unauthorized(verdict, request)


def _credentials(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """The distinct non-empty keys the raw headers carry (Bearer tokens, X-API-Key)."""
    found: set[bytes] = set()
    for name, value in headers:
        lowered = bytes(name).lower()
        if lowered == _X_API_KEY:
            token = bytes(value).strip()
        elif lowered == _AUTHORIZATION:
            parts = bytes(value).split(None, 1)
            if not parts or parts[0].lower() != _BEARER:
                continue  # Basic, Digest ...: another layer's credentials
            token = parts[1].strip() if len(parts) > 1 else b""
        else:
            continue
        if token:
            found.add(token)
    return found


def _unauthorized(verdict: Verdict, request: Request) -> HTTPException:
    if verdict is Verdict.NONE:
        message, challenge = _MISSING, "Bearer"
    else:
        message = _AMBIGUOUS if verdict is Verdict.AMBIGUOUS else _INVALID
        challenge = 'Bearer error="invalid_token"'
        client = request.client.host if request.client else "unknown"
        logger.info(
            "stratacache: management API refused a request (%s API key) from %s to %r",
            verdict.value,
            client,
            request.url.path,
        )
    return HTTPException(401, detail={"message": message}, headers={"WWW-Authenticate": challenge})
