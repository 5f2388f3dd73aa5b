"""``get_or_set``'s options, checked once, and the freshness verdict they imply.

The options (all keyword-only, all off by default)::

    tags=("user:5",)             labels for invalidate_tags
    stale_while_revalidate=30    seconds past the TTL a value is still served while one
                                 background load replaces it
    stale_if_error=300           seconds past the TTL a value is served if loading fails
    beta=1.0                     XFetch: recompute early, in the background, with a
                                 probability that rises as expiry nears (1.0 is the
                                 paper's choice; larger recomputes earlier)
    ttl_jitter=0.1               shorten each stored TTL by a random fraction up to this,
                                 so entries loaded together do not expire together
    lease=True                   across processes too, only one loader runs (a Redis lease,
                                 SET NX PX); True holds it for loader_timeout, else 30 s
                                 (a number of seconds sets it), and waiters wait that long
                                 at most before loading themselves
    loader_timeout=5             give up on an async loader after this many seconds

XFetch is Vattani, Chierichetti and Lowenstein, "Optimal Probabilistic Cache Stampede
Prevention" (VLDB 2015): recompute when ``now - delta * beta * ln(rand()) >= expiry``,
``delta`` being how long the last load took. A slow loader's entries are recomputed
earlier, a fast loader's barely before expiry. The draws (XFetch's and the jitter's)
come from the ``random`` module, so ``random.seed()`` makes a test repeatable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from ._keys import NO_TAGS, validate_tags
from ._stamps import Stamped
from .errors import ValidationError

__all__ = ["DEFAULT_LEASE", "OPTIONS", "LoadPolicy", "Verdict", "parse_policy", "verdict"]

OPTIONS: Final = (
    "tags",
    "stale_while_revalidate",
    "stale_if_error",
    "beta",
    "ttl_jitter",
    "lease",
    "loader_timeout",
)
DEFAULT_LEASE: Final = 30.0
"""Seconds a lease is held when ``lease=True`` and there is no ``loader_timeout``."""
MAX_WINDOW: Final = 365 * 24 * 3600.0


class Verdict(Enum):
    """What a stamped entry found by ``get_or_set`` calls for."""

    FRESH = "fresh"  # serve it
    EARLY = "early"  # serve it; XFetch drew an early recomputation in the background
    STALE = "stale"  # serve it (stale-while-revalidate); reload in the background
    EXPIRED = "expired"  # load now; serve it only if loading fails (stale-if-error)


@dataclass(frozen=True, slots=True)
class LoadPolicy:
    """How one ``get_or_set`` call loads and stores; the defaults are plain single-flight."""

    tags: frozenset[str] = NO_TAGS
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    beta: float = 0.0
    ttl_jitter: float = 0.0
    lease: float = 0.0  # seconds; 0 = no distributed lease
    loader_timeout: float | None = None

    @property
    def stamps(self) -> bool:
        """Whether entries need freshness stamps (any window, or XFetch)."""
        return bool(self.stale_while_revalidate or self.stale_if_error or self.beta)

    @property
    def grace(self) -> float:
        """Seconds an entry is kept past its TTL for the stale windows."""
        return max(self.stale_while_revalidate, self.stale_if_error)

    def stored_ttl(self, ttl: int) -> float:
        """The TTL this load's entry is fresh for: ``ttl`` less its jitter (0 stays 0)."""
        if not ttl or not self.ttl_jitter:
            return float(ttl)
        return ttl * (1.0 - self.ttl_jitter * random.random())


PLAIN: Final = LoadPolicy()


def parse_policy(options: Mapping[str, Any]) -> LoadPolicy:
    """Check ``get_or_set``'s keyword options; one :class:`ValidationError` says what is wrong.

    Call sites pass the same options over and over, so checked ones are remembered
    (by name, type and value: ``lease=True`` is not ``lease=1``); checking costs
    several microseconds, a hit on the cache well under one.
    """
    if not options:
        return PLAIN
    try:
        memo_key: Any = tuple((name, type(value), value) for name, value in options.items())
        known = _checked.get(memo_key)
    except TypeError:  # an unhashable value (tags as a list): check it every time
        memo_key = known = None
    if known is not None:
        return known
    policy = _parse(options)
    if memo_key is not None:
        if len(_checked) >= _MAX_CHECKED:
            _checked.clear()
        _checked[memo_key] = policy
    return policy


_MAX_CHECKED = 256
_checked: dict[Any, LoadPolicy] = {}


def _parse(options: Mapping[str, Any]) -> LoadPolicy:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValidationError(
            f"unknown get_or_set option(s) {', '.join(unknown)}; supported: {', '.join(OPTIONS)}",
            {"options": unknown},
        )
    loader_timeout = options.get("loader_timeout")
    if loader_timeout is not None:
        loader_timeout = _seconds("loader_timeout", loader_timeout, positive=True)
    return LoadPolicy(
        tags=validate_tags(options.get("tags", ())),
        stale_while_revalidate=_seconds(
            "stale_while_revalidate", options.get("stale_while_revalidate", 0)
        ),
        stale_if_error=_seconds("stale_if_error", options.get("stale_if_error", 0)),
        beta=_number("beta", options.get("beta", 0), upper=100.0),
        ttl_jitter=_number("ttl_jitter", options.get("ttl_jitter", 0), upper=1.0, open_top=True),
        lease=_lease(options.get("lease", False), loader_timeout),
        loader_timeout=loader_timeout,
    )


def verdict(entry: Stamped, now: float, policy: LoadPolicy) -> Verdict:
    """Judge a stamped entry at ``now`` under ``policy``."""
    fresh_until = entry.fresh_until
    if now < fresh_until:
        if policy.beta and entry.load_seconds > 0:
            # 1 - random() is in (0, 1]: the logarithm is finite and <= 0.
            head_start = -entry.load_seconds * policy.beta * math.log(1.0 - random.random())
            if now + head_start >= fresh_until:
                return Verdict.EARLY
        return Verdict.FRESH
    if now < fresh_until + policy.stale_while_revalidate:
        return Verdict.STALE
    return Verdict.EXPIRED


def _number(name: str, value: object, *, upper: float, open_top: bool = False) -> float:
    number = float(value) if type(value) is int or type(value) is float else math.nan
    if not math.isfinite(number):
        raise ValidationError(
            f"{name} must be a finite number, not {value!r:.40}", {"option": name}
        )
    if number < 0 or number > upper or (open_top and number == upper):
        bound = f"below {upper:g}" if open_top else f"at most {upper:g}"
        raise ValidationError(f"{name} must be from 0 to {bound}, got {number:g}", {"option": name})
    return number


def _seconds(name: str, value: object, *, positive: bool = False) -> float:
    seconds = _number(name, value, upper=MAX_WINDOW)
    if positive and seconds == 0:
        raise ValidationError(f"{name} must be more than 0 seconds", {"option": name})
    return seconds


def _lease(value: object, loader_timeout: float | None) -> float:
    if value is False or value is None:
        return 0.0
    if value is True:
        return loader_timeout if loader_timeout is not None else DEFAULT_LEASE
    seconds = _seconds("lease", value, positive=True)
    if loader_timeout is not None and seconds < loader_timeout:
        raise ValidationError(
            f"lease ({seconds:g} s) must be at least loader_timeout ({loader_timeout:g} s): "
            "a lease that ends before its loader lets another process load too",
            {"option": "lease"},
        )
    return seconds
