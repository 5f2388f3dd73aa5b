"""Real ``redis-server`` processes for fault, Cluster and Sentinel tests.

The shared Redis on ``127.0.0.1:6379`` (see ``conftest.py``) is for ordinary tests. Tests that
must *hurt* a server -- kill it, pause it, fail over a primary -- start their own here, on free
loopback ports, and those servers are gone when the test ends, pass or fail.

Three building blocks, each a context manager that cleans up after itself:

``RedisServer``
    One ``redis-server`` subprocess (``--save "" --appendonly no``, its own temp dir and
    logfile). ``kill()``, ``stop()``, ``restart()`` on the same port, ``pause(seconds)``
    (``CLIENT PAUSE``), ``freeze()`` / ``thaw()`` (SIGSTOP / SIGCONT).
``RedisCluster``
    ``primaries`` primaries and ``replicas`` replicas per primary, joined with
    ``redis-cli --cluster create``; ``kill_primary_of(key)`` and ``wait_failover()``.
``RedisSentinel``
    A master, one replica and one sentinel watching them as ``mymaster``.

This module is also a pytest plugin: add ``pytest_plugins = ["redis_servers"]`` to
``tests/conftest.py`` (or run ``pytest -p redis_servers``) to get the fixtures
``redis_server`` (function), ``redis_cluster`` (module; 3 primaries),
``redis_cluster_with_replicas`` (function; 3 primaries + 1 replica each) and ``redis_sentinel``
(module). Fixtures skip with the reason when a binary is missing, and fail instead when
``CI=true``. Module-scoped instances are shared: a test that kills or pauses nodes uses a
function-scoped fixture or its own instance::

    @pytest.mark.redis
    def test_survives_restart(redis_server: RedisServer) -> None:
        redis_server.kill()
        redis_server.restart()

Every wait here is bounded both in time and in iterations; a timeout raises ``TimeoutError`` (or
``RedisServerError`` when a process died) with the tail of the server's log in the message.
Inspection clients (``RedisServer.client()``) do not retry: see ``no_retry()``. Set
``REDIS_SERVERS_KEEP_DIRS=1`` to keep the temp dirs (logs, configs) for a post-mortem, and
``REDIS_SERVER_BIN`` / ``REDIS_CLI_BIN`` to use other binaries.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster as ClusterClient
from redis.retry import Retry

from _support import skip_or_fail

__all__ = [
    "HOST",
    "RedisCluster",
    "RedisSentinel",
    "RedisServer",
    "RedisServerError",
    "free_port",
    "no_retry",
    "redis_cluster",
    "redis_cluster_with_replicas",
    "redis_sentinel",
    "redis_server",
    "require_binaries",
    "wait_until",
]

HOST = "127.0.0.1"
REDIS_SERVER_BIN = os.environ.get("REDIS_SERVER_BIN", "redis-server")
REDIS_CLI_BIN = os.environ.get("REDIS_CLI_BIN", "redis-cli")
CLUSTER_SLOTS = 16384
CLUSTER_BUS_OFFSET = 10000  # Redis Cluster's bus listens on port + 10000.
_RESERVED_PORTS = frozenset({6379, 6379 + CLUSTER_BUS_OFFSET, 26379})  # the shared Redis
_POLL = 0.05  # seconds between two polls of any wait loop
_PORT_ATTEMPTS = 5  # tries to start on a fresh port when the chosen one was taken meanwhile
_KEEP_DIRS = os.environ.get("REDIS_SERVERS_KEEP_DIRS", "").lower() in ("1", "true", "yes")

T = TypeVar("T")


class RedisServerError(RuntimeError):
    """A server process could not be started or died while we waited for it."""


class _PortInUseError(RedisServerError):
    """The process exited because its port (or cluster bus port) was taken."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(*, cluster_bus: bool = False) -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then release).

    With ``cluster_bus=True`` the port's cluster bus port (``port + 10000``) must be free and
    below 65536 too. Another process may still take the port before the server binds it:
    ``RedisServer.start()`` retries on a fresh port when that happens. Never the shared 6379.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port in _RESERVED_PORTS:
            continue
        if cluster_bus and (
            port + CLUSTER_BUS_OFFSET > 65535 or not _port_is_free(port + CLUSTER_BUS_OFFSET)
        ):
            continue
        return port
    raise RedisServerError("no free port found on 127.0.0.1 in 200 tries")


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = _POLL,
) -> T:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    Bounded twice: by ``timeout`` seconds of wall-clock time and by ``timeout / interval + 2``
    calls. ``redis.RedisError`` and ``OSError`` raised by the predicate count as "not yet";
    the last one is quoted in the ``TimeoutError`` that ends an unsuccessful wait.
    """
    deadline = time.monotonic() + timeout
    last: str = "predicate was falsy"
    for _ in range(int(timeout / interval) + 2):
        try:
            value = predicate()
        except (redis.RedisError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"{what} not within {timeout:g} s (last: {last})")


def require_binaries(*names: str) -> None:
    """Skip the test when a binary is missing -- or fail it when ``CI=true``."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    skip_or_fail(f"{', '.join(missing)} not found on PATH; install Redis (apt-get install redis)")


def _parse_info(text: str) -> dict[str, str]:
    """``key:value`` lines of INFO / CLUSTER INFO text into a dict."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


def no_retry() -> Retry:
    """A redis-py ``Retry`` that never retries.

    redis-py (>= 6) retries timeouts and connection errors 3 times with backoff by default,
    which hides exactly what fault tests look for (a ``TimeoutError`` during ``CLIENT PAUSE``)
    and makes every poll of a dead port slow.
    """
    return Retry(NoBackoff(), 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# Every server still running, so that an interpreter exit (a crashed session, a Ctrl-C) leaves no
# orphan; the strong reference also means a forgotten server is never garbage-collected while its
# Popen is alive (which would raise a ResourceWarning -- an error under ``filterwarnings=error``).
_LIVE: set[RedisServer] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.kill()


# --------------------------------------------------------------------------------------------
# One server
# --------------------------------------------------------------------------------------------


_S = TypeVar("_S", bound="_Started")


class _Started:
    """A context manager that starts on entry (closing again if starting fails)."""

    def start(self: _S) -> _S:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisServer(_Started):
    """One ``redis-server`` subprocess on 127.0.0.1, in its own temp dir.

    Defaults besides the port and dirs: ``--save "" --appendonly no``,
    ``--repl-diskless-sync-delay 0`` (a replica syncs at once instead of after 5 s) and
    ``--enable-debug-command local`` (``DEBUG SLEEP`` for slow-server tests).
    ``extra_args`` go to the command line after the defaults, and ``{port}`` in them becomes the
    port (``"--cluster-config-file", "nodes-{port}.conf"``). ``sentinel_config`` turns the
    process into a sentinel: the lines are written to ``sentinel.conf`` (after ``port``,
    ``bind``, ``dir``, ``logfile``) and it runs as ``redis-server sentinel.conf --sentinel``.

    ``start()`` returns once the process answers PING *and* ``INFO server`` names its own pid
    (so a stranger on a reused port is never mistaken for it). The first start picks a free
    port and retries on another if it was taken meanwhile; later starts keep that port.
    """

    def __init__(
        self,
        *extra_args: str,
        port: int | None = None,
        sentinel_config: Sequence[str] | None = None,
        start_timeout: float = 5.0,
        name: str = "redis",
    ) -> None:
        self.extra_args: tuple[str, ...] = extra_args
        self.sentinel_config: tuple[str, ...] | None = (
            tuple(sentinel_config) if sentinel_config is not None else None
        )
        self.start_timeout = start_timeout
        self.name = name
        self.host = HOST
        self.dir = Path(tempfile.mkdtemp(prefix=f"stratacache-{name}-"))
        self.logfile = self.dir / "redis.log"
        self.outfile = self.dir / "stdout.log"  # early errors, before the logfile is open
        self._port = port
        self._port_pinned = port is not None
        self._cluster_bus = "--cluster-enabled" in extra_args
        self._process: subprocess.Popen[bytes] | None = None
        self._offsets: tuple[int, int] = (0, 0)
        self._frozen = False

    # -- properties ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The server's port (chosen at the first ``start()`` unless given)."""
        if self._port is None:
            raise RedisServerError(f"{self.name} has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return (self.host, self.port)

    @property
    def pid(self) -> int | None:
        """The process id while running, else ``None``."""
        return self._process.pid if self.is_running and self._process is not None else None

    @property
    def is_running(self) -> bool:
        """Whether the process is alive (it may still be starting, or paused)."""
        return self._process is not None and self._process.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<RedisServer {self.name} {self.host}:{self._port} {state}>"

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> RedisServer:
        """Start the process and wait (at most ``start_timeout`` s) until it answers.

        A no-op when already running. Raises ``RedisServerError`` if the process exits (the
        message quotes its log) and ``TimeoutError`` if it never answers.
        """
        if self.is_running:
            return self
        last_error: RedisServerError | None = None
        for _ in range(_PORT_ATTEMPTS):
            if self._port is None:
                self._port = free_port(cluster_bus=self._cluster_bus)
            process = self._spawn()
            try:
                self._wait_up(process)
            except _PortInUseError as exc:
                self._reap(process)
                last_error = exc
                if self._port_pinned:
                    time.sleep(0.2)  # e.g. a client's ephemeral port; it goes away soon
                else:
                    self._port = None
                continue
            except BaseException:
                self._reap(process)
                raise
            self._port_pinned = True  # restart() comes back on the same port
            return self
        raise RedisServerError(
            f"{self.name}: port conflict {_PORT_ATTEMPTS} times in a row: {last_error}"
        )

    def kill(self) -> None:
        """SIGKILL the process and reap it: a crash, nothing is saved. No-op when stopped."""
        process, self._process = self._process, None
        _LIVE.discard(self)
        if process is not None:
            self._reap(process)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if still alive after ``timeout`` s."""
        process, self._process = self._process, None
        _LIVE.discard(self)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            if self._frozen:
                process.send_signal(signal.SIGCONT)  # a stopped process cannot shut down
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout)
        self._reap(process)

    def restart(self, *, kill: bool = False) -> RedisServer:
        """Stop (or SIGKILL with ``kill=True``) if running, then start again on the same port."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the process and remove its temp dir (kept if ``REDIS_SERVERS_KEEP_DIRS=1``)."""
        self.stop()
        if not _KEEP_DIRS:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- faults and inspection ----------------------------------------------------------------

    def pause(self, seconds: float, mode: Literal["ALL", "WRITE"] = "ALL") -> None:
        """``CLIENT PAUSE <ms> ALL``: every client's commands block for ``seconds``.

        Returns at once; the pause ends by itself. Connections are still accepted, but with
        redis-py even connecting hangs (its handshake sends ``CLIENT SETINFO``). Redis 7.0 holds
        ``CLIENT UNPAUSE`` too while an ``ALL`` pause lasts, so ``unpause()`` only shortens
        ``mode="WRITE"`` pauses; for a hang that can be ended at will, see ``freeze()``.
        """
        with self.client(decode_responses=True) as client:
            client.execute_command("CLIENT", "PAUSE", max(1, round(seconds * 1000)), mode)

    def unpause(self) -> None:
        """``CLIENT UNPAUSE``: end a ``WRITE`` pause early (an ``ALL`` pause holds this too)."""
        with self.client(decode_responses=True) as client:
            client.execute_command("CLIENT", "UNPAUSE")

    def freeze(self) -> None:
        """SIGSTOP the process: a hung server (the kernel still accepts connections)."""
        if self._process is not None and self.is_running:
            self._process.send_signal(signal.SIGSTOP)
            self._frozen = True

    def thaw(self) -> None:
        """SIGCONT a ``freeze()``-d process; it answers again at once."""
        if self._process is not None and self._frozen:
            self._process.send_signal(signal.SIGCONT)
        self._frozen = False

    def client(self, **kwargs: Any) -> redis.Redis:
        """A sync ``redis.Redis`` for inspection (close it, or use it as a context manager).

        Defaults: ``socket_timeout=5``, ``socket_connect_timeout=2`` and *no retries*
        (``retry=no_retry()``: an error or timeout surfaces at once); ``kwargs`` override them.
        """
        options: dict[str, Any] = {
            "socket_timeout": 5.0,
            "socket_connect_timeout": 2.0,
            "retry": no_retry(),
        }
        options.update(kwargs)
        return redis.Redis(host=self.host, port=self.port, **options)

    def info(self, section: str = "server") -> dict[str, str]:
        """``INFO section`` as a dict of strings."""
        with self.client(decode_responses=True) as client:
            fields = client.info(section)
        return {str(key): str(value) for key, value in fields.items()}

    def command(self, *args: Any, timeout: float = 5.0) -> Any:
        """Run one raw command on a short-lived client (``decode_responses=True``)."""
        with self.client(
            decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout
        ) as client:
            return client.execute_command(*args)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's logfile and captured stdout/stderr, for error messages."""
        parts = []
        for path in (self.outfile, self.logfile):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text.strip():
                parts.append(f"--- {path.name} ---\n{text[-chars:]}")
        return "\n".join(parts) or "(no log output)"

    # -- internals ----------------------------------------------------------------------------

    def _command(self) -> list[str]:
        port = str(self.port)
        if self.sentinel_config is not None:
            conf = self.dir / "sentinel.conf"
            lines = [
                f"port {port}",
                f"bind {self.host}",
                f"dir {self.dir}",
                f"logfile {self.logfile}",
                "daemonize no",
                *(line.replace("{port}", port) for line in self.sentinel_config),
            ]
            if not conf.exists():  # the sentinel rewrites it (myid, known replicas): keep that
                conf.write_text("\n".join(lines) + "\n")
            head = [REDIS_SERVER_BIN, str(conf), "--sentinel"]
        else:
            head = [
                REDIS_SERVER_BIN,
                "--port", port,
                "--bind", self.host,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
                "--logfile", str(self.logfile),
                "--daemonize", "no",
                "--enable-debug-command", "local",
                "--repl-diskless-sync-delay", "0",  # else a replica's first sync waits 5 s
            ]  # fmt: skip
        return head + [arg.replace("{port}", port) for arg in self.extra_args]

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = self._command()
        sizes = [p.stat().st_size if p.exists() else 0 for p in (self.outfile, self.logfile)]
        self._offsets = (sizes[0], sizes[1])  # where this attempt's output starts in each log
        # The child gets its own copy of the fd; ours is closed at once (no ResourceWarning).
        with open(self.outfile, "ab") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                close_fds=True,
            )
        self._process = process
        _LIVE.add(self)
        return process

    def _wait_up(self, process: subprocess.Popen[bytes]) -> None:
        client = redis.Redis(
            host=self.host,
            port=self.port,
            socket_timeout=0.25,
            socket_connect_timeout=0.25,
            decode_responses=True,
            retry=no_retry(),
        )

        def answered() -> bool:
            if process.poll() is not None:
                fresh = self._output_since(self._offsets)
                if "in use" in fresh:  # "bind: Address already in use" (port or cluster bus)
                    raise _PortInUseError(f"{self.name} on port {self.port}: {fresh[-600:]}")
                raise RedisServerError(
                    f"{self.name} exited with code {process.returncode} while starting "
                    f"on port {self.port}; command: {self._command()}\n{self.log_tail()}"
                )
            return str(client.info("server").get("process_id")) == str(process.pid)

        try:
            wait_until(answered, timeout=self.start_timeout, what=f"{self.name} answering PING")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log_tail()}") from None
        finally:
            client.close()

    def _output_since(self, offsets: tuple[int, int]) -> str:
        text = ""
        for path, offset in zip((self.outfile, self.logfile), offsets, strict=True):
            try:
                with open(path, "rb") as file:
                    file.seek(offset)
                    text += file.read().decode(errors="replace")
            except OSError:
                pass
        return text

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.kill()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            raise RedisServerError(f"{self.name} pid {process.pid} survived SIGKILL") from None
        if self._process is process:
            self._process = None
            _LIVE.discard(self)
        self._frozen = False


# --------------------------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------------------------


def _cluster_nodes(server: RedisServer) -> list[dict[str, str]]:
    """``CLUSTER NODES`` of one server: dicts with id, port, flags, master, slots."""
    text = _text(server.command("CLUSTER", "NODES", timeout=1.0))
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        address = parts[1].split("@")[0].split(",")[0]
        nodes.append(
            {
                "id": parts[0],
                "port": address.rpartition(":")[2],
                "flags": parts[2],
                "master": parts[3],
                "link": parts[7],
                "slots": " ".join(parts[8:]),
            }
        )
    return nodes


class RedisCluster(_Started):
    """A Redis Cluster of ``primaries`` primaries with ``replicas`` replicas each, on loopback.

    Every node is a ``RedisServer`` run with ``--cluster-enabled yes --cluster-config-file
    nodes-PORT.conf --cluster-node-timeout NODE_TIMEOUT_MS`` (2000 by default, so a failover
    takes seconds) and ``--cluster-replica-validity-factor 0`` (a replica may always take over).
    ``start()`` creates the cluster with ``redis-cli --cluster create ... --cluster-yes`` and
    returns once every node reports ``cluster_state:ok`` with all 16384 slots assigned and ok,
    every node knows every other and every replica's link to its primary is up.
    """

    def __init__(
        self,
        primaries: int = 3,
        replicas: int = 0,
        *,
        node_timeout_ms: int = 2000,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 30.0,
    ) -> None:
        if primaries < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 primaries")
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        self.primary_count = primaries
        self.replica_count = replicas
        self.node_timeout_ms = node_timeout_ms
        self.ready_timeout = ready_timeout
        args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes-{port}.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
            "--cluster-replica-validity-factor", "0",
            *extra_args,
        )  # fmt: skip
        self.servers: list[RedisServer] = [
            RedisServer(*args, name=f"cluster-node{i}") for i in range(primaries * (1 + replicas))
        ]

    # -- properties ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:PORT``, PORT that of the first running primary."""
        return f"redis+cluster://{HOST}:{self.primaries()[0].port}"

    @property
    def startup_nodes(self) -> list[ClusterNode]:
        """A ``ClusterNode`` for every running node, for ``redis.cluster.RedisCluster``."""
        return [
            ClusterNode(server.host, server.port)  # type: ignore[no-untyped-call]
            for server in self.running()
        ]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every running node."""
        return [server.address for server in self.running()]

    def running(self) -> list[RedisServer]:
        """The nodes whose process is alive."""
        return [server for server in self.servers if server.is_running]

    def primaries(self) -> list[RedisServer]:
        """Running nodes whose ``ROLE`` is master, in start order (changes after a failover)."""
        return [s for s in self.running() if s.info("replication").get("role") == "master"]

    def replicas(self) -> list[RedisServer]:
        """Running nodes whose ``ROLE`` is slave, in start order."""
        return [s for s in self.running() if s.info("replication").get("role") == "slave"]

    def node_by_port(self, port: int) -> RedisServer:
        """The node listening on ``port``."""
        for server in self.servers:
            if server.port == port:
                return server
        raise KeyError(f"no cluster node on port {port}")

    def client(self, **kwargs: Any) -> ClusterClient:
        """A sync ``redis.cluster.RedisCluster`` over the running nodes (close it after use).

        Defaults: ``socket_timeout=5``, ``socket_connect_timeout=2`` and redis-py's own retry
        policy (it follows MOVED and re-reads the slots after a failover); ``kwargs`` override.
        """
        options: dict[str, Any] = {"socket_timeout": 5.0, "socket_connect_timeout": 2.0}
        options.update(kwargs)
        return ClusterClient(startup_nodes=self.startup_nodes, **options)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> RedisCluster:
        """Start every node, create the cluster, wait until it is ready (bounded)."""
        for server in self.servers:
            server.start()
        command = [
            REDIS_CLI_BIN,
            "--cluster", "create",
            *(f"{server.host}:{server.port}" for server in self.servers),
            "--cluster-replicas", str(self.replica_count),
            "--cluster-yes",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.ready_timeout,
                check=False,
                env={**os.environ, "REDISCLI_HISTFILE": "/dev/null"},
            )
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(
                f"redis-cli --cluster create still running after {self.ready_timeout:g} s: "
                f"{_text(exc.stdout or b'')[-2000:]}"
            ) from None
        output = _text(result.stdout) + _text(result.stderr)
        if result.returncode != 0 or "[OK] All 16384 slots covered" not in output:
            raise RedisServerError(f"{' '.join(command)} failed ({result.returncode}):\n{output}")
        wait_until(
            self._ready,
            timeout=self.ready_timeout,
            what=f"cluster of {len(self.servers)} nodes reporting cluster_state:ok",
        )
        return self

    def stop(self) -> None:
        """Stop every node (they can be started again with their config)."""
        for server in self.servers:
            server.stop()

    def close(self) -> None:
        """Stop every node and remove the temp dirs."""
        for server in self.servers:
            server.close()

    # -- faults -------------------------------------------------------------------------------

    def keyslot(self, key: str | bytes) -> int:
        """``CLUSTER KEYSLOT key`` (hash tags respected)."""
        return int(self.running()[0].command("CLUSTER", "KEYSLOT", key))

    def owner_of(self, key: str | bytes) -> RedisServer:
        """The primary serving ``key``'s slot, per ``CLUSTER SLOTS`` of a running node."""
        slot = self.keyslot(key)
        for entry in self.running()[0].command("CLUSTER", "SLOTS"):
            first, last, primary = int(entry[0]), int(entry[1]), entry[2]
            if first <= slot <= last:
                return self.node_by_port(int(primary[1]))
        raise RedisServerError(f"slot {slot} of {key!r} is not served")

    def kill_primary_of(self, key: str | bytes) -> RedisServer:
        """SIGKILL the primary that serves ``key``'s slot; returns that (dead) node."""
        owner = self.owner_of(key)
        owner.kill()
        return owner

    def wait_failover(self, timeout: float = 10.0) -> None:
        """Wait until the cluster is whole again without the dead nodes.

        On every running node: ``cluster_state:ok``, all slots assigned and ok, and every slot
        owned by a running node (right after a kill the others still say ``ok``: that is not a
        failover yet).
        """
        wait_until(
            self._failed_over,
            timeout=timeout,
            what="cluster failover (every slot on a running primary, cluster_state:ok)",
        )

    # -- internals ----------------------------------------------------------------------------

    def _state_ok(self, server: RedisServer) -> bool:
        fields = _parse_info(_text(server.command("CLUSTER", "INFO", timeout=1.0)))
        return (
            fields.get("cluster_state") == "ok"
            and fields.get("cluster_slots_assigned") == str(CLUSTER_SLOTS)
            and fields.get("cluster_slots_ok") == str(CLUSTER_SLOTS)
        )

    def _ready(self) -> bool:
        total = len(self.servers)
        for server in self.servers:
            if not self._state_ok(server):
                return False
            nodes = _cluster_nodes(server)
            if len(nodes) != total:
                return False
            if any(bad in n["flags"] for n in nodes for bad in ("fail", "handshake", "noaddr")):
                return False
            masters = [n for n in nodes if "master" in n["flags"] and n["slots"]]
            slaves = [n for n in nodes if "slave" in n["flags"]]
            if len(masters) != self.primary_count or len(slaves) != total - self.primary_count:
                return False
            replication = server.info("replication")
            if replication.get("role") == "slave" and (
                replication.get("master_link_status") != "up"
            ):
                return False
        return True

    def _failed_over(self) -> bool:
        alive = {str(server.port) for server in self.running()}
        for server in self.running():
            if not self._state_ok(server):
                return False
            for node in _cluster_nodes(server):
                if "master" in node["flags"] and node["slots"] and node["port"] not in alive:
                    return False
        return True


# --------------------------------------------------------------------------------------------
# Sentinel
# --------------------------------------------------------------------------------------------


class RedisSentinel(_Started):
    """A master, one replica (``--replicaof``) and one sentinel monitoring them.

    The sentinel config: ``sentinel monitor SERVICE 127.0.0.1 MPORT 1`` (quorum 1),
    ``down-after-milliseconds 1000``, ``failover-timeout 3000``. ``start()`` returns once the
    replica's ``master_link_status`` is ``up`` and the sentinel knows the master and the replica.
    ``master`` and ``replica`` name the servers as started; after ``kill_master()`` and
    ``wait_failover()`` ask ``current_master()``.
    """

    def __init__(
        self,
        service_name: str = "mymaster",
        *,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        ready_timeout: float = 15.0,
    ) -> None:
        self.service_name = service_name
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.ready_timeout = ready_timeout
        self.master = RedisServer(name="sentinel-master")
        self.replica = RedisServer(name="sentinel-replica")  # --replicaof added at start()
        self.sentinel = RedisServer(name="sentinel", sentinel_config=())  # config at start()

    @property
    def sentinel_port(self) -> int:
        """The sentinel's port."""
        return self.sentinel.port

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:SPORT/SERVICE/0``."""
        return f"redis+sentinel://{HOST}:{self.sentinel_port}/{self.service_name}/0"

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """``[(host, port)]`` of the sentinel, for ``redis.sentinel.Sentinel``."""
        return [self.sentinel.address]

    def sentinel_client(self, **kwargs: Any) -> redis.Redis:
        """A sync ``redis.Redis`` connected to the sentinel itself (close it after use)."""
        return self.sentinel.client(**kwargs)

    def master_address(self) -> tuple[str, int]:
        """``SENTINEL get-master-addr-by-name SERVICE`` as ``(host, port)``."""
        reply = self.sentinel.command(
            "SENTINEL", "get-master-addr-by-name", self.service_name, timeout=1.0
        )
        if not reply:
            raise RedisServerError(f"sentinel does not know {self.service_name!r}")
        return (_text(reply[0]), int(reply[1]))

    def current_master(self) -> RedisServer:
        """The server the sentinel names as master now."""
        port = self.master_address()[1]
        for server in (self.master, self.replica):
            if server.port == port:
                return server
        raise RedisServerError(f"sentinel names an unknown master on port {port}")

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> RedisSentinel:
        """Start master, replica, sentinel; wait until replication and monitoring are up."""
        self.master.start()
        self.replica.extra_args = ("--replicaof", HOST, str(self.master.port))
        self.replica.start()
        wait_until(
            lambda: self.replica.info("replication").get("master_link_status") == "up",
            timeout=self.ready_timeout,
            what="replica's master_link_status:up",
        )
        name = self.service_name
        self.sentinel.sentinel_config = (
            f"sentinel monitor {name} {HOST} {self.master.port} 1",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
        )
        self.sentinel.start()
        wait_until(self._monitoring, timeout=self.ready_timeout, what="sentinel knowing both")
        return self

    def kill_master(self) -> RedisServer:
        """SIGKILL the current master; returns it."""
        master = self.current_master()
        master.kill()
        return master

    def wait_failover(self, timeout: float = 15.0) -> RedisServer:
        """Wait until the sentinel names a running server as master and that server is one."""

        def promoted() -> RedisServer | None:
            port = self.master_address()[1]
            for server in (self.master, self.replica):
                if (
                    server.port == port
                    and server.is_running
                    and server.info("replication").get("role") == "master"
                ):
                    return server
            return None

        return wait_until(promoted, timeout=timeout, what="sentinel failover")

    def close(self) -> None:
        """Stop all three processes and remove their temp dirs."""
        for server in (self.sentinel, self.replica, self.master):
            server.close()

    def _monitoring(self) -> bool:
        if self.master_address() != self.master.address:
            return False
        replicas = self.sentinel.command("SENTINEL", "REPLICAS", self.service_name, timeout=1.0)
        for entry in replicas:  # redis-py makes each a dict; raw RESP2 would be a flat list
            if isinstance(entry, list):
                entry = dict(zip(entry[::2], entry[1::2], strict=True))
            fields = {_text(key): value for key, value in entry.items()}
            flags = _text(fields.get("flags", ""))
            if int(fields.get("port", 0)) == self.replica.port and "down" not in flags:
                return True
        return False


# --------------------------------------------------------------------------------------------
# pytest fixtures (register with ``pytest_plugins = ["redis_servers"]`` in tests/conftest.py)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh single ``redis-server`` for this test; killed and removed afterwards."""
    require_binaries(REDIS_SERVER_BIN)
    with RedisServer(name="server") as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A 3-primary cluster shared by the session's tests: do not kill or pause its nodes."""
    require_binaries(REDIS_SERVER_BIN, REDIS_CLI_BIN)
    with RedisCluster(primaries=3, replicas=0) as cluster:
        yield cluster


@pytest.fixture
def redis_cluster_with_replicas() -> Iterator[RedisCluster]:
    """A fresh 3-primary cluster with one replica per primary, for failover tests."""
    require_binaries(REDIS_SERVER_BIN, REDIS_CLI_BIN)
    # A 1 s node timeout: failures are detected, and replicas promoted, sooner.
    with RedisCluster(primaries=3, replicas=1, node_timeout_ms=1000) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinel]:
    """Master + replica + sentinel (``mymaster``) shared by the module: do not kill nodes."""
    require_binaries(REDIS_SERVER_BIN)
    with RedisSentinel() as sentinel:
        yield sentinel
