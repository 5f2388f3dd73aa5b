"""``stratacache doctor``: check the configuration and the Redis behind it, say what to fix.

Every check yields a :class:`Finding` — ``ok``, ``info``, ``warning`` or ``error`` —
and each warning or error says how to fix it. The checks go on after a failure
where they still can, so one run lists every problem. Exit code: 3 when Redis is
configured but unreachable, else 1 when there is any warning or error, else 0.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .._redis_client import ClientOptions, client_from_url, validate_redis_url
from ..caches._interface import CacheInterface
from ..config import CacheSettings, redact_url
from ..config._redact import redact_text
from ..config._validation import validate_cache_config
from ..errors import CacheError, InfrastructureError, ValidationError
from ._common import ExitCode, describe_exception, settings_from, unreachable_message
from ._sources import LocalSource, ping_latency, redis_facts

__all__ = ["DoctorReport", "Finding", "diagnose"]

Level = Literal["ok", "info", "warning", "error"]

SLOW_PING_P50_MS = 5.0
SLOW_PING_MAX_MS = 50.0
MIN_REDIS_MAJOR = 6
MIN_API_KEY_LENGTH = 16
GOOD_POLICIES = frozenset({"allkeys-lru", "allkeys-lfu"})
TTL_ONLY_POLICIES = frozenset({"volatile-lru", "volatile-lfu"})
_POLICY_FIX = (
    "redis-cli CONFIG SET maxmemory-policy allkeys-lru  (then CONFIG REWRITE, or set it in "
    "redis.conf or your provider's parameter group, so that it survives a restart)"
)
_DOCTOR_PROBE = "stratacache:doctor:"


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    message: str
    fix: str = ""


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    redis: dict[str, Any] = field(default_factory=dict)
    unreachable: bool = False

    def add(self, check: str, level: Level, message: str, fix: str = "") -> None:
        self.findings.append(Finding(check, level, message, fix))

    @property
    def exit_code(self) -> ExitCode:
        if self.unreachable:
            return ExitCode.UNREACHABLE
        if any(finding.level in ("warning", "error") for finding in self.findings):
            return ExitCode.FINDINGS
        return ExitCode.OK

    def counts(self) -> dict[str, int]:
        levels = [finding.level for finding in self.findings]
        return {level: levels.count(level) for level in ("ok", "info", "warning", "error")}

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code == ExitCode.OK,
            "exit_code": int(self.exit_code),
            "summary": self.counts(),
            "redis": self.redis,
            "findings": [asdict(finding) for finding in self.findings],
        }


async def diagnose(redis_url: str | None = None, preset: str | None = None) -> DoctorReport:
    """Run every check against the environment's settings (``--redis-url``/``--preset`` win)."""
    report = DoctorReport()
    settings = _check_settings(report, redis_url, preset)
    if settings is None:  # nothing below can be checked without settings
        return report
    config_ok = _check_config(report, settings)
    _check_api_keys(report, settings)
    if not settings.preset.enabled:
        report.add(
            "config.preset",
            "info",
            "caching is disabled by the 'disabled' preset: every read goes to the source",
            "set CACHE_PRESET (or --preset) to development or production to cache",
        )
    url = settings.resolved_redis_url
    if url is None:
        if settings.preset.enabled:  # disabled: there is no memory cache either
            report.add(
                "redis.configured",
                "info",
                "no Redis URL: each process keeps its own memory cache (not shared, "
                "lost on restart)",
                "set CACHE_REDIS_URL (or REDIS_URL) to share the cache between processes",
            )
        return report
    if importlib.util.find_spec("redis") is None:
        report.add(
            "redis.package",
            "error",
            "a Redis URL is configured but the redis package is not installed",
            "pip install 'stratacache[redis]'",
        )
        return report
    reachable = await _check_redis(report, url)
    if reachable and config_ok and settings.preset.enabled:
        await _check_cache(report, settings)
    return report


def _check_settings(
    report: DoctorReport, redis_url: str | None, preset: str | None
) -> CacheSettings | None:
    try:
        settings = settings_from(redis_url, preset)
    except CacheError as exc:
        report.add(
            "config.settings",
            "error",
            exc.message,
            "fix the variable (or option) named above; `stratacache presets` lists the presets",
        )
        return None
    report.add(
        "config.settings",
        "ok",
        f"settings read: preset {settings.cache_preset!r}, "
        + (
            f"Redis {redact_url(settings.resolved_redis_url)}"
            if settings.resolved_redis_url
            else "no Redis"
        ),
    )
    return settings


def _check_config(report: DoctorReport, settings: CacheSettings) -> bool:
    custom = settings.custom_config
    try:
        validate_cache_config(settings.cache_config(), require_redis=False)
    except ValidationError as exc:
        problems = exc.context.get("problems") or {"settings": [exc.message]}
        for setting, messages in problems.items():
            where = (
                "CACHE_CUSTOM_CONFIG"
                if setting in custom
                else "CACHE_REDIS_URL / REDIS_URL / --redis-url"
                if setting == "redis_url"
                else "the preset or CACHE_CUSTOM_CONFIG"
            )
            for message in messages:
                report.add(f"config.{setting}", "error", message, f"correct {setting} in {where}")
        return False
    report.add("config.validation", "ok", "the cache configuration is valid")
    return True


def _check_api_keys(report: DoctorReport, settings: CacheSettings) -> None:
    keys = settings.all_api_keys()
    generate = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if not keys:
        report.add(
            "api_key",
            "warning",
            "no API_KEY: the management API refuses invalidation and key listing (403)",
            f"export API_KEY=$({generate})",
        )
    elif any(len(key) < MIN_API_KEY_LENGTH for key in keys):
        report.add(
            "api_key",
            "warning",
            f"an API key is shorter than {MIN_API_KEY_LENGTH} characters: easy to guess",
            f"use a long random key: {generate}",
        )
    else:
        report.add("api_key", "ok", f"{len(keys)} management API key(s) configured")


async def _check_redis(report: DoctorReport, url: str) -> bool:
    shown = redact_url(url)
    try:
        validate_redis_url(url)
        client = client_from_url(
            url, ClientOptions(connect_timeout=2.0, operation_timeout=2.0, retries=0)
        )
    except ValidationError:
        return False  # reported by the configuration check
    try:
        try:
            latency = await ping_latency(client)
        except Exception as exc:  # whatever redis-py or the OS raised: report, go on
            report.unreachable = True
            report.add(
                "redis.reachable",
                "error",
                f"Redis at {shown} did not answer: {redact_text(describe_exception(exc), url)}",
                "start Redis (redis-server, or docker run -p 6379:6379 redis:7), or correct "
                "CACHE_REDIS_URL / REDIS_URL / --redis-url; check the port, firewall, "
                "password and TLS (rediss://)",
            )
            return False
        report.redis.update(latency)
        report.add(
            "redis.reachable",
            "ok",
            f"Redis at {shown} answers (PING p50 {latency['p50_ms']:.2f} ms, "
            f"max {latency['max_ms']:.2f} ms)",
        )
        if latency["p50_ms"] > SLOW_PING_P50_MS or latency["max_ms"] > SLOW_PING_MAX_MS:
            report.add(
                "redis.latency",
                "warning",
                f"Redis is slow to answer: PING p50 {latency['p50_ms']:.1f} ms, max "
                f"{latency['max_ms']:.1f} ms (a cache round trip should take about 1 ms)",
                "run Redis close to the services (same host or zone) and check the network "
                "and the server's load (redis-cli --latency)",
            )
        try:
            facts = await redis_facts(client)
        except Exception as exc:
            report.add(
                "redis.info",
                "warning",
                f"INFO failed: {redact_text(describe_exception(exc), url)}",
                "allow the INFO command for this user (ACL), or check the server",
            )
            return True
        report.redis.update(facts)
        _check_version(report, facts)
        await _check_memory_policy(report, client, facts)
        return True
    finally:
        with contextlib.suppress(Exception):  # a client that never connected
            await client.aclose()


def _check_version(report: DoctorReport, facts: dict[str, Any]) -> None:
    version = str(facts.get("version", "unknown"))
    match = re.match(r"(\d+)", version)
    name = "Valkey" if facts.get("server") == "valkey" else "Redis"
    if match is None:
        report.add(
            "redis.version",
            "warning",
            f"{name} did not report its version ({version})",
            "check the server's version with redis-cli INFO server (stratacache needs "
            f"Redis {MIN_REDIS_MAJOR} or later)",
        )
    elif int(match.group(1)) < MIN_REDIS_MAJOR and facts.get("server") != "valkey":
        report.add(
            "redis.version",
            "error",
            f"{name} {version} is too old: stratacache needs Redis {MIN_REDIS_MAJOR} or later",
            f"upgrade Redis to {MIN_REDIS_MAJOR}.x or later (7.x recommended)",
        )
    else:
        report.add("redis.version", "ok", f"{name} {version} ({facts.get('mode', 'standalone')})")


async def _check_memory_policy(report: DoctorReport, client: Any, facts: dict[str, Any]) -> None:
    policy = facts.get("maxmemory_policy")
    if not policy:
        try:
            answer = await client.config_get("maxmemory-policy")
            policy = answer.get("maxmemory-policy")
        except Exception:
            policy = None
    if not policy:
        report.add(
            "redis.maxmemory_policy",
            "warning",
            "could not read maxmemory-policy (INFO and CONFIG GET did not say)",
            "check it with your provider; a cache wants allkeys-lru or allkeys-lfu",
        )
    elif policy in GOOD_POLICIES:
        report.add("redis.maxmemory_policy", "ok", f"maxmemory-policy is {policy}")
    elif policy in TTL_ONLY_POLICIES:
        report.add(
            "redis.maxmemory_policy",
            "info",
            f"maxmemory-policy is {policy}: entries stored with ttl=0 (no expiry) are never "
            "evicted",
            _POLICY_FIX,
        )
    else:
        why = (
            "when memory is full Redis refuses writes (OOM errors) instead of evicting"
            if policy == "noeviction"
            else "it is neither LRU nor LFU, so hot entries get evicted as readily as cold ones"
        )
        report.add(
            "redis.maxmemory_policy",
            "warning",
            f"maxmemory-policy is {policy}: {why}",
            _POLICY_FIX,
        )
    if facts.get("maxmemory_bytes") == 0:
        report.add(
            "redis.maxmemory",
            "warning",
            "maxmemory is 0 (no limit): Redis never evicts and grows until the machine "
            "runs out of memory",
            "redis-cli CONFIG SET maxmemory 512mb  (size it for your data; persist it "
            "in redis.conf)",
        )


async def _check_cache(report: DoctorReport, settings: CacheSettings) -> None:
    """Connect a real cache built from the settings, as a service would, and use it.

    The checks above used a bare client; this one goes through everything a
    service's cache does: the factory, the invalidation channel, the codec, the
    namespace. The factory forgives a channel that cannot subscribe (the cache
    still works, only its memory tier goes stale), so that is checked here.
    """
    try:
        source = await LocalSource.open(settings)
    except InfrastructureError as exc:
        report.add(
            "cache.connect",
            "error",
            f"the cache could not connect: {unreachable_message(exc)}",
            "Redis answered the checks above a moment ago: check whether it is restarting "
            "or failing over, then run the doctor again",
        )
        return
    except CacheError as exc:  # the factory refused what validation let through
        report.add(
            "cache.connect",
            "error",
            f"the cache could not be built: {exc.message}",
            "correct the setting named above (CACHE_CUSTOM_CONFIG or the preset)",
        )
        return
    try:
        _check_invalidation_channel(report, source.cache)
        await _check_round_trip(report, source.cache)
    finally:
        await source.aclose()


def _check_invalidation_channel(report: DoctorReport, cache: CacheInterface) -> None:
    stats = cache.get_stats()
    if stats.get("entries") is None:  # no memory tier: nothing to keep coherent
        return
    if stats.get("invalidation_channel") == "connected":
        report.add("cache.invalidation_channel", "ok", "the invalidation channel is subscribed")
        return
    report.add(
        "cache.invalidation_channel",
        "error",
        "the invalidation channel could not subscribe: each process's memory tier "
        "will keep serving entries that other processes changed or invalidated",
        "allow this Redis user SUBSCRIBE and PUBLISH on the invalidation channels "
        "(ACL: +subscribe +publish &stratacache:invalidate:*)",
    )


async def _check_round_trip(report: DoctorReport, cache: CacheInterface) -> None:
    key = f"{_DOCTOR_PROBE}{uuid.uuid4().hex}"
    try:
        await cache.set(key, {"probe": True}, ttl=30)
        value = await cache.get(key)
        await cache.delete(key)
    except CacheError as exc:
        report.add(
            "cache.round_trip",
            "error",
            f"writing through the cache failed: {exc.message}",
            "check that the server accepts writes (not a read-only replica) and the ACL "
            "allows SET, GET, DEL, EVALSHA and SCAN on the namespace",
        )
        return
    if value != {"probe": True}:
        report.add(
            "cache.round_trip",
            "error",
            "a value written through the cache did not read back",
            "check for a proxy or another process rewriting keys in this namespace",
        )
    else:
        report.add("cache.round_trip", "ok", "write, read and delete through the cache work")
