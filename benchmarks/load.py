"""HTTP load test of the catalog demo, with the cache and without: ``python -m benchmarks.load``.

For each run (``cached``: the demo's default memory cache, or memory in front of Redis
with ``--redis``; ``uncached``: ``CACHE_PRESET=disabled``, a ``NullCache``) this:

1. copies a freshly seeded catalog (10,000 products) so both runs start from the
   same data, and starts the demo (``python -m examples.catalog``) on a free
   loopback port, in its own process group;
2. runs locust headless (``benchmarks/locustfile.py``: Zipf-skewed product reads,
   category lists, a few writes) for a warm-up, then for the measured period,
   each bounded in time, with ``--csv``;
3. counts the GET answers saying ``X-Cache: HIT`` (the hit rate under load, as
   clients see it, warm-up excluded), and reads the cache's own hit and miss
   counters from ``/internal/cache/status`` before and after the measured period;
4. stops the server (SIGTERM to the group, SIGKILL if it lingers).

Requests/s and failures come from locust's CSV; latency percentiles from every
request's time (locust's CSV rounds them to whole milliseconds). The report, with
the ratios and the targets (hit rate > 80 %, cached p50 < 50 % of uncached), is
printed and written to ``docs/load.md`` (wholly replaced); its results and targets
are also copied into ``docs/benchmarks.md`` (see :func:`summary`), whose
``make bench`` run copies them again from ``docs/load.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SUMMARY_TITLE", "RunResult", "main", "render", "run_once", "splice", "summary"]

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
DOC = ROOT / "docs" / "load.md"
BENCHMARKS_DOC = ROOT / "docs" / "benchmarks.md"
SUMMARY_TITLE = "Load test: the catalog demo"
PRODUCT_READS = "GET /products/{id}"
TARGET_HIT_RATE = 0.80
TARGET_P50_RATIO = 0.50
_STARTUP_TIMEOUT = 90.0
_STOP_TIMEOUT = 15.0


@dataclass
class RunResult:
    """One locust run against one server."""

    label: str
    preset: str
    requests: int = 0
    failures: int = 0
    requests_per_s: float = 0.0
    hits: int = 0
    misses: int = 0
    timings: dict[str, list[float]] = field(default_factory=dict)
    x_cache: dict[str, int] = field(default_factory=dict)
    csv_rows: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float | None:
        """Hits per lookup, by the cache's own counters."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None

    @property
    def answered_from_cache(self) -> float | None:
        """Share of GET answers that said ``X-Cache: HIT``: what clients saw."""
        hits, misses = self.x_cache.get("HIT", 0), self.x_cache.get("MISS", 0)
        return hits / (hits + misses) if hits + misses else None

    def percentile(self, fraction: float, name: str | None = None) -> float | None:
        """A latency percentile in ms over one request name, or over every request."""
        times = (
            self.timings.get(name, [])
            if name
            else [t for values in self.timings.values() for t in values]
        )
        if not times:
            return None
        if len(times) == 1:
            return times[0]
        return statistics.quantiles(times, n=1000, method="inclusive")[round(fraction * 1000) - 1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description="Load-test the catalog demo with and without the cache (locust).",
    )
    parser.add_argument("--users", type=int, default=20, help="concurrent locust users")
    parser.add_argument("--spawn-rate", type=int, default=None, help="default: --users")
    parser.add_argument("--duration", default="20s", help="measured period per run")
    parser.add_argument("--warmup", default="10s", help="unmeasured period first (0 for none)")
    parser.add_argument(
        "--redis",
        action="store_true",
        help="cache in two tiers, memory in front of Redis at REDIS_URL "
        "(default redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--output", type=Path, default=DOC, help="the markdown file to write")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    locust = shutil.which("locust") or str(Path(sys.executable).with_name("locust"))
    if not Path(locust).exists():
        print("locust is not installed: pip install locust (the 'bench' extra)", file=sys.stderr)
        return 2
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0") if args.redis else None
    spawn = args.spawn_rate or args.users
    load_before = _load_average()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stratacache-load-") as scratch:
        work = Path(scratch)
        template = _seed(work / "template.sqlite3")
        results = []
        for label, preset in (("cached", "development"), ("uncached", "disabled")):
            print(f"-- {label} run (CACHE_PRESET={preset}) ...", flush=True)
            results.append(
                run_once(
                    label,
                    preset,
                    work=work,
                    template=template,
                    locust=locust,
                    users=args.users,
                    spawn_rate=spawn,
                    duration=args.duration,
                    warmup=args.warmup,
                    redis_url=redis_url,
                )
            )
    document = render(
        results,
        users=args.users,
        duration=args.duration,
        warmup=args.warmup,
        redis=redis_url is not None,
        seconds=time.monotonic() - started,
        load_average=load_before,
    )
    print(document)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(document, encoding="utf-8")
        print(f"written to {args.output}")
        if args.output.resolve() == DOC and BENCHMARKS_DOC.exists():
            splice(BENCHMARKS_DOC, summary(document))
            print(f"and its results to {BENCHMARKS_DOC}")
    return 0


def summary(report: str | None = None) -> str:
    """The results and targets of a load report (default: ``docs/load.md``), for benchmarks.md."""
    if report is None:
        if not DOC.exists():
            return "Not run yet: `python -m benchmarks.load` writes `docs/load.md`."
        report = DOC.read_text(encoding="utf-8")
    lines = report.splitlines()
    stamp = next((line for line in lines if line.startswith("_Generated")), "")
    start = lines.index("## Results") + 1
    end = lines.index("## How to reproduce")
    body = [line.replace("## Targets", "**Targets**") for line in lines[start:end]]
    generated = stamp.strip("_").split(". ")[0]  # "Generated by ... on <date>, in <n> s"
    generated = generated[:1].lower() + generated[1:]
    head = (
        "HTTP under [locust](https://locust.io): the catalog demo with its cache and "
        "without. The whole report, with the method and per-request figures, is "
        f"[load.md](load.md) ({generated})."
    )
    return "\n".join([head, *body]).strip() + "\n"


def splice(document: Path, section: str) -> None:
    """Put ``section`` under ``## SUMMARY_TITLE`` in ``document``, before its targets."""
    text = document.read_text(encoding="utf-8")
    heading = f"## {SUMMARY_TITLE}\n"
    block = f"{heading}\n{section}\n"
    if heading in text:
        start = text.index(heading)
        following = text.find("\n## ", start + len(heading))
        end = len(text) if following < 0 else following + 1
        text = text[:start] + block + text[end:]
    else:
        at = text.find("## Targets\n")
        text = text + "\n" + block if at < 0 else text[:at] + block + "\n" + text[at:]
    document.write_text(text, encoding="utf-8")


def _seed(path: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "examples.catalog.seed", "--force", str(path)],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    return path


def run_once(
    label: str,
    preset: str,
    *,
    work: Path,
    template: Path,
    locust: str,
    users: int,
    spawn_rate: int,
    duration: str,
    warmup: str,
    redis_url: str | None,
) -> RunResult:
    """Start a fresh server over a fresh copy of the catalog, load it, read the results."""
    result = RunResult(label, preset)
    database = Path(shutil.copy(template, work / f"{label}.sqlite3"))
    api_key = secrets.token_urlsafe(24)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CACHE_", "REDIS_")) and name != "API_KEY"
    }
    environment.update(CATALOG_DB=str(database), API_KEY=api_key, CACHE_PRESET=preset)
    if redis_url is not None:
        environment["REDIS_URL"] = redis_url
        namespace = f"stratacache-load-{secrets.token_hex(6)}"
        environment["CACHE_CUSTOM_CONFIG"] = json.dumps({"namespace": namespace})
    log = (work / f"{label}-server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "examples.catalog", "--port", str(port), "--no-access-log"],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_until_up(server, f"{base}/internal/cache/health", work / f"{label}-server.log")
        if _seconds(warmup) > 0:
            _locust(locust, base, users, spawn_rate, warmup, work / f"{label}-warmup", None)
        before = _counters(base, api_key)
        timings_file = work / f"{label}-timings.json"
        prefix = work / label
        _locust(locust, base, users, spawn_rate, duration, prefix, timings_file)
        after = _counters(base, api_key)
        if redis_url is not None:
            _clear_namespace(base, api_key)
    finally:
        _stop(server)
        log.close()
    result.hits, result.misses = after[0] - before[0], after[1] - before[1]
    recorded = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    result.timings = recorded.get("timings", {})
    result.x_cache = recorded.get("x_cache", {})
    result.csv_rows = _read_csv(Path(f"{prefix}_stats.csv"))
    total = result.csv_rows.get("Aggregated", {})
    result.requests = int(total.get("Request Count", 0))
    result.failures = int(total.get("Failure Count", 0))
    result.requests_per_s = float(total.get("Requests/s", 0.0))
    return result


def _locust(
    locust: str,
    base: str,
    users: int,
    spawn_rate: int,
    duration: str,
    prefix: Path,
    timings: Path | None,
) -> None:
    environment = {**os.environ, "LOCUST_TIMINGS": str(timings) if timings else ""}
    command = [
        locust,
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        duration,
        "--host",
        base,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    subprocess.run(
        command,
        cwd=ROOT,
        env=environment,
        check=True,
        timeout=_seconds(duration) + 60,
        stdout=subprocess.DEVNULL,
    )


def _counters(base: str, api_key: str) -> tuple[int, int]:
    """(hits, misses) the cache has counted so far, from the management API."""
    request = urllib.request.Request(
        f"{base}/internal/cache/status", headers={"X-API-Key": api_key}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        performance = json.loads(response.read())["performance"]
    return int(performance["hits"]), int(performance["misses"])


def _clear_namespace(base: str, api_key: str) -> None:
    request = urllib.request.Request(
        f"{base}/internal/cache/invalidate?pattern=*",
        method="POST",
        headers={"X-API-Key": api_key},
    )
    with urllib.request.urlopen(request, timeout=30):
        pass


def _wait_until_up(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while True:  # bounded polling of the real server process
        if server.poll() is not None:
            raise RuntimeError(f"the demo exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the demo did not answer within {_STARTUP_TIMEOUT:g} s")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=_STOP_TIMEOUT)
    except ProcessLookupError:
        pass


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as file:
        return {
            (row["Name"] if row["Name"] == "Aggregated" else f"{row['Type']} {row['Name']}"): row
            for row in csv.DictReader(file)
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _seconds(duration: str) -> float:
    """Locust's ``-t`` syntax: ``20s``, ``1m``, ``1m30s``, or a bare number of seconds."""
    text, total, number = duration.strip(), 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total += float(number) * units[char]
            number = ""
        else:
            raise ValueError(f"not a duration: {duration!r}")
    return total + (float(number) if number else 0.0)


def _load_average() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


# -- the report --------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def render(
    results: Sequence[RunResult],
    *,
    users: int,
    duration: str,
    warmup: str,
    redis: bool,
    seconds: float,
    load_average: str,
) -> str:
    cached, uncached = results
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tier = "memory in front of Redis" if redis else "memory only, the demo's default"
    lines = [
        "# Load test: the catalog demo with and without the cache",
        "",
        f"_Generated by `python -m benchmarks.load` on {now}, in {seconds:.0f} s. This file is "
        "rewritten wholly on every run: do not edit it by hand._",
        "",
        "The catalog demo (`examples/catalog`: FastAPI, SQLite through SQLAlchemy async, "
        "10,000 products in 50 categories) under [locust](https://locust.io), run twice on "
        "fresh copies of the same catalog: with its cache "
        f"({tier}) and with caching disabled (`CACHE_PRESET=disabled`, a `NullCache`: "
        "every read queries SQLite).",
        "",
        f"- **Load:** {users} users, each waiting 5-15 ms between requests; {warmup} warm-up "
        f"(not measured), then {duration} measured per run",
        "- **Traffic** (`benchmarks/locustfile.py`): 85% `GET /products/{id}` (Zipf s=1.1 over "
        "10,000 products), 13% `GET /products?category=&limit=` (Zipf over 50 categories), "
        "1.5% `PATCH`, 0.5% `POST` + `DELETE`; every write drops its entries after the commit",
        f"- **Machine:** {os.cpu_count()} CPUs shared by the server, locust and anything else "
        f"running; load average at the start {load_average}; "
        f"{platform.python_implementation()} {platform.python_version()}",
        "- **Hit rate:** *GETs from cache* is the share of GET answers carrying "
        "`X-Cache: HIT` (counted by locust: what clients got); *hit rate (counters)* is "
        "the cache's own hits / (hits + misses) from `/internal/cache/status`, read before "
        "and after the measured period",
        "",
        "## Results",
        "",
        "| run | requests | requests/s | failures | GETs from cache | hit rate (counters) "
        "| p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        enabled = result.preset != "disabled"
        lines.append(
            f"| {result.label} (`CACHE_PRESET={result.preset}`) | {result.requests:,} "
            f"| {result.requests_per_s:,.0f} | {result.failures:,} "
            f"| {_percent(result.answered_from_cache)} "
            f"| {_percent(result.hit_rate if enabled else None)} "
            f"| {_ms(result.percentile(0.50))} | {_ms(result.percentile(0.95))} "
            f"| {_ms(result.percentile(0.99))} |"
        )
    p50 = _ratio(cached.percentile(0.50), uncached.percentile(0.50))
    p95 = _ratio(cached.percentile(0.95), uncached.percentile(0.95))
    throughput = _ratio(cached.requests_per_s, uncached.requests_per_s)
    product_p50 = _ratio(
        cached.percentile(0.50, PRODUCT_READS), uncached.percentile(0.50, PRODUCT_READS)
    )
    lines += [
        "",
        "| ratio, cached / uncached | value |",
        "|---|---:|",
        f"| p50 latency, all requests | {_fmt_ratio(p50)} |",
        f"| p95 latency, all requests | {_fmt_ratio(p95)} |",
        f"| p50 latency, `GET /products/{{id}}` | {_fmt_ratio(product_p50)} |",
        f"| requests/s | {_fmt_ratio(throughput)} |",
        "",
        "Per request type (ms):",
        "",
        "| request | cached p50 | cached p95 | uncached p50 | uncached p95 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in sorted(set(cached.timings) | set(uncached.timings)):
        lines.append(
            f"| `{name}` | {_ms(cached.percentile(0.5, name))} "
            f"| {_ms(cached.percentile(0.95, name))} | {_ms(uncached.percentile(0.5, name))} "
            f"| {_ms(uncached.percentile(0.95, name))} |"
        )
    hit_rate = cached.answered_from_cache
    targets = [
        (
            f"hit rate under load > {TARGET_HIT_RATE:.0%} (GETs answered from the cache)",
            hit_rate is not None and hit_rate > TARGET_HIT_RATE,
            _percent(hit_rate),
        ),
        (
            f"cached p50 < {TARGET_P50_RATIO:.0%} of uncached",
            p50 is not None and p50 < TARGET_P50_RATIO,
            _fmt_ratio(p50),
        ),
        (
            "no failed requests",
            cached.failures == 0 and uncached.failures == 0,
            f"{cached.failures + uncached.failures}",
        ),
    ]
    lines += ["", "## Targets", "", "| target | result | measured |", "|---|---|---:|"]
    for name, passed, measured in targets:
        lines.append(f"| {name} | {'PASS' if passed else 'FAIL'} | {measured} |")
    lines += [
        "",
        "Both runs saturate the server (users send their next request 5-15 ms after the "
        "last answer), so latency includes queueing: what a user sees when the service is "
        "busy. Writes (`PATCH`, `POST`, `DELETE`) always go to SQLite, and cost a little more "
        "in the cached run, whose server is busier (it answers more requests per second). "
        "Their invalidations, and the first reads of the catalog's long tail, are what keeps "
        "the hit rate below 100%.",
        "",
        "## How to reproduce",
        "",
        "```sh",
        "pip install locust                       # or the 'bench' extra",
        "python -m benchmarks.load                # this file (about a minute)",
        "python -m benchmarks.load --redis        # memory in front of Redis at REDIS_URL",
        "python -m benchmarks.load --users 50 --duration 60s --no-write",
        "stratacache bench --load                 # the same, through the CLI",
        "```",
        "",
    ]
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
