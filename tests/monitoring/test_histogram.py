"""The log-bucket histogram: exact bucket placement, bounded quantile error."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from stratacache.monitoring._histogram import (
    BUCKETS,
    MAX_EXPONENT,
    MIN_EXPONENT,
    PER_OCTAVE,
    UPPER_BOUNDS,
    Histogram,
    bucket_of,
)

STEP = 2 ** (1 / PER_OCTAVE)


def reference_bucket(seconds: float) -> int:
    """The first bucket whose inclusive upper edge holds ``seconds``, by linear search."""
    for index, edge in enumerate(UPPER_BOUNDS):
        if seconds <= edge:
            return index
    raise AssertionError("UPPER_BOUNDS ends with infinity")


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def test_edges_are_powers_of_two_to_the_quarter() -> None:
    assert len(UPPER_BOUNDS) == BUCKETS == (MAX_EXPONENT - MIN_EXPONENT) * PER_OCTAVE + 2
    assert UPPER_BOUNDS[-1] == math.inf
    for exponent in range(MIN_EXPONENT, MAX_EXPONENT + 1):
        assert UPPER_BOUNDS[(exponent - MIN_EXPONENT) * PER_OCTAVE] == 2.0**exponent
    for low, high in itertools.pairwise(UPPER_BOUNDS[:-1]):
        assert high / low == pytest.approx(STEP, rel=1e-12)


def test_bucket_of_matches_a_linear_search_everywhere() -> None:
    rng = random.Random(7)
    samples = [math.exp(rng.uniform(math.log(1e-9), math.log(1e4))) for _ in range(20_000)]
    for edge in UPPER_BOUNDS[:-1]:  # on, just below and just above every edge
        samples += [edge, math.nextafter(edge, 0.0), math.nextafter(edge, math.inf)]
    for seconds in samples:
        assert bucket_of(seconds) == reference_bucket(seconds), seconds


@pytest.mark.parametrize("odd", [0.0, -1.0, float("nan"), -math.inf])
def test_zero_negative_and_nan_durations_land_in_the_first_bucket(odd: float) -> None:
    assert bucket_of(odd) == 0
    histogram = Histogram()
    histogram.add(odd)
    assert (histogram.count, histogram.total, histogram.counts[0]) == (1, 0.0, 1)


def test_huge_durations_land_in_the_overflow_bucket() -> None:
    assert bucket_of(1e6) == BUCKETS - 1
    histogram = Histogram()
    histogram.add(1e6)
    assert histogram.quantile(0.5) == 1e6


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0])
def test_quantiles_stay_within_one_bucket_of_the_exact_value(fraction: float) -> None:
    rng = random.Random(fraction)
    durations = [math.exp(rng.gauss(math.log(2e-4), 1.5)) for _ in range(5_000)]
    histogram = Histogram()
    for seconds in durations:
        histogram.add(seconds)
    exact = nearest_rank(durations, fraction)
    estimate = histogram.quantile(fraction)
    assert bucket_of(estimate) == bucket_of(exact)
    assert 1 / STEP <= estimate / exact <= STEP


def test_an_empty_histogram_reads_zero_and_merging_adds() -> None:
    empty = Histogram()
    assert (empty.quantile(0.99), empty.mean, empty.count) == (0.0, 0.0, 0)
    first, second = Histogram(), Histogram()
    for seconds in (1e-3, 2e-3):
        first.add(seconds)
    second.add(1.0)
    first.merge(second)
    first.merge(empty)
    assert (first.count, first.low, first.high) == (3, 1e-3, 1.0)
    assert first.total == pytest.approx(1.003)
    assert first.quantile(1.0) == 1.0
    assert sum(first.counts) == 3


def test_cumulative_counts_at_chosen_edges() -> None:
    histogram = Histogram()
    for seconds in (2.0**-20, 2.0**-10, 0.5, 300.0):
        histogram.add(seconds)
    edges = (bucket_of(2.0**-20), bucket_of(2.0**-10), bucket_of(1.0))
    assert histogram.cumulative(edges) == [1, 2, 3]
