"""The circuit breaker, and RedisCache's fail-safe behaviour when Redis is unreachable."""

from __future__ import annotations

import logging
import socket

import pytest

from stratacache import InfrastructureError, RedisCache, ValidationError
from stratacache._resilience import CircuitBreaker
from stratacache.testing import FakeClock


def test_the_breaker_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=FakeClock())
    breaker.failure()
    breaker.failure()
    breaker.success()  # a success resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert str(breaker.state) == "open"
    assert not breaker.allow()


def test_one_probe_per_reset_timeout_and_recovery() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1.0, clock=clock)
    breaker.failure()
    clock.advance(0.99)
    assert not breaker.allow()
    clock.advance(0.01)
    assert breaker.allow()  # the probe
    assert str(breaker.state) == "half_open"
    assert not breaker.allow()  # only one probe at a time
    breaker.failure()  # the probe failed: open again, for another second
    assert str(breaker.state) == "open"
    clock.advance(1.0)
    assert breaker.allow()
    breaker.success()
    assert str(breaker.state) == "closed"
    assert breaker.allow()
    assert breaker.opened == 2


def test_probes_are_spaced_from_their_start_not_their_failure() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1.0, clock=clock)
    breaker.failure()
    clock.advance(1.0)
    assert breaker.allow()  # a probe starts ...
    clock.advance(0.25)
    breaker.failure()  # ... and times out 0.25 s later
    clock.advance(0.74)
    assert not breaker.allow()
    clock.advance(0.01)
    assert breaker.allow()  # one second after the previous probe started


def test_a_probe_that_never_reports_is_replaced() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1.0, clock=clock)
    breaker.failure()
    clock.advance(1.0)
    assert breaker.allow()  # a probe whose caller is then cancelled
    clock.advance(0.5)
    assert not breaker.allow()
    clock.advance(0.5)
    assert breaker.allow()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_redis_degrades_to_misses_counted_by_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    cache = RedisCache(f"redis://127.0.0.1:{_closed_port()}/0", prefix="t:", clock=clock)
    async with cache:
        assert await cache.connect() is False
        with caplog.at_level(logging.WARNING, logger="stratacache"):
            await cache.set("k", {"v": 1})
            assert await cache.get("k", "default") == "default"
            assert await cache.delete("k") is False
            assert await cache.get_many(["a", "b"]) == {}
        stats = cache.get_stats()
        assert stats["redis_status"] == "disconnected"
        assert stats["circuit"] == "open"
        # async with and connect() pinged, set failed: the breaker opened; the rest
        # were refused without touching the network.
        assert stats["errors_by_class"]["ConnectionError"] == 3
        assert stats["errors_by_class"]["CircuitOpen"] == 3
        assert (await cache.get_cache_stats())["redis"]["status"] == "disconnected"
        assert any("serving without Redis" in r.getMessage() for r in caplog.records)
        with pytest.raises(InfrastructureError):
            await cache.incr("n")  # no count would be right: incr always raises
        with pytest.raises(ValidationError):
            await cache.get("")  # argument errors are never swallowed


async def test_a_strict_cache_raises_infrastructure_error() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{_closed_port()}/0", prefix="t:", strict=True)
    try:
        with pytest.raises(InfrastructureError, match="ConnectionError") as raised:
            await cache.connect()
        assert raised.value.context["error_class"] == "ConnectionError"
        with pytest.raises(InfrastructureError):
            await cache.get("k")
    finally:
        await cache.aclose()


@pytest.mark.redis
async def test_the_cache_recovers_once_the_probe_succeeds(
    redis_url: str, unique_prefix: str
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1.0, clock=clock)
    async with RedisCache(redis_url, prefix=unique_prefix, breaker=breaker) as cache:
        breaker.failure()  # as if Redis had just failed
        assert await cache.get("k", "refused") == "refused"
        clock.advance(1.0)
        await cache.set("k", "v")  # the probe succeeds and closes the circuit
        assert await cache.get("k") == "v"
        assert cache.get_stats()["circuit"] == "closed"
        await cache.clear()


def test_any_exception_raised_inside_redis_py_is_an_infrastructure_failure() -> None:
    from stratacache._redis_errors import translate

    inside: dict[str, object] = {"__name__": "redis.asyncio.connection"}
    exec("def send():\n    None.writelines([])\n", inside)  # as in a Cluster failover
    try:
        inside["send"]()  # type: ignore[operator]
    except AttributeError as exc:
        mapped = translate(exc, "SET")
    assert isinstance(mapped, InfrastructureError)
    assert mapped.context["error_class"] == "AttributeError"

    with pytest.raises(AttributeError) as ours:
        None.writelines([])  # type: ignore[attr-defined]  # our own bug: never hidden
    assert translate(ours.value, "SET") is ours.value
