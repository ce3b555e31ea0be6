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


@functools.lru_cache(maxsize=16)
def is_cluster(url: str) -> bool:
    """True when the Redis at ``url`` is a node of a Redis Cluster."""
    probe = redis.Redis.from_url(url, socket_timeout=5.0)
    try:
        return str(probe.info("cluster").get("cluster_enabled", 0)) == "1"
    finally:
        probe.close()


def sync_client(url: str) -> redis.Redis | redis.cluster.RedisCluster:
    """A blocking client for ``url``, cluster-aware when the server is a cluster node."""
    if is_cluster(url):
        return redis.cluster.RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


def async_client(url: str) -> redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster:
    """An asyncio client for ``url``, cluster-aware when the server is a cluster node."""
    if is_cluster(url):
        return redis.asyncio.cluster.RedisCluster.from_url(url)
    return redis.asyncio.Redis.from_url(url)
