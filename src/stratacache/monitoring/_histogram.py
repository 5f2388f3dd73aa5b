"""Fixed-size log-bucket latency histograms: bounded memory, bounded error.

A histogram is 130 counters, whatever the number of samples, so a monitor holding a
few dozen of them for every interval of its retention window stays within a known
size under any load. Bucket edges are powers of ``2 ** (1/4)`` seconds from 2**-24 s
(60 ns) to 2**8 s (256 s): four buckets per octave. A quantile read back from a
histogram lies in the same bucket as the exact (nearest-rank) quantile of the
samples, so it is within a factor of ``2 ** (1/4)`` (19 %) of it, and usually within
``2 ** (1/8)`` (9 %): the estimate is the bucket's geometric midpoint, clamped to the
smallest and largest sample seen.

Edges are inclusive above, as Prometheus ``le`` buckets are: bucket ``i`` counts
samples in ``(UPPER_BOUNDS[i - 1], UPPER_BOUNDS[i]]``, bucket 0 counts ``[0,
UPPER_BOUNDS[0]]`` and the last bucket everything above 256 s. Every power of two in
range is an edge, so a Prometheus histogram exposing a subset of these edges has
exact counts.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

__all__ = [
    "BUCKETS",
    "MAX_EXPONENT",
    "MIN_EXPONENT",
    "PER_OCTAVE",
    "UPPER_BOUNDS",
    "Histogram",
    "bucket_of",
]

PER_OCTAVE = 4
MIN_EXPONENT = -24
MAX_EXPONENT = 8
BUCKETS = (MAX_EXPONENT - MIN_EXPONENT) * PER_OCTAVE + 2
"""130: one at or below 2**-24 s, 128 log buckets up to 256 s, one above."""

# The edges within one octave, as frexp mantissas: 1/2, 2**(-3/4), 2**(-1/2), 2**(-1/4).
# Every edge is one of these times a power of two, so comparing a duration's
# mantissa with them places it exactly, with no logarithm.
_STEPS = (0.5, 2.0**-0.75, 2.0**-0.5, 2.0**-0.25)

UPPER_BOUNDS: tuple[float, ...] = (
    *(
        math.ldexp(_STEPS[i % PER_OCTAVE], MIN_EXPONENT + 1 + i // PER_OCTAVE)
        for i in range(BUCKETS - 1)
    ),
    math.inf,
)
"""The inclusive upper edge of every bucket, in seconds (the last is infinity)."""

_LOWEST = UPPER_BOUNDS[0]
_HIGHEST = UPPER_BOUNDS[-2]
_TOP = BUCKETS - 1
_ZEROS = array("Q", [0]) * BUCKETS
_Q1, _Q2, _Q3 = _STEPS[1:]


def bucket_of(seconds: float, _frexp: Any = math.frexp) -> int:
    """The index of the bucket holding a duration of ``seconds``."""
    if not seconds > _LOWEST:  # negative, zero and NaN land here too
        return 0
    if seconds > _HIGHEST:
        return _TOP
    mantissa, exponent = _frexp(seconds)  # seconds = mantissa * 2**exponent, 0.5 <= m < 1
    index: int = (exponent - 1 - MIN_EXPONENT) * PER_OCTAVE  # the edge 2**(exponent - 1)
    if mantissa == 0.5:
        return index
    if mantissa <= _Q1:
        return index + 1
    if mantissa <= _Q2:
        return index + 2
    if mantissa <= _Q3:
        return index + 3
    return index + 4


def _midpoint(index: int) -> float:
    if index == 0:
        return _LOWEST
    return float(2.0 ** (MIN_EXPONENT + (index - 0.5) / PER_OCTAVE))


class Histogram:
    """Counts of durations per log bucket, with their count, sum, min and max.

    Not thread-safe on its own: the monitor holds its lock around every use.
    """

    __slots__ = ("count", "counts", "high", "low", "total")

    def __init__(self) -> None:
        self.counts = array("Q", _ZEROS)
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = 0.0

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, total={self.total:.6g}s)"

    def add(self, seconds: float) -> None:
        """Count one duration (negative durations count as zero)."""
        if not seconds > 0.0:  # negative, zero or NaN
            seconds = 0.0
        self.add_at(bucket_of(seconds), seconds)

    def add_at(self, index: int, seconds: float) -> None:
        """Count ``seconds`` (>= 0) whose bucket, ``bucket_of(seconds)``, is ``index``."""
        self.counts[index] += 1
        self.count += 1
        self.total += seconds
        if seconds < self.low:
            self.low = seconds
        if seconds > self.high:
            self.high = seconds

    def merge(self, other: Histogram) -> None:
        """Add every sample of ``other`` to this histogram."""
        if not other.count:
            return
        counts = self.counts
        for index, count in enumerate(other.counts):
            if count:
                counts[index] += count
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def quantile(self, fraction: float) -> float:
        """The ``fraction`` quantile in seconds (nearest rank, bucket-bounded); 0 if empty."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        index = _TOP
        for index, count in enumerate(self.counts):  # noqa: B007 - index is used below
            seen += count
            if seen >= rank:
                break
        if rank == self.count:
            return self.high  # the largest sample is known exactly
        estimate = self.high if index == _TOP else _midpoint(index)
        return min(max(estimate, self.low), self.high)

    @property
    def mean(self) -> float:
        """The mean of the samples in seconds; 0 if empty."""
        return self.total / self.count if self.count else 0.0

    def cumulative(self, edges: tuple[int, ...]) -> list[int]:
        """Counts at or below ``UPPER_BOUNDS[i]`` for each bucket index ``i`` in ``edges``."""
        result: list[int] = []
        running = 0
        start = 0
        for edge in edges:
            running += sum(self.counts[start : edge + 1])
            start = edge + 1
            result.append(running)
        return result
