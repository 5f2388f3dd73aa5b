"""CacheFactory: building, connecting, falling back to memory, and failing loudly."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from stratacache import (
    CacheInterface,
    ClientOptions,
    ConfigurationError,
    GenericRedisCache,
    InfrastructureError,
    InMemoryCache,
    ValidationError,
)
from stratacache.caches._ai import AIResponseCache
from stratacache.config import CacheFactory, NullCache, get_preset

ROOMY = ClientOptions(connect_timeout=2.0, operation_timeout=2.0)
FALLBACK_BOUND = 5.0  # seconds: the promise, measured with room for a loaded machine
UNRESOLVABLE = "redis://no-such-host.invalid:6379/0"


@pytest.fixture
def closed_port_url() -> str:
    """A URL to a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://:hunter2-secret@127.0.0.1:{port}/0"


class SilentServer:
    """Accepts connections and never answers: a hung Redis."""

    def __init__(self) -> None:
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(1024):  # until the client hangs up
                pass
        finally:
            writer.close()


@pytest.fixture
async def silent_server() -> AsyncIterator[SilentServer]:
    silent = SilentServer()
    server = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    silent.url = f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    yield silent
    server.close()
    await server.wait_closed()


@pytest.fixture
async def built() -> AsyncIterator[list[CacheInterface]]:
    """Caches a test built; closed when it ends."""
    caches: list[CacheInterface] = []
    yield caches
    for cache in caches:
        await cache.aclose()


async def test_an_unreachable_port_falls_back_to_memory(
    closed_port_url: str, caplog: pytest.LogCaptureFixture, built: list[CacheInterface]
) -> None:
    caplog.set_level(logging.WARNING, logger="stratacache")
    started = time.perf_counter()
    cache = await CacheFactory().create_cache_from_config(
        {"redis_url": closed_port_url, "default_ttl": 123, "memory_cache_size": 17}
    )
    built.append(cache)
    assert time.perf_counter() - started < FALLBACK_BOUND
    assert type(cache) is InMemoryCache
    assert (cache.default_ttl, cache.max_size) == (123, 17)
    await cache.set("k", "v")
    assert await cache.get("k") == "v"
    assert not _listeners(), "the abandoned cache's channel task is still running"
    fallback = [r for r in caplog.records if "in-memory cache" in r.getMessage()]
    assert fallback
    assert fallback[0].levelno == logging.WARNING
    assert "hunter2" not in caplog.text


async def test_an_unresolvable_host_falls_back_within_the_bound(
    built: list[CacheInterface],
) -> None:
    started = time.perf_counter()
    cache = await CacheFactory().for_web_app(UNRESOLVABLE, default_ttl=77, memory_cache_size=9)
    built.append(cache)
    assert time.perf_counter() - started < FALLBACK_BOUND
    assert type(cache) is InMemoryCache
    assert (cache.default_ttl, cache.max_size) == (77, 9)


async def test_the_ai_factory_falls_back_to_memory_as_well(
    closed_port_url: str, built: list[CacheInterface]
) -> None:
    cache = await CacheFactory().for_ai_app(closed_port_url, default_ttl=50, memory_cache_size=5)
    built.append(cache)
    assert type(cache) is InMemoryCache
    assert (cache.default_ttl, cache.max_size) == (50, 5)


async def test_the_factory_bounds_a_hung_server_itself(
    silent_server: SilentServer, built: list[CacheInterface]
) -> None:
    # The client would wait 10 s for the PING: the factory's own timeout decides.
    patient = ClientOptions(connect_timeout=10.0, operation_timeout=10.0, retries=0)
    started = time.perf_counter()
    cache = await CacheFactory(connect_timeout=0.5).for_web_app(
        silent_server.url, options=patient, default_ttl=33, memory_cache_size=3
    )
    built.append(cache)
    assert time.perf_counter() - started < FALLBACK_BOUND
    assert type(cache) is InMemoryCache
    assert (cache.default_ttl, cache.max_size) == (33, 3)


async def test_a_hung_server_in_strict_mode_raises_with_the_reason(
    silent_server: SilentServer,
) -> None:
    patient = ClientOptions(connect_timeout=10.0, operation_timeout=10.0, retries=0)
    with pytest.raises(InfrastructureError, match=r"no answer within 0\.5 s"):
        await CacheFactory(connect_timeout=0.5).for_web_app(
            silent_server.url, options=patient, fail_on_connection_error=True
        )


@pytest.mark.parametrize("where", ["closed port", "unresolvable host"])
async def test_strict_mode_raises_without_revealing_the_password(
    where: str, closed_port_url: str
) -> None:
    url = closed_port_url if where == "closed port" else UNRESOLVABLE.replace("//", "//u:pw-xyz@")
    started = time.perf_counter()
    with pytest.raises(InfrastructureError) as raised:
        await CacheFactory().create_cache_from_config(
            {"redis_url": url, "fail_on_connection_error": True}
        )
    assert time.perf_counter() - started < FALLBACK_BOUND
    message = raised.value.message
    assert message.startswith("Redis connection failed")
    assert "hunter2" not in message
    assert "pw-xyz" not in message
    assert "hunter2" not in repr(raised.value.context)
    assert "pw-xyz" not in repr(raised.value.context)
    host = "127.0.0.1" if where == "closed port" else "no-such-host.invalid"
    assert host in message
    assert ":***@" in message
    assert "fail_on_connection_error=False" in message  # says what to do


def test_the_connect_timeout_is_checked() -> None:
    for bad in (0, -1, "3", 61):
        with pytest.raises(ConfigurationError, match="connect_timeout"):
            CacheFactory(connect_timeout=bad)  # type: ignore[arg-type]


async def test_for_testing_can_skip_redis_entirely(closed_port_url: str) -> None:
    started = time.perf_counter()
    cache = await CacheFactory().for_testing(closed_port_url, use_memory_cache=True)
    assert time.perf_counter() - started < 0.2  # never tried the closed port
    assert type(cache) is InMemoryCache
    assert (cache.default_ttl, cache.max_size) == (60, 50)
    with pytest.raises(ConfigurationError, match="use_memory_cache must be true or false"):
        await CacheFactory().for_testing(use_memory_cache="yes")  # type: ignore[arg-type]
    custom = await CacheFactory().for_testing(
        use_memory_cache=True, default_ttl=5, memory_cache_size=7
    )
    assert (custom.default_ttl, custom.max_size) == (5, 7)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["minimal", "simple", "development", "production"])
async def test_a_preset_without_redis_is_the_embedded_memory_cache(name: str) -> None:
    preset = get_preset(name)
    for cache in (
        await CacheFactory().from_preset(name),
        await CacheFactory().from_env({"CACHE_PRESET": name}),
    ):
        assert type(cache) is InMemoryCache
        assert (cache.default_ttl, cache.max_size) == (
            preset.default_ttl,
            preset.memory_cache_size,
        )


async def test_from_env_reads_os_environ_when_given_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CACHE_REDIS_URL", "REDIS_URL", "CACHE_CUSTOM_CONFIG", "ENABLE_AI_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CACHE_PRESET", "production")
    cache = await CacheFactory().from_env()
    assert type(cache) is InMemoryCache
    assert (cache.default_ttl, cache.max_size) == (7200, 500)


async def test_custom_config_overrides_reach_the_cache() -> None:
    environ = {
        "CACHE_PRESET": "simple",
        "CACHE_CUSTOM_CONFIG": '{"default_ttl": 99, "memory_cache_size": 12}',
    }
    cache = await CacheFactory().from_env(environ)
    assert (cache.default_ttl, cache.max_size) == (99, 12)  # type: ignore[attr-defined]


async def test_bad_custom_config_values_are_validation_errors() -> None:
    environ = {"CACHE_CUSTOM_CONFIG": '{"default_ttl": -5, "memory_cache_size": 0}'}
    with pytest.raises(ValidationError) as raised:
        await CacheFactory().from_env(environ)
    assert "must be non-negative" in str(raised.value)
    assert "must be a positive integer" in str(raised.value)


async def test_broken_custom_config_json_fails_from_env() -> None:
    with pytest.raises(ConfigurationError, match="CACHE_CUSTOM_CONFIG is not valid JSON"):
        await CacheFactory().from_env({"CACHE_CUSTOM_CONFIG": '{"default_ttl": }'})


async def test_an_unknown_preset_fails_from_env_and_from_preset() -> None:
    with pytest.raises(ConfigurationError, match="valid presets: disabled, minimal"):
        await CacheFactory().from_env({"CACHE_PRESET": "fast"})
    with pytest.raises(ConfigurationError, match="valid presets: disabled, minimal"):
        await CacheFactory().from_preset("fast")


async def test_the_disabled_preset_caches_nothing(closed_port_url: str) -> None:
    for cache in (
        await CacheFactory().from_preset("disabled", closed_port_url),
        await CacheFactory().from_env({"CACHE_PRESET": "disabled"}),
    ):
        assert type(cache) is NullCache
        assert cache.default_ttl == 300
        await cache.set("k", "v")
        assert await cache.get("k") is None


async def test_the_disabled_preset_still_refuses_bad_overrides() -> None:
    with pytest.raises(ValidationError, match="unknown setting 'default_tll'"):
        await CacheFactory().from_preset("disabled", default_tll=5)


# -- against a real Redis ------------------------------------------------------------


@pytest.mark.redis
async def test_for_web_app_connects_a_two_tier_cache(
    redis_url: str, unique_prefix: str, built: list[CacheInterface]
) -> None:
    monitor = object()
    cache = await CacheFactory().for_web_app(
        redis_url,
        namespace=unique_prefix,
        options=ROOMY,
        performance_monitor=monitor,
        l1_cache_size=33,
    )
    built.append(cache)
    assert type(cache) is GenericRedisCache
    assert (cache.default_ttl, cache.memory_cache_size) == (1800, 33)
    assert cache.performance_monitor is monitor
    assert cache.get_stats()["redis_status"] == "connected"
    await cache.set("k", {"a": 1})
    assert await cache.get("k") == {"a": 1}


@pytest.mark.redis
async def test_for_ai_app_connects_an_ai_cache(
    redis_url: str, unique_prefix: str, built: list[CacheInterface]
) -> None:
    cache = await CacheFactory().for_ai_app(
        redis_url, namespace=unique_prefix, options=ROOMY, operation_ttls={"qa": 60}
    )
    built.append(cache)
    assert isinstance(cache, AIResponseCache)
    assert cache.text_hash_threshold == 500
    assert cache.operation_ttls == {"qa": 60}
    default = await CacheFactory().for_ai_app(redis_url, namespace=unique_prefix, options=ROOMY)
    built.append(default)
    assert isinstance(default, AIResponseCache)
    assert default.operation_ttls == dict(get_preset("ai-production").operation_ttls)


@pytest.mark.redis
@pytest.mark.parametrize(
    ("environ", "kind"),
    [
        ({"CACHE_PRESET": "ai-production"}, AIResponseCache),
        ({"CACHE_PRESET": "ai-production", "ENABLE_AI_CACHE": "false"}, GenericRedisCache),
        ({"CACHE_PRESET": "production", "ENABLE_AI_CACHE": "1"}, AIResponseCache),
        ({"CACHE_PRESET": "production"}, GenericRedisCache),
    ],
)
async def test_from_env_with_redis_builds_what_the_preset_says(
    redis_url: str,
    unique_prefix: str,
    environ: dict[str, str],
    kind: type[Any],
    built: list[CacheInterface],
) -> None:
    preset = get_preset(environ["CACHE_PRESET"])
    cache = await CacheFactory().from_env(
        {
            **environ,
            "REDIS_URL": "redis://127.0.0.1:1/0",  # loses to CACHE_REDIS_URL
            "CACHE_REDIS_URL": redis_url,
            "CACHE_CUSTOM_CONFIG": f'{{"namespace": "{unique_prefix}"}}',
        }
    )
    built.append(cache)
    assert type(cache) is kind
    assert isinstance(cache, GenericRedisCache)
    assert cache.get_stats()["redis_status"] == "connected"
    assert (cache.default_ttl, cache.memory_cache_size) == (
        preset.default_ttl,
        preset.memory_cache_size,
    )
    assert cache.codec.compression_threshold == preset.compression_threshold
    assert cache.codec.compression_level == preset.compression_level
    if isinstance(cache, AIResponseCache) and preset.enable_ai_cache:
        assert cache.operation_ttls == dict(preset.operation_ttls)
        assert cache.text_hash_threshold == preset.text_hash_threshold


@pytest.mark.redis
async def test_create_cache_from_config_with_redis(
    redis_url: str, unique_prefix: str, built: list[CacheInterface]
) -> None:
    cache = await CacheFactory().create_cache_from_config(
        {
            "redis_url": redis_url,
            "namespace": unique_prefix,
            "options": ROOMY,
            "default_ttl": 45,
            "enable_l1_cache": False,
            "fail_on_connection_error": True,
        }
    )
    built.append(cache)
    assert type(cache) is GenericRedisCache
    assert cache.default_ttl == 45
    assert cache.get_stats()["entries"] is None  # no memory tier


def _listeners() -> list[asyncio.Task[object]]:
    """The invalidation channels' tasks still running."""
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith("stratacache-bus") and not task.done()
    ]


@pytest.mark.redis
async def test_a_reachable_redis_is_kept_while_its_channel_still_subscribes(
    redis_url: str,
    unique_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    built: list[CacheInterface],
) -> None:
    connect = GenericRedisCache.connect

    async def channel_not_yet_subscribed(self: GenericRedisCache) -> bool:
        await connect(self)
        return False  # what connect() says when PING works but SUBSCRIBE is slow

    monkeypatch.setattr(GenericRedisCache, "connect", channel_not_yet_subscribed)
    caplog.set_level(logging.WARNING, logger="stratacache")
    cache = await CacheFactory().for_web_app(redis_url, namespace=unique_prefix, options=ROOMY)
    built.append(cache)
    assert type(cache) is GenericRedisCache  # Redis answers: no fallback
    assert "invalidation channel is not subscribed yet" in caplog.text


@pytest.mark.redis
async def test_cancelling_the_factory_leaves_no_task_behind(
    redis_url: str, unique_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect = GenericRedisCache.connect
    connected = asyncio.Event()

    async def slow_connect(self: GenericRedisCache) -> bool:
        await connect(self)  # the invalidation channel's task is running now
        connected.set()
        await asyncio.sleep(60)  # wall-clock: a hung connect, cancelled long before
        return True

    monkeypatch.setattr(GenericRedisCache, "connect", slow_connect)
    before = asyncio.all_tasks()
    task = asyncio.create_task(
        CacheFactory(connect_timeout=60).for_web_app(
            redis_url, namespace=unique_prefix, options=ROOMY
        )
    )
    await asyncio.wait_for(connected.wait(), 5)
    listeners = _listeners()
    assert len(listeners) == 1  # the invalidation channel's task is running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert listeners[0].done()
    assert asyncio.all_tasks() - before - {task} == set()
