"""Building redis-py clients from URLs, with defaults fit for a cache.

Schemes: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+cluster://host:port``
and ``redis+sentinel://host:port[,host:port]/service[/db]``.

Defaults differ from redis-py's on purpose: a cache must fail fast (short connect
and operation timeouts) and must queue rather than fail under a burst of tasks
(``RedisCache`` caps the commands in flight at ``max_connections`` and queues the
rest: redis-py's default pool raises past its connection limit when 200 tasks
call at once). Under load, the commands of reads and writes are pipelined
(``pipeline_after``).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ._ttl import validate_positive_int, validate_positive_seconds
from .errors import ConfigurationError, ValidationError

__all__ = ["ClientOptions", "check_client", "client_from_url", "validate_redis_url"]

_POOL_HEADROOM = 4  # the pub/sub connection, and a spare
_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel")


@dataclass(frozen=True)
class ClientOptions:
    """Connection settings; the defaults suit a cache that must fail fast."""

    # A cache answers from memory or the source faster than this: waiting longer
    # on a hung or restarting Redis only adds latency (a miss costs less).
    connect_timeout: float = 0.25
    operation_timeout: float = 0.25
    max_connections: int = 64
    retries: int = 1
    # Once this many reads and writes are in flight (on one event loop), the next
    # ones wait and leave together, as one pipeline, on the first connection freed.
    # 1 gives the most throughput; a few let light concurrency skip the queue.
    pipeline_after: int = 4

    def __post_init__(self) -> None:
        validate_positive_seconds("connect_timeout", self.connect_timeout)
        validate_positive_seconds("operation_timeout", self.operation_timeout)
        validate_positive_int("max_connections", self.max_connections)
        validate_positive_int("pipeline_after", self.pipeline_after)
        if type(self.retries) is not int or self.retries < 0:
            raise ValidationError(f"retries must be an int >= 0, not {self.retries!r}")

    @property
    def pool_size(self) -> int:
        """Connections a client may open: commands, pipelines and the pub/sub one."""
        return self.max_connections + self.pipeline_after + _POOL_HEADROOM


def validate_redis_url(url: object) -> str:
    """Check a Redis URL with the messages users' tests match on."""
    if not isinstance(url, str):
        raise ValidationError(
            f"redis_url must be a string, not {type(url).__name__}",
            {"redis_url_type": type(url).__name__},
        )
    if not url.strip():
        raise ValidationError("redis_url cannot be empty")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ValidationError(
            "redis_url must start with 'redis://', 'rediss://' or 'unix://' "
            "(or 'redis+cluster://', 'redis+sentinel://')",
            {"scheme": scheme},
        )
    parts = urlsplit(url)
    if scheme == "unix":
        if not parts.path:
            raise ValidationError("a unix:// redis_url must include the socket path")
    elif not parts.hostname and not parts.netloc.split("@")[-1]:
        raise ValidationError(
            "redis_url must include host information, e.g. redis://localhost:6379"
        )
    return url


def check_client(client: Any) -> Any:
    """Return a client given to a cache, or refuse one that would read other bytes.

    The cache stores codec bytes under UTF-8 keys: a client that decodes replies
    hands back text where the codec needs bytes (every read would miss), and one
    with another text encoding would write keys the cache's own reads never find.
    """
    get_encoder = getattr(client, "get_encoder", None)
    if get_encoder is None:  # not a redis-py client: nothing to check
        return client
    encoder = get_encoder()
    if encoder.decode_responses:
        raise ConfigurationError(
            "the cache stores bytes: give it a client created with decode_responses=False"
        )
    if codecs.lookup(encoder.encoding).name != "utf-8":
        raise ConfigurationError(
            f"the cache's keys are UTF-8: give it a client whose encoding is 'utf-8', "
            f"not {encoder.encoding!r}"
        )
    return client


def client_from_url(url: str, options: ClientOptions = ClientOptions()) -> Any:
    """Return a ``redis.asyncio`` client (``Redis`` or ``RedisCluster``) for ``url``."""
    validate_redis_url(url)
    import redis.asyncio as aioredis

    scheme = url.split("://", 1)[0].lower()
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    common: dict[str, Any] = {
        "socket_connect_timeout": options.connect_timeout,
        "socket_timeout": options.operation_timeout,
        # redis-py 8 retries timeouts and connection errors 3 times with backoff: a
        # cache must fail fast and let its breaker decide when to try again. One
        # immediate retry of a *connection* error remains: after a restart, pooled
        # connections are stale, and the retry reconnects instead of failing.
        "retry": Retry(NoBackoff(), options.retries, supported_errors=(RedisConnectionError,)),
    }
    if scheme.endswith("+cluster"):
        from redis.asyncio.cluster import RedisCluster

        plain = url.replace("+cluster", "", 1)
        return RedisCluster.from_url(plain, max_connections=options.pool_size, **common)
    if scheme == "redis+sentinel":
        return _sentinel_client(url, common, options)
    # A plain pool: the cache queues callers beyond max_connections itself, which
    # costs nothing when there is room (a BlockingConnectionPool costs 12-20 us a
    # command).
    pool = aioredis.ConnectionPool.from_url(url, max_connections=options.pool_size, **common)
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def _sentinel_client(url: str, common: dict[str, Any], options: ClientOptions) -> Any:
    from redis.asyncio.sentinel import Sentinel

    parts = urlsplit(url)
    hosts = []
    for host_port in parts.netloc.split("@")[-1].split(","):
        host, _, port = host_port.partition(":")
        hosts.append((host, int(port or 26379)))
    path = [unquote(segment) for segment in parts.path.split("/") if segment]
    if not path:
        raise ConfigurationError(
            "a redis+sentinel:// URL needs the service name: redis+sentinel://host:26379/mymaster/0"
        )
    service, db = path[0], int(path[1]) if len(path) > 1 else 0
    sentinel = Sentinel(hosts, sentinel_kwargs=common, **common)  # type: ignore[no-untyped-call]
    return sentinel.master_for(service, db=db, max_connections=options.pool_size)
