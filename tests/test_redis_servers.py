"""Self-tests of ``redis_servers``: the servers we start for fault, Cluster and Sentinel tests.

The fixtures come from the ``redis_servers`` plugin (``pytest_plugins = ["redis_servers"]`` in
``tests/conftest.py``, or ``pytest -p redis_servers``).
"""

from __future__ import annotations

import time

import pytest
import redis
from redis.cluster import RedisCluster as RedisClusterClient

from redis_servers import (
    REDIS_SERVER_BIN,
    RedisCluster,
    RedisSentinel,
    RedisServer,
    RedisServerError,
    free_port,
    no_retry,
    require_binaries,
    wait_until,
)


def test_free_port_is_bindable_and_not_the_shared_one() -> None:
    port = free_port(cluster_bus=True)
    assert port not in (6379, 16379)
    assert 1024 < port <= 65535 - 10000


def test_wait_until_is_bounded() -> None:
    calls = []
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="never"):
        wait_until(lambda: calls.append(1), timeout=0.2, interval=0.05, what="never")
    assert time.monotonic() - started < 1.0
    assert 1 <= len(calls) <= 6


@pytest.mark.redis
def test_server_starts_answers_is_killed_and_restarts_on_the_same_port(
    redis_server: RedisServer,
) -> None:
    port, pid = redis_server.port, redis_server.pid
    assert redis_server.url == f"redis://127.0.0.1:{port}/0"
    with redis_server.client() as client:
        assert client.ping()
        client.set("k", b"v")

    redis_server.kill()
    assert not redis_server.is_running
    with (
        redis.Redis(port=port, socket_connect_timeout=0.2, retry=no_retry()) as client,
        pytest.raises(redis.ConnectionError),
    ):
        client.ping()

    redis_server.restart()
    assert redis_server.port == port
    assert redis_server.pid != pid
    with redis_server.client() as client:
        assert client.ping()
        assert client.get("k") is None  # --save "": nothing survives a crash

    redis_server.stop()
    assert not redis_server.is_running
    redis_server.stop()  # idempotent
    redis_server.start()
    assert redis_server.is_running


@pytest.mark.redis
def test_client_pause_makes_a_short_timeout_time_out(redis_server: RedisServer) -> None:
    with redis_server.client(socket_timeout=0.2) as client:
        client.ping()  # connected before the pause
        redis_server.pause(0.6)
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.get("k")
        assert time.monotonic() - started < 0.5
    with redis_server.client(socket_timeout=2) as client:
        assert client.ping()  # the pause ends by itself
        assert time.monotonic() - started >= 0.5


@pytest.mark.redis
def test_freeze_hangs_the_server_until_thawed(redis_server: RedisServer) -> None:
    redis_server.freeze()
    with (
        redis_server.client(socket_timeout=0.2, socket_connect_timeout=0.2) as client,
        pytest.raises(redis.TimeoutError),
    ):
        client.get("k")
    redis_server.thaw()
    with redis_server.client(socket_timeout=1) as client:
        assert client.ping()
    redis_server.freeze()
    redis_server.stop(timeout=2)  # a frozen server still stops cleanly
    assert not redis_server.is_running


@pytest.mark.redis
def test_a_process_that_cannot_start_is_reported_with_its_log() -> None:
    require_binaries(REDIS_SERVER_BIN)
    server = RedisServer("--no-such-option", "1", name="broken")
    with pytest.raises(RedisServerError, match="no-such-option"), server:
        pass
    assert not server.is_running
    assert not server.dir.exists()


@pytest.mark.redis
def test_a_pinned_port_that_is_taken_fails_in_bounded_time(redis_server: RedisServer) -> None:
    started = time.monotonic()
    with (
        pytest.raises(RedisServerError, match="port conflict"),
        RedisServer(port=redis_server.port),
    ):
        pass
    assert time.monotonic() - started < 5


@pytest.mark.redis
def test_a_taken_port_is_replaced_by_a_free_one(redis_server: RedisServer) -> None:
    """Start on a port someone else holds: the pid check rejects the stranger, we move on."""
    with RedisServer(name="second") as second:
        second._port = redis_server.port  # as if free_port() had raced with another server
        second._port_pinned = False
        second.restart()
        assert second.port != redis_server.port
        assert second.is_running


@pytest.mark.redis
@pytest.mark.slow
def test_cluster_is_ok_and_serves_keys_from_any_node(redis_cluster: RedisCluster) -> None:
    assert len(redis_cluster.primaries()) == 3
    assert redis_cluster.replicas() == []
    assert redis_cluster.url == f"redis+cluster://127.0.0.1:{redis_cluster.servers[0].port}"
    assert len(redis_cluster.startup_nodes) == 3
    keys = [f"redis-servers-self-test:{i}" for i in range(20)]
    with redis_cluster.client() as client:
        for key in keys:
            assert client.set(key, key)
    assert len({redis_cluster.owner_of(key).port for key in keys}) == 3  # spread out
    for server in redis_cluster.servers:  # each node as the only startup node
        with RedisClusterClient(host=server.host, port=server.port, socket_timeout=5) as client:
            assert [client.get(key) for key in keys] == [key.encode() for key in keys]


@pytest.mark.redis
@pytest.mark.slow
def test_killing_a_keys_primary_fails_over_within_10_s(
    redis_cluster_with_replicas: RedisCluster,
) -> None:
    cluster = redis_cluster_with_replicas
    assert len(cluster.primaries()) == 3
    assert len(cluster.replicas()) == 3
    key = "redis-servers-self-test:failover"
    with cluster.client() as client:
        client.set(key, b"before")
    slot = cluster.keyslot(key)

    started = time.monotonic()
    dead = cluster.kill_primary_of(key)
    assert not dead.is_running
    cluster.wait_failover(timeout=10)
    assert time.monotonic() - started < 10

    new_owner = cluster.owner_of(key)
    assert new_owner is not dead
    assert new_owner.is_running
    assert len(cluster.primaries()) == 3
    with cluster.client() as client:
        assert client.keyslot(key) == slot
        assert client.set(key, b"after")
        assert client.get(key) == b"after"


@pytest.mark.redis
@pytest.mark.slow
def test_sentinel_reports_the_master(redis_sentinel: RedisSentinel) -> None:
    master = redis_sentinel.master
    assert redis_sentinel.service_name == "mymaster"
    assert redis_sentinel.url == (
        f"redis+sentinel://127.0.0.1:{redis_sentinel.sentinel_port}/mymaster/0"
    )
    with redis_sentinel.sentinel_client(decode_responses=True) as sentinel:
        reply = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster")
    assert (reply[0], int(reply[1])) == ("127.0.0.1", master.port)
    assert redis_sentinel.master_address() == master.address
    assert redis_sentinel.replica.info("replication")["master_port"] == str(master.port)


@pytest.mark.redis
@pytest.mark.slow
def test_sentinel_fails_over_to_the_replica() -> None:
    require_binaries(REDIS_SERVER_BIN)
    with RedisSentinel() as setup:
        old = setup.kill_master()
        assert old is setup.master
        assert setup.wait_failover(timeout=15) is setup.replica
        assert setup.master_address() == setup.replica.address
        with setup.replica.client() as client:
            assert client.set("k", b"v")
