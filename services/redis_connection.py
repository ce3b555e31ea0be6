"""One ``REDIS_URL`` for a single Redis or a Redis Cluster: the mode is detected by asking
the server (``INFO cluster``), never configured, and the matching redis-py client is built.

``is_cluster(url)``: True when the node at ``url`` runs with ``cluster-enabled yes``.
``sync_client(url)`` / ``async_client(url)``: ``redis.Redis``/``redis.RedisCluster`` (and
their asyncio twins) for that node, answers as bytes.
``riding_cluster_down(fn)``: ``fn()``, called again while the cluster refuses commands
during a failover, for a bounded time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TypeVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError
from redis.retry import Retry

T = TypeVar("T")
CLUSTER_DOWN_WAIT_S = 2.0
"""How long a call waits out CLUSTERDOWN: every master refuses commands from a master's
failure until its replica is promoted (the replica's election delay, 0.5-1 s plus 1 s per
rank), so a call made then is answered once the cluster is whole again, not refused."""
CLUSTER_DOWN_PAUSE_S = 0.1


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


def riding_cluster_down(fn: Callable[[], T], wait_s: float = CLUSTER_DOWN_WAIT_S) -> T:
    """``fn()``, called again every ``CLUSTER_DOWN_PAUSE_S`` (never in a tight loop) while
    it is refused with CLUSTERDOWN, until ``wait_s`` has passed since the first call (then
    the refusal is raised). Calls nested in ``fn`` that ride it too end by the same time."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return fn()
        except ClusterDownError:
            if time.monotonic() + CLUSTER_DOWN_PAUSE_S >= deadline:
                raise
            time.sleep(CLUSTER_DOWN_PAUSE_S)
