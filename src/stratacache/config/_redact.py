"""Redis URLs fit to print: the password (in userinfo or query) replaced by ``***``."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

__all__ = ["redact_text", "redact_url"]

_MASK = "***"
_SECRET_PARAMS = frozenset({"password", "sentinel_password"})


def redact_url(url: str) -> str:
    """``redis://user:secret@host:6379/0`` -> ``redis://user:***@host:6379/0``.

    A lone userinfo (``redis://secret@host``) is masked too: people write the
    password there. A URL that does not parse is masked entirely after its scheme,
    rather than risk printing what it holds.
    """
    if "://" not in url:  # not a URL we can parse: keep it only if it cannot hold a secret
        return _MASK if "@" in url or "password" in url.lower() else url
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"{url.partition('://')[0]}://{_MASK}"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{_MASK}@{host}" if colon else f"{_MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in _SECRET_PARAMS for name, _ in pairs):
            query = urlencode(
                [(n, _MASK if n.lower() in _SECRET_PARAMS else v) for n, v in pairs], safe="*"
            )
    # Not urlunsplit: it drops the empty authority of unix:///path URLs.
    text = f"{parts.scheme}://{netloc}{parts.path}"
    return text + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def redact_text(text: str, url: str) -> str:
    """``text`` (an error message, say) with ``url`` and its secrets masked.

    Secrets shorter than 4 characters are left alone: masking every ``a`` in a
    message would garble it, and such a password protects nothing anyway.
    """
    text = text.replace(url, redact_url(url))
    for secret in _secrets_of(url):
        if len(secret) >= 4:
            text = text.replace(secret, _MASK)
    return text


def _secrets_of(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    secrets = [v for n, v in parse_qsl(parts.query) if n.lower() in _SECRET_PARAMS]
    userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
    user, colon, password = userinfo.partition(":")
    secret = password if colon else user
    secrets += [secret, unquote(secret)]  # as written and as sent
    return [secret for secret in secrets if secret]
