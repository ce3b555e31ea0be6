"""One ``REDIS_URL`` for a single Redis or a Redis Cluster: the mode is detected by asking
the server (``INFO cluster``), never configured, and the matching redis-py client is built.

``REDIS_URL`` may list several seed nodes of a cluster, separated by commas
(``redis://a:7000,b:7000,c:7000/0``: a part without a scheme takes the first URL's scheme,
credentials and database), so a process started while one of them is down still joins the
cluster through another; any live node reveals the whole layout.

``seed_urls(url)``: the node URLs ``url`` lists. ``live_seed(url)``: the first of them that
answers (the first when none does).
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
from urllib.parse import urlsplit

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
SEED_TIMEOUT_S = 0.5
"""Longest wait for one seed node's answer while looking for a live one."""


def seed_urls(url: str) -> list[str]:
    """The node URLs listed in ``url`` (comma-separated). A part without ``://`` is a
    ``host:port`` that takes the first URL's scheme and credentials; a part without a
    database takes the one any part names (``redis://a:7000,b:7000/0``: both ``/0``)."""
    parts = [part.strip() for part in url.split(",") if part.strip()]
    if len(parts) <= 1:
        return parts
    if "://" not in parts[0]:
        raise ValueError(f"REDIS_URL's first node needs a scheme (redis://): {parts[0]!r}")
    first = urlsplit(parts[0])
    credentials = first.netloc.rpartition("@")[0]
    nodes = [urlsplit(p if "://" in p else f"{first.scheme}://{p}") for p in parts]
    database = next((n.path for n in nodes if n.path not in ("", "/")), "")
    seeds = []
    for node in nodes:
        netloc = node.netloc
        if credentials and "@" not in netloc:
            netloc = f"{credentials}@{netloc}"
        seeds.append(
            f"{node.scheme}://{netloc}{node.path if node.path not in ('', '/') else database}"
        )
    return seeds


def live_seed(url: str) -> str:
    """The first node ``url`` lists that answers PING within ``SEED_TIMEOUT_S`` (the first
    when none does: the caller's own errors then say which)."""
    seeds = seed_urls(url)
    if len(seeds) <= 1:
        return url
    for seed in seeds:
        probe = redis.Redis.from_url(
            seed, socket_timeout=SEED_TIMEOUT_S, socket_connect_timeout=SEED_TIMEOUT_S
        )
        try:
            probe.ping()
        except (redis.RedisError, OSError):
            continue
        else:
            return seed
        finally:
            probe.close()
    return seeds[0]


@functools.lru_cache(maxsize=16)
def is_cluster(url: str) -> bool:
    """True when the Redis at ``url`` (its first live seed) is a node of a Redis Cluster."""
    probe = redis.Redis.from_url(live_seed(url), socket_timeout=5.0)
    try:
        return str(probe.info("cluster").get("cluster_enabled", 0)) == "1"
    finally:
        probe.close()


def sync_client(
    url: str, socket_timeout_s: float | None = None, cluster_retries: int | None = None
) -> redis.Redis | redis.cluster.RedisCluster:
    """A blocking client for ``url`` (its first live seed), cluster-aware when the server
    is a cluster node.
    With ``socket_timeout_s`` a single Redis's client fails fast (0.5 s to connect, no
    retry) so the caller's own backoff decides; a cluster client retries a command after
    reading the cluster's layout again (which follows a failover to the promoted
    replica): ``cluster_retries`` times, default redis-py's 10. Each retry of a command
    refused with CLUSTERDOWN (every master refuses them between a master's failure and
    its replica's promotion) waits 0.25 s, each on a silent node ``socket_timeout_s``: a
    caller that must answer within a bound keeps them few."""
    cluster = is_cluster(url)
    url = live_seed(url)
    if cluster:
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
    """An asyncio client for ``url`` (its first live seed), cluster-aware when the server
    is a cluster node; with
    ``socket_timeout_s`` no call waits longer on a silent connection."""
    timeouts = {}
    if socket_timeout_s is not None:
        timeouts = {"socket_connect_timeout": 0.5, "socket_timeout": socket_timeout_s}
    if is_cluster(url):
        return redis.asyncio.cluster.RedisCluster.from_url(live_seed(url), **timeouts)
    return redis.asyncio.Redis.from_url(live_seed(url), **timeouts)


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
