"""The HTTP rules of response caching, as plain functions on headers (no I/O, no loop).

Headers are ASGI-style ``[(name, value), ...]`` byte pairs; names are compared
lower-cased. :mod:`._etag` applies these rules to live requests; the tests call them
directly too. References: RFC 9110 (semantics, conditional requests) and RFC 9111
(caching).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import ValidationError

__all__ = [
    "NOT_MODIFIED_HEADERS",
    "content_etag",
    "header_name",
    "joined",
    "key_part",
    "lifetime_cap",
    "none_match",
    "not_modified",
    "parse_cache_control",
    "parse_vary",
    "refusal",
    "request_host",
    "values",
]

Headers = list[tuple[bytes, bytes]]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-z]+$")
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')
_DIRECTIVE = re.compile(r'\s*([^\s=,]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,]*))?\s*(?:,|$)')
# ``no-cache`` too: it asks for revalidation with the origin before every use, which
# a server-side cache cannot do, so storing such a response could only serve it stale.
_NOT_STORED_DIRECTIVES = ("private", "no-store", "no-cache")
_DEFAULT_PORTS = {"http": b":80", "https": b":443"}

NOT_MODIFIED_HEADERS = frozenset(
    (b"cache-control", b"content-location", b"date", b"etag", b"expires", b"last-modified", b"vary")
)
"""What a 304 carries: RFC 9110 §15.4.5's list, plus Last-Modified as Django sends it."""


def values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of the field ``name`` (lower-case), in order."""
    return [value for key, value in headers if key.lower() == name]


def joined(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str:
    """The field's values as one comma-separated list (RFC 9110 §5.3)."""
    return ",".join(value.decode("latin-1") for value in values(headers, name))


def header_name(name: object) -> str:
    """Validate a header name given in configuration; returns it lower-cased."""
    if type(name) is not str or not _TOKEN.match(name.lower()):
        raise ValidationError(f"not an HTTP header name: {name!r}")
    return name.lower()


def key_part(value: bytes) -> bytes:
    """Length-prefix one component of a key, so distinct tuples never hash alike."""
    return len(value).to_bytes(8, "big") + value


def parse_cache_control(value: str) -> dict[str, list[str | None]]:
    """``Cache-Control`` directives by lower-cased name, each with its argument(s)."""
    directives: dict[str, list[str | None]] = {}
    for match in _DIRECTIVE.finditer(value):
        name, argument = match.group(1).lower(), match.group(2)
        if argument is not None:
            argument = argument.strip()
            if len(argument) >= 2 and argument[0] == argument[-1] == '"':
                argument = argument[1:-1]
        directives.setdefault(name, []).append(argument)
    return directives


def _seconds(arguments: list[str | None]) -> int:
    """The smallest delta-seconds given; an invalid one counts as 0 (RFC 9111 §4.2.1)."""
    return min(int(a) if a is not None and a.isdigit() else 0 for a in arguments)


def _http_date(value: bytes) -> float | None:
    try:
        return parsedate_to_datetime(value.decode("latin-1")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_vary(headers: Headers) -> list[str] | None:
    """The sorted, lower-cased field names in ``Vary``; ``None`` for ``*`` or garbage."""
    names: set[str] = set()
    for part in joined(headers, b"vary").split(","):
        name = part.strip().lower()
        if name == "*" or (name and not _TOKEN.match(name)):
            return None
        if name:
            names.add(name)
    return sorted(names)


def lifetime_cap(headers: Headers, now: float) -> int | None:
    """The response's own lifetime limit in seconds, or ``None`` if it sets none.

    ``s-maxage`` wins (this is a shared cache), then ``max-age``, then ``Expires``
    (measured from the response's ``Date`` if it has one, else from ``now``, a
    wall-clock timestamp). An invalid value counts as 0: already stale.
    """
    directives = parse_cache_control(joined(headers, b"cache-control"))
    for name in ("s-maxage", "max-age"):
        if name in directives:
            return _seconds(directives[name])
    expires = values(headers, b"expires")
    if not expires:
        return None
    deadline = _http_date(expires[0])
    if deadline is None:
        return 0
    dates = values(headers, b"date")
    origin_now = _http_date(dates[0]) if dates else None
    return max(0, int(deadline - (now if origin_now is None else origin_now)))


def refusal(status: int, headers: Headers, max_body_bytes: int) -> str | None:
    """Why a response must not be stored, or ``None`` if it may be (its lifetime aside).

    Only ``200`` is stored, as Django's cache middleware does: ``204`` has no body to
    tag, ``206`` is a fragment of one, ``203`` a proxy's transformation, and the other
    2xx answer requests that are not plain reads.
    """
    if status != 200:
        return f"status {status}"
    if values(headers, b"set-cookie"):
        return "Set-Cookie"
    cache_control = joined(headers, b"cache-control")
    directives = parse_cache_control(cache_control)
    for name in _NOT_STORED_DIRECTIVES:
        if name in directives:
            return f"Cache-Control: {name}"
    if not cache_control and "no-cache" in joined(headers, b"pragma").lower():
        return "Pragma: no-cache"
    if parse_vary(headers) is None:
        return "Vary: *"
    if joined(headers, b"content-type").lower().startswith("text/event-stream"):
        return "an event stream"
    lengths = values(headers, b"content-length")
    if lengths and lengths[0].isdigit() and int(lengths[0]) > max_body_bytes:
        return "a body larger than max_body_bytes"
    return None


def content_etag(headers: Headers, body: bytes) -> str:
    """A strong ETag: sha256 of the body and of the fields that change its meaning.

    Content-Type and Content-Encoding are hashed too, so the same bytes served as
    two representations (gzip and identity, say) never share a strong validator.
    """
    digest = hashlib.sha256()
    for name in (b"content-type", b"content-encoding"):
        digest.update(key_part(b",".join(values(headers, name))))
    digest.update(body)
    return f'"{digest.hexdigest()}"'


def none_match(request_headers: Headers, etag: str) -> bool | None:
    """Evaluate ``If-None-Match`` (weak comparison); ``None`` if the request has none.

    ``*`` matches any current representation; otherwise the field is a list of
    entity tags (commas may occur inside the quotes) and ``W/"x"`` matches ``"x"``.
    """
    found = values(request_headers, b"if-none-match")
    if not found:
        return None
    field = ",".join(v.decode("latin-1") for v in found).strip()
    if field == "*":
        return True
    opaque = etag[2:] if etag.startswith("W/") else etag
    return opaque in _ENTITY_TAG.findall(field)


def not_modified(request_headers: Headers, stored_headers: Headers, etag: str) -> bool:
    """True if a GET or HEAD with these headers gets a 304 (RFC 9110 §13.2.2).

    ``If-None-Match`` decides when present; only without it is ``If-Modified-Since``
    compared with the response's ``Last-Modified``.
    """
    matched = none_match(request_headers, etag)
    if matched is not None:
        return matched
    since = values(request_headers, b"if-modified-since")
    modified = values(stored_headers, b"last-modified")
    if len(since) != 1 or not modified:
        return False
    since_at, modified_at = _http_date(since[0]), _http_date(modified[0])
    return since_at is not None and modified_at is not None and modified_at <= since_at


def request_host(scope: Mapping[str, Any], headers: Headers) -> bytes | None:
    """The host a request addressed, normalized; ``None`` if ambiguous.

    Lower-cased (host names are case-insensitive) without the scheme's default port.
    Taken from ``Host`` — what Starlette builds ``request.url`` from — else from the
    ASGI ``server``. Several ``Host`` fields make RFC 9112 §3.2 answer 400; such a
    request is never given a key.
    """
    hosts = values(headers, b"host")
    if len(hosts) > 1:
        return None
    if hosts:
        host = hosts[0].strip().lower()
    else:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}".encode() if server else b""
    port = _DEFAULT_PORTS.get(scope.get("scheme", "http"), b"")
    if port and host.endswith(port):
        host = host[: -len(port)]
    return host
