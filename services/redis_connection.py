"""One ``REDIS_URL`` for a single Redis or a Redis Cluster: the mode is detected by asking
the server (``INFO cluster``), never configured, and the matching redis-py client is built.

``is_cluster(url)``: True when the node at ``url`` runs with ``cluster-enabled yes``.
``sync_client(url)`` / ``async_client(url)``: ``redis.Redis``/``redis.RedisCluster`` (and
their asyncio twins) for that node, answers as bytes.
"""

from __future__ import annotations

import functools

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry


@functools.lru_cache(maxsize=16)
def is_cluster(url: str) -> bool:
    """True when the Redis at ``url`` is a node of a Redis Cluster."""
    probe = redis.Redis.from_url(url, socket_timeout=5.0)
    try:
        return str(probe.info("cluster").get("cluster_enabled", 0)) == "1"
    finally:
        probe.close()


def sync_client(
    url: str, socket_timeout_s: float | None = None, cluster_retries: int | None = None
) -> redis.Redis | redis.cluster.RedisCluster:
    """A blocking client for ``url``, cluster-aware when the server is a cluster node.
    With ``socket_timeout_s`` a single Redis's client fails fast (0.5 s to connect, no
    retry) so the caller's own backoff decides; a cluster client retries a command after
    reading the cluster's layout again (which follows a failover to the promoted
    replica): ``cluster_retries`` times, default redis-py's 10. Each retry of a command
    refused with CLUSTERDOWN (every master refuses them between a master's failure and
    its replica's promotion) waits 0.25 s, each on a silent node ``socket_timeout_s``: a
    caller that must answer within a bound keeps them few."""
    if is_cluster(url):
        retry = {} if cluster_retries is None else {"retry": Retry(NoBackoff(), cluster_retries)}
        return redis.cluster.RedisCluster.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=socket_timeout_s, **retry
        )
    if socket_timeout_s is None:
        return redis.Redis.from_url(url)
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=socket_timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def async_client(
    url: str, socket_timeout_s: float | None = None
) -> redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster:
    """An asyncio client for ``url``, cluster-aware when the server is a cluster node; with
    ``socket_timeout_s`` no call waits longer on a silent connection."""
    timeouts = {}
    if socket_timeout_s is not None:
        timeouts = {"socket_connect_timeout": 0.5, "socket_timeout": socket_timeout_s}
    if is_cluster(url):
        return redis.asyncio.cluster.RedisCluster.from_url(url, **timeouts)
    return redis.asyncio.Redis.from_url(url, **timeouts)
