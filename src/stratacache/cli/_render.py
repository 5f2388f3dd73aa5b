"""Human output for ``status``, ``stats``, ``presets`` and ``doctor``.

``--json`` prints the same dicts as they are; these functions only lay them out.
They read every field with ``.get``: a report from ``--server`` comes from another
version of stratacache, and one from a Redis that refused ``INFO`` lacks its numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._common import ExitCode
from ._doctor import DoctorReport

__all__ = ["render_doctor", "render_presets", "render_stats", "render_status"]

_BACKENDS = {
    "memory": "memory only (per process)",
    "two-tier": "two-tier: memory in front of Redis",
    "ai": "AI response cache: memory in front of Redis",
    "disabled": "disabled (nothing is cached)",
}
_MARKS = {
    "ok": "[green]✔[/]",
    "info": "[blue]•[/]",
    "warning": "[yellow]⚠[/]",
    "error": "[red]✘[/]",
}
_REDIS_PROBLEMS = ("ping_error", "info_error")
"""Where :class:`~._sources.LocalSource` puts a Redis command it could not run."""


def render_status(console: Console, report: Mapping[str, Any]) -> None:
    table = _table("stratacache status", report)
    if "namespace" in report:
        _row(table, "namespace", report.get("namespace") or "(none)")
    if report.get("default_ttl") is not None:
        _row(table, "default TTL", f"{report['default_ttl']} s")
    redis = _mapping(report.get("redis"))
    _row(table, "Redis", _redis_line(redis, report.get("redis_url")))
    _problem_rows(table, redis)
    if redis.get("used_memory_bytes") is not None:
        limit = redis.get("maxmemory_bytes")
        _row(
            table,
            "Redis memory",
            f"{_size(redis.get('used_memory_bytes'))} used, maxmemory "
            f"{'0 (no limit)' if limit == 0 else _size(limit)}, "
            f"policy {redis.get('maxmemory_policy')}",
        )
    memory = _mapping(report.get("memory"))
    if memory:
        parts = [str(memory.get("status", ""))]
        if memory.get("entries") is not None:
            parts.append(f"{memory['entries']} entries")
        if memory.get("max_size") is not None:
            parts.append(f"max {memory['max_size']}")
        if memory.get("memory_usage_bytes") is not None:
            parts.append(_size(memory["memory_usage_bytes"]))
        _row(table, "memory tier", ", ".join(parts))
    performance = _mapping(report.get("performance"))
    if performance:
        _row(table, "hit rate", _hit_rate(performance))
    _print(console, table, report)


def render_stats(console: Console, report: Mapping[str, Any]) -> None:
    table = _table("stratacache stats", report)
    redis = _mapping(report.get("redis"))
    if report.get("source") == "server":
        performance = _mapping(report.get("performance"))
        _row(table, "hit rate", _hit_rate(performance))
        _row(table, "operations", performance.get("total_operations"))
        if isinstance(performance.get("latency_p50_ms"), (int, float)):
            p99 = performance.get("latency_p99_ms")
            _row(
                table,
                "latency",
                f"p50 {performance['latency_p50_ms']:.3f} ms"
                + (f", p99 {p99:.3f} ms" if isinstance(p99, (int, float)) else ""),
            )
        _row(table, "evictions", performance.get("evictions"))
        memory = _mapping(report.get("memory"))
        if memory.get("entries") is not None:
            _row(table, "memory tier", f"{memory['entries']} / {memory.get('max_size')} entries")
        _row(table, "Redis", redis.get("status"))
    else:
        keys = _mapping(report.get("namespace_keys"))
        if keys:
            stopped = "" if keys.get("complete") else "+ (counting stopped)"
            _row(table, "keys in namespace", _count(keys.get("count")) + stopped)
        _problem_rows(table, redis)
        if "keyspace_hits" in redis:  # absent when INFO failed
            rate = redis.get("keyspace_hit_rate")
            _row(
                table,
                "Redis hit rate",
                "no lookups yet"
                if rate is None
                else f"{rate:.1%} ({_count(redis.get('keyspace_hits'))} hits, "
                f"{_count(redis.get('keyspace_misses'))} misses; whole server)",
            )
            _row(table, "Redis ops/s", redis.get("ops_per_sec"))
            _row(
                table,
                "evicted / expired",
                f"{_count(redis.get('evicted_keys'))} / {_count(redis.get('expired_keys'))}",
            )
            _row(table, "Redis memory", _size(redis.get("used_memory_bytes")))
            _row(table, "clients", redis.get("connected_clients"))
    _print(console, table, report)


def render_presets(
    console: Console, presets: Sequence[Mapping[str, Any]], current: str | None
) -> None:
    table = Table(
        title="stratacache presets (* = CACHE_PRESET now)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("preset", no_wrap=True)
    table.add_column("TTL", justify="right", no_wrap=True)
    table.add_column("memory", justify="right", no_wrap=True)
    table.add_column("zstd above/level", justify="right", no_wrap=True)
    table.add_column("AI", no_wrap=True)
    table.add_column("about", ratio=1)
    for preset in presets:
        table.add_row(
            preset["name"] + (" *" if preset["name"] == current else ""),
            f"{preset['default_ttl']} s",
            str(preset["memory_cache_size"]),
            f"{preset['compression_threshold']} B / {preset['compression_level']}",
            "yes" if preset["enable_ai_cache"] else "",
            escape(str(preset["description"])),
        )
    console.print(table)


def render_doctor(console: Console, report: DoctorReport) -> None:
    console.print("[bold]stratacache doctor[/]")
    for finding in report.findings:
        console.print(f" {_MARKS[finding.level]} {escape(finding.message)}")
        if finding.fix:
            console.print(f"     [dim]fix:[/] {escape(finding.fix)}")
    if report.exit_code == ExitCode.OK:
        console.print("[green]All checks passed.[/]")
    else:
        counts = report.counts()
        console.print(
            f"[bold]{counts['error']} error(s), {counts['warning']} warning(s)[/] "
            f"(exit code {int(report.exit_code)})"
        )


# -- helpers -----------------------------------------------------------------------------


def _table(title: str, report: Mapping[str, Any]) -> Table:
    """A two-column table opening with where the numbers come from, and which cache."""
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    if report.get("source") == "server":
        _row(table, "service", report.get("server"))
    _row(table, "preset", report.get("preset"))
    backend = report.get("backend")
    _row(table, "backend", _BACKENDS.get(str(backend), backend))
    return table


def _print(console: Console, table: Table, report: Mapping[str, Any]) -> None:
    console.print(table)
    if report.get("note"):
        console.print(f"[dim]{escape(str(report['note']))}[/]")


def _row(table: Table, name: str, value: Any) -> None:
    if value is not None:
        table.add_row(name, escape(str(value)))


def _problem_rows(table: Table, redis: Mapping[str, Any]) -> None:
    for problem in _REDIS_PROBLEMS:
        _row(table, "", redis.get(problem))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _redis_line(redis: Mapping[str, Any], url: Any) -> str:
    parts = [str(redis.get("status", "disabled"))]
    if url:
        parts.append(str(url))
    if redis.get("version"):
        parts.append(f"{str(redis.get('server', 'redis')).title()} {redis['version']}")
    if redis.get("p50_ms") is not None:
        parts.append(f"PING p50 {redis['p50_ms']:.2f} ms, max {redis['max_ms']:.2f} ms")
    if redis.get("circuit") and redis.get("circuit") != "closed":
        parts.append(f"circuit {redis['circuit']}")
    return ", ".join(parts)


def _hit_rate(performance: Mapping[str, Any]) -> str:
    rate = performance.get("hit_rate")
    if not isinstance(rate, (int, float)):
        return "unknown"
    hits, misses = _count(performance.get("hits")), _count(performance.get("misses"))
    return f"{rate:.1%} ({hits} hits, {misses} misses)"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _size(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "unknown"
    size, unit = float(value), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
