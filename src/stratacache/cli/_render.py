"""Human output for ``status``, ``stats`` and ``doctor`` (``--json`` prints the dicts instead)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._doctor import DoctorReport

__all__ = ["render_doctor", "render_stats", "render_status"]

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


def render_status(console: Console, report: Mapping[str, Any]) -> None:
    table = _table("stratacache status")
    if report.get("source") == "server":
        _row(table, "service", report.get("server"))
    _row(table, "preset", report.get("preset"))
    backend = report.get("backend")
    _row(table, "backend", _BACKENDS.get(str(backend), backend))
    if "namespace" in report:
        _row(table, "namespace", report.get("namespace") or "(none)")
    if report.get("default_ttl") is not None:
        _row(table, "default TTL", f"{report['default_ttl']} s")
    redis = _mapping(report.get("redis"))
    _row(table, "Redis", _redis_line(redis, report.get("redis_url")))
    for problem in ("ping_error", "info_error"):
        _row(table, "", redis.get(problem))
    if redis.get("used_memory_bytes") is not None:
        limit = redis.get("maxmemory_bytes")
        _row(
            table,
            "Redis memory",
            f"{_size(redis.get('used_memory_bytes'))} used, maxmemory "
            f"{_size(limit) if limit else '0 (no limit)'}, "
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
    console.print(table)
    if report.get("note"):
        console.print(f"[dim]{escape(str(report['note']))}[/]")


def render_stats(console: Console, report: Mapping[str, Any]) -> None:
    table = _table("stratacache stats")
    if report.get("source") == "server":
        _row(table, "service", report.get("server"))
        performance = _mapping(report.get("performance"))
        _row(table, "hit rate", _hit_rate(performance))
        _row(table, "operations", performance.get("total_operations"))
        if performance.get("latency_p50_ms") is not None:
            _row(
                table,
                "latency",
                f"p50 {performance['latency_p50_ms']:.3f} ms, "
                f"p99 {performance.get('latency_p99_ms') or 0:.3f} ms",
            )
        _row(table, "evictions", performance.get("evictions"))
        memory = _mapping(report.get("memory"))
        if memory.get("entries") is not None:
            _row(table, "memory tier", f"{memory['entries']} / {memory.get('max_size')} entries")
        _row(table, "Redis", _mapping(report.get("redis")).get("status"))
    else:
        _row(table, "preset", report.get("preset"))
        _row(table, "backend", _BACKENDS.get(str(report.get("backend")), report.get("backend")))
        redis = _mapping(report.get("redis"))
        keys = _mapping(report.get("namespace_keys"))
        if keys:
            count = f"{keys['count']:,}" + ("" if keys.get("complete") else "+ (counting stopped)")
            _row(table, "keys in namespace", count)
        if redis:
            rate = redis.get("keyspace_hit_rate")
            _row(
                table,
                "Redis hit rate",
                "no lookups yet"
                if rate is None
                else f"{rate:.1%} ({redis['keyspace_hits']:,} hits, "
                f"{redis['keyspace_misses']:,} misses; whole server)",
            )
            _row(table, "Redis ops/s", redis.get("ops_per_sec"))
            _row(
                table, "evicted / expired", f"{redis['evicted_keys']:,} / {redis['expired_keys']:,}"
            )
            _row(table, "Redis memory", _size(redis.get("used_memory_bytes")))
            _row(table, "clients", redis.get("connected_clients"))
    console.print(table)
    if report.get("note"):
        console.print(f"[dim]{escape(str(report['note']))}[/]")


def render_doctor(console: Console, report: DoctorReport) -> None:
    console.print("[bold]stratacache doctor[/]")
    for finding in report.findings:
        console.print(f" {_MARKS[finding.level]} {escape(finding.message)}")
        if finding.fix and finding.level in ("warning", "error", "info"):
            console.print(f"     [dim]fix:[/] {escape(finding.fix)}")
    counts = report.counts()
    if report.exit_code == 0:
        console.print("[green]All checks passed.[/]")
    else:
        console.print(
            f"[bold]{counts['error']} error(s), {counts['warning']} warning(s)[/] "
            f"(exit code {int(report.exit_code)})"
        )


# -- helpers -----------------------------------------------------------------------------


def _table(title: str) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    return table


def _row(table: Table, name: str, value: Any) -> None:
    if value is not None:
        table.add_row(name, escape(str(value)))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _redis_line(redis: Mapping[str, Any], url: Any) -> str:
    status = str(redis.get("status", "disabled"))
    parts = [status]
    if url:
        parts.append(str(url))
    if redis.get("version"):
        parts.append(f"{redis.get('server', 'redis').title()} {redis['version']}")
    if redis.get("p50_ms") is not None:
        parts.append(f"PING p50 {redis['p50_ms']:.2f} ms, max {redis['max_ms']:.2f} ms")
    if redis.get("circuit") and redis.get("circuit") != "closed":
        parts.append(f"circuit {redis['circuit']}")
    return ", ".join(parts)


def _hit_rate(performance: Mapping[str, Any]) -> str:
    rate = performance.get("hit_rate")
    if not isinstance(rate, (int, float)):
        return "unknown"
    return (
        f"{rate:.1%} ({performance.get('hits', 0):,} hits, {performance.get('misses', 0):,} misses)"
    )


def _size(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "unknown"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop returns
