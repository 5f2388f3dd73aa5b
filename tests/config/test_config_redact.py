"""Redis URLs printed in logs and errors never carry their password."""

from __future__ import annotations

import pytest

from stratacache.config import redact_url


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://user:secret@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:secret@host:6379", "redis://:***@host:6379"),
        ("rediss://secret@host", "rediss://***@host"),
        ("redis://u:p%40ss@host/1", "redis://u:***@host/1"),
        ("redis://u:a@b@host/1", "redis://u:***@host/1"),
        ("unix:///tmp/redis.sock?db=2&password=secret", "unix:///tmp/redis.sock?db=2&password=***"),
        ("redis://h?password=x#frag", "redis://h?password=***#frag"),
        ("localhost:6379", "localhost:6379"),  # not a URL, but nothing to hide
        ("secret@localhost:6379", "***"),
        (
            "redis+sentinel://:secret@h1:26379,h2:26379/mymaster",
            "redis+sentinel://:***@h1:26379,h2:26379/mymaster",
        ),
    ],
)
def test_passwords_are_masked(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_an_unparseable_url_is_masked_whole() -> None:
    assert redact_url("redis://:secret@[::1") == "redis://***"
