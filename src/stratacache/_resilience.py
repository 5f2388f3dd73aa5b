"""A circuit breaker: stop calling a failing Redis, probe it, and come back by itself.

Pure decisions over an injected clock — no I/O, no tasks — so every transition is
tested without a server or a sleep. The caller asks :meth:`allow` before a call
and reports the outcome with :meth:`success` or :meth:`failure`.

States: *closed* (calls flow) → after ``failure_threshold`` consecutive failures,
*open* (calls are refused at once) → after ``reset_timeout`` seconds, *half-open*
(exactly one probe call is let through; others are still refused) → the probe's
success closes the circuit, its failure opens it again until ``reset_timeout``
after the probe *started*. A probe that never
reports (its caller was cancelled) is replaced after another ``reset_timeout``.
"""

from __future__ import annotations

from typing import Literal

from ._clock import Clock, monotonic

__all__ = ["CircuitBreaker"]

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Opens after consecutive failures; one half-open probe per ``reset_timeout``."""

    def __init__(
        self, *, failure_threshold: int = 3, reset_timeout: float = 1.0, clock: Clock = monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.state: State = "closed"
        self.failures = 0
        self.opened = 0  # how many times the circuit has opened
        self._clock = clock
        self._since = 0.0  # when the circuit opened, or when the current probe started

    def allow(self) -> bool:
        """True if a call may go to the server now."""
        if self.state == "closed":
            return True
        now = self._clock()
        if now - self._since < self.reset_timeout:
            return False
        self.state, self._since = "half_open", now  # let one probe through
        return True

    def success(self) -> None:
        self.state, self.failures = "closed", 0

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half_open":
            # Probes are spaced from their *start*: a probe that took its whole
            # timeout to fail must not delay the next one by that much more.
            self.state = "open"
            self.opened += 1
        elif self.state == "closed" and self.failures >= self.failure_threshold:
            self.state, self._since = "open", self._clock()
            self.opened += 1
