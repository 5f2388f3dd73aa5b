"""Run every benchmark in one process and rewrite ``docs/benchmarks.md``.

``python -m benchmarks`` (or ``make bench``); ``--quick`` replays 100,000 requests per
hit-ratio trace instead of 1,000,000. Each table is printed as it is measured; the
document, with the machine description and the targets evaluated against the figures
just measured, is written at the end (wholly replaced, never appended to). The Redis
path is measured only when a Redis answers at ``REDIS_URL`` (default
``redis://127.0.0.1:6379/0``); otherwise it is skipped, and the document says why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from . import load as load_test
from . import memory_use, monitoring, redis_path, speed, two_tier
from .speed import TIMES

__all__ = ["Target", "evaluate_targets", "main", "render_document"]

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
QUICK_REQUESTS = 100_000
PACKAGES = (
    "stratacache",
    "cachetools",
    "theine",
    "cachebox",
    "aiocache",
    "cashews",
    "msgpack",
    "redis",
    "hiredis",
)

MAX_FLOOR_RATIO = 2.0
MIN_X_FASTER = 5.0
MAX_MEMORY_BYTES = 500_000
MAX_POINTS_BELOW_LRU = 1.0

# Names that mark a hit-ratio policy as someone else's (or as a bound), not ours.
_NOT_OURS = ("theine", "cachetools", "cachebox", "aiocache", "cashews", "optim", "belady")


class Target(NamedTuple):
    """One goal: what it asks, whether the figures meet it, and the figures."""

    name: str
    passed: bool
    figure: str


# -- evaluating the targets ----------------------------------------------------------------


def _speed_row(rows: Sequence[dict[str, Any]], contender: str) -> dict[str, Any] | None:
    for row in rows:
        if row["op"] == "get-hit" and row["value"] == "str" and row["contender"] == contender:
            return row
    return None


def _speed_targets(rows: Sequence[dict[str, Any]]) -> list[Target]:
    ours = _speed_row(rows, speed.STRATACACHE_LRU)
    floor = _speed_row(rows, speed.ASYNC_FLOOR)
    name = f"async get-hit (str) ≤ {MAX_FLOOR_RATIO:g}{TIMES} the async floor"
    peers_name = (
        f"get-hit (str) ≥ {MIN_X_FASTER:g}{TIMES} faster than cashews mem:// and aiocache "
        "SimpleMemoryCache"
    )
    if ours is None or floor is None:
        return [Target(name, False, "not measured"), Target(peers_name, False, "not measured")]
    ratio = ours["vs_async_floor"]
    targets = [
        Target(
            name,
            ratio <= MAX_FLOOR_RATIO,
            f"{ratio:.2f}{TIMES} ({ours['ns_per_op']:,.0f} ns vs {floor['ns_per_op']:,.0f} ns)",
        )
    ]
    figures: list[str] = []
    passed = True
    for peer, label in ((speed.CASHEWS, "cashews mem://"), (speed.AIOCACHE, "aiocache")):
        row = _speed_row(rows, peer)
        if row is None:
            figures.append(f"{label}: not measured")
            passed = False
            continue
        figures.append(f"{label} {row['lru_x_faster']:.1f}{TIMES}")
        passed = passed and row["lru_x_faster"] >= MIN_X_FASTER
    targets.append(Target(peers_name, passed, ", ".join(figures)))
    return targets


def _memory_targets(rows: Sequence[dict[str, Any]]) -> list[Target]:
    name = (
        f"{memory_use.ENTRIES:,} entries of {memory_use.VALUE_BYTES}-byte values "
        f"< {MAX_MEMORY_BYTES / 1e6:g} MB (stratacache lru, tracemalloc)"
    )
    for row in rows:
        if row["contender"] == memory_use.STRATACACHE_LRU:
            used = row["tracemalloc_bytes"]
            return [Target(name, used < MAX_MEMORY_BYTES, f"{used:,} bytes")]
    return [Target(name, False, "not measured")]


def _policy_kind(policy: str) -> str | None:
    """``"lru"``, ``"tinylfu"`` (ours), ``"theine"``, or None for anything else."""
    name = policy.lower()
    if "theine" in name:
        return "theine"
    if any(other in name for other in _NOT_OURS):
        return None
    if "tinylfu" in name or "tiny-lfu" in name or "tlfu" in name:
        return "tinylfu"
    if "lru" in name:
        return "lru"
    return None


def _hit_ratio_cells(
    rows: Sequence[dict[str, Any]], trace_word: str
) -> dict[tuple[str, int], dict[str, float]]:
    """(trace, capacity) -> policy kind -> hit ratio in percentage points."""
    scale = 1.0 if any(float(r["hit_ratio"]) > 1.0 for r in rows) else 100.0
    cells: dict[tuple[str, int], dict[str, float]] = {}
    for row in rows:
        trace = str(row["trace"])
        kind = _policy_kind(str(row["policy"]))
        if trace_word not in trace.lower() or kind is None:
            continue
        cell = cells.setdefault((trace, int(row["capacity"])), {})
        cell.setdefault(kind, float(row["hit_ratio"]) * scale)
    return cells


def _compare(
    cells: dict[tuple[str, int], dict[str, float]],
    ours: str,
    other: str,
    ok: Callable[[float], bool],
) -> tuple[bool, list[str]]:
    passed, figures = bool(cells), []
    for (trace, capacity), cell in sorted(cells.items()):
        if ours not in cell or other not in cell:
            passed = False
            figures.append(f"{trace} @ {capacity:,}: missing {ours if ours not in cell else other}")
            continue
        diff = cell[ours] - cell[other]
        passed = passed and ok(diff)
        figures.append(
            f"{trace} @ {capacity:,}: {cell[ours]:.2f} vs {cell[other]:.2f} ({diff:+.2f})"
        )
    return passed, figures or ["no matching rows"]


def _hit_ratio_targets(rows: Sequence[dict[str, Any]] | None) -> list[Target]:
    zipf_name = "tinylfu ≥ theine on both Zipf traces at both capacities"
    adversarial_name = (
        f"tinylfu never > {MAX_POINTS_BELOW_LRU:g} point below lru on the shift and scan traces"
    )
    if rows is None:
        return [Target(zipf_name, False, "not run"), Target(adversarial_name, False, "not run")]
    zipf = _hit_ratio_cells(rows, "zipf")
    zipf_passed, zipf_figures = _compare(zipf, "tinylfu", "theine", lambda d: d >= 0)
    zipf_passed = zipf_passed and len({trace for trace, _ in zipf}) >= 2
    passed = True
    figures: list[str] = []
    for word in ("shift", "scan"):
        cells = _hit_ratio_cells(rows, word)
        ok, found = _compare(cells, "tinylfu", "lru", lambda d: d >= -MAX_POINTS_BELOW_LRU)
        passed, figures = passed and ok, [*figures, *found]
    return [
        Target(zipf_name, zipf_passed, "; ".join(zipf_figures)),
        Target(adversarial_name, passed, "; ".join(figures)),
    ]


def _needing_redis(
    judge: Callable[[Sequence[dict[str, Any]]], list[tuple[str, bool, str]]],
    rows: Sequence[dict[str, Any]] | None,
    skipped: str,
) -> list[Target]:
    """A Redis benchmark's targets; each failed as not run when there was no Redis."""
    if rows is None:
        return [Target(name, False, f"not run: {skipped}") for name, _, _ in judge([])]
    return [Target(*target) for target in judge(rows)]


def evaluate_targets(
    speed_rows: Sequence[dict[str, Any]],
    memory_rows: Sequence[dict[str, Any]],
    hit_rows: Sequence[dict[str, Any]] | None,
    redis_rows: Sequence[dict[str, Any]] | None = None,
    redis_skipped: str = "no Redis",
    two_tier_rows: Sequence[dict[str, Any]] | None = None,
) -> list[Target]:
    """Every target, judged from the rows the benchmarks returned (None: not run)."""
    return [
        *_speed_targets(speed_rows),
        *_memory_targets(memory_rows),
        *_needing_redis(redis_path.targets, redis_rows, redis_skipped),
        *_needing_redis(two_tier.targets, two_tier_rows, redis_skipped),
        *_hit_ratio_targets(hit_rows),
    ]


def render_targets(targets: Sequence[Target]) -> str:
    lines = ["| target | result | measured |", "|---|---|---|"]
    for target in targets:
        verdict = "**PASS**" if target.passed else "**FAIL**"
        lines.append(f"| {target.name} | {verdict} | {target.figure} |")
    return "\n".join(lines) + "\n"


# -- the document ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> str:
    found = []
    for package in PACKAGES:
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found)


def _method(module: ModuleType) -> str:
    """A module's docstring minus its title line, with reST literals made Markdown."""
    doc = (module.__doc__ or "").strip()
    body = doc.split("\n\n", 1)[1] if "\n\n" in doc else ""
    body = re.sub(r"``(.+?)``", r"`\1`", body)
    return re.sub(r":[a-z]+:`([^`]+)`", r"`\1`", body).strip()


def _block(text: str) -> str:
    """``text`` ending in exactly one newline, so the next heading stands apart."""
    return text.rstrip() + "\n"


def machine_description(load: tuple[float, float, float] | None) -> str:
    impl = platform.python_implementation()
    lines = [
        f"- **Machine:** {os.cpu_count()} CPUs ({_cpu_model()}), {platform.platform()}",
        f"- **Python:** {impl} {platform.python_version()}",
        f"- **Versions:** {_versions()}",
    ]
    if load is not None:
        lines.append(
            "- **Load average when the run started:** "
            + " / ".join(f"{x:.2f}" for x in load)
            + " (1 / 5 / 15 min; other work on the machine slows every contender)"
        )
    return "\n".join(lines)


def render_document(
    *,
    quick: bool,
    requests: int,
    load: tuple[float, float, float] | None,
    speed_rows: Sequence[dict[str, Any]],
    memory_rows: Sequence[dict[str, Any]],
    hit_module: ModuleType | None,
    hit_rows: Sequence[dict[str, Any]] | None,
    targets: Sequence[Target],
    elapsed: float,
    redis_rows: Sequence[dict[str, Any]] | None = None,
    redis_server: str = "",
    extra_sections: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole of ``docs/benchmarks.md``.

    ``redis_server`` names the server measured (``"Redis 7.2.4 at redis://..."``) when
    ``redis_rows`` is given, else says why the Redis path was skipped.
    ``extra_sections`` are (title, markdown) pairs placed before the targets.
    """
    extra = "".join(f"## {title}\n\n{_block(body)}" for title, body in extra_sections)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "`--quick`" if quick else "full"
    passed = sum(t.passed for t in targets)
    if hit_module is not None and hit_rows is not None:
        hit_section = _method(hit_module) + "\n\n" + _block(hit_module.render_markdown(hit_rows))
    else:
        hit_section = "_Not run: `benchmarks.hit_ratio` could not be imported._\n"
    if redis_rows is not None:
        redis_section = (
            _method(redis_path)
            + f"\n\nMeasured against {redis_server}, on the same machine.\n\n"
            + _block(redis_path.render_markdown(redis_rows))
        )
    else:
        redis_section = (
            f"_Skipped: {redis_server} — start a Redis (or point `REDIS_URL` at one) and "
            "rerun; its targets below are marked not run._\n"
        )
    return f"""# Benchmarks

_Generated by `python -m benchmarks` ({mode} run, {requests:,} requests per hit-ratio trace) \
on {now}, in {elapsed:.0f} s. This file is rewritten wholly on every run: do not edit it by \
hand._

stratacache's memory cache beside the in-process caches people reach for: cachetools,
theine, cachebox (sync), aiocache and cashews (async); and its Redis cache beside raw
redis-py, aiocache and cashews on the same server. All figures come from one process.

{machine_description(load)}

## How to reproduce

```sh
make bench                        # full run: writes this file
make bench BENCH_ARGS=--quick     # ~2 minutes: hit-ratio traces of 100,000 requests
.venv/bin/python -m benchmarks.speed        # any one benchmark alone, tables to stdout
.venv/bin/python -m benchmarks.memory_use
.venv/bin/python -m benchmarks.redis_path  # needs a Redis at REDIS_URL (default: local)
.venv/bin/python -m benchmarks.hit_ratio --requests 100000
```

Absolute nanoseconds depend on the machine and on whatever else it is doing; the ratios
(each measured side by side in the same run) are the figures to compare.

## Speed: get-hit and set

{_method(speed)}

{_block(speed.render_markdown(speed_rows))}
## Memory use

{_method(memory_use)}

{_block(memory_use.render_markdown(memory_rows))}
## Redis path

{_block(redis_section)}
## Hit ratio

{_block(hit_section)}
{extra}## Targets

{passed} of {len(targets)} met. Hit ratios are in percentage points.

{render_targets(targets)}"""


# -- entry point ------------------------------------------------------------------------------


def _section(title: str) -> None:
    print(f"\n## {title}\n", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run every benchmark; rewrite docs/benchmarks.md."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"hit-ratio traces of {QUICK_REQUESTS:,} requests instead of 1,000,000",
    )
    parser.add_argument("--output", type=Path, default=DOC, help="where to write the document")
    args = parser.parse_args(argv)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.perf_counter()

    _section("Speed: get-hit and set")
    speed_rows = speed.run()
    print(speed.render_markdown(speed_rows), flush=True)

    _section("Memory use")
    memory_rows = memory_use.run()
    print(memory_use.render_markdown(memory_rows), flush=True)

    _section("Redis path")
    url = redis_path.redis_url()
    redis_rows: list[dict[str, Any]] | None = None
    answers, server = redis_path.server_answers(url)
    if answers:
        redis_server = f"{server} at {redis_path.safe_url(url)}"
        redis_rows = redis_path.run(url=url)
        print(redis_path.render_markdown(redis_rows), flush=True)
    else:
        redis_server = f"no Redis answered at {redis_path.safe_url(url)} ({server})"
        print(f"Redis path skipped: {redis_server}", flush=True)

    _section("Hit ratio")
    hit_module: ModuleType | None
    hit_rows: list[dict[str, Any]] | None = None
    try:
        hit_module = importlib.import_module("benchmarks.hit_ratio")
    except ImportError as exc:
        hit_module = None
        print(f"benchmarks.hit_ratio unavailable: {exc}", file=sys.stderr)
    requests = QUICK_REQUESTS if args.quick else 1_000_000
    if hit_module is not None:
        hit_rows = hit_module.run(requests=QUICK_REQUESTS) if args.quick else hit_module.run()
        print(hit_module.render_markdown(hit_rows), flush=True)

    extra_sections: list[tuple[str, str]] = []
    _section("Monitoring overhead")
    monitoring_rows = monitoring.run()
    body = monitoring.render_markdown(monitoring_rows)
    print(body, flush=True)
    extra_sections.append(("Monitoring overhead", _method(monitoring) + "\n\n" + body))
    _section("Two tiers: the memory hit")
    two_tier_rows: list[dict[str, Any]] | None = None
    if answers:
        two_tier_rows = two_tier.run(url=url)
        two_tier_body = two_tier.render_markdown(two_tier_rows)
        print(two_tier_body, flush=True)
        extra_sections.append(
            ("Two tiers: the memory hit", _method(two_tier) + "\n\n" + two_tier_body)
        )

    extra_sections.append((load_test.SUMMARY_TITLE, load_test.summary()))

    targets = evaluate_targets(
        speed_rows,
        memory_rows,
        hit_rows,
        redis_rows,
        f"no Redis answered at {redis_path.safe_url(url)}",
        two_tier_rows,
    )
    _section("Targets")
    print(render_targets(targets))
    document = render_document(
        quick=args.quick,
        requests=requests,
        load=load,
        speed_rows=speed_rows,
        memory_rows=memory_rows,
        hit_module=hit_module,
        hit_rows=hit_rows,
        targets=targets,
        elapsed=time.perf_counter() - started,
        redis_rows=redis_rows,
        redis_server=redis_server,
        extra_sections=extra_sections,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(document, encoding="utf-8")
    print(f"wrote {args.output} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
