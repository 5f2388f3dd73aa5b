"""Where stratacache reads the time.

Every cache takes a ``clock``: a callable returning seconds on a monotonic scale.
TTL deadlines are computed from it, so tests advance a fake clock instead of
sleeping (see :class:`stratacache.testing.FakeClock`), and a wall-clock jump
(NTP, DST) never expires or resurrects entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""A callable returning the current time in seconds, never going backwards."""

monotonic: Clock = time.monotonic
