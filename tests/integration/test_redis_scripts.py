"""Scripts loaded lazily on the node that runs them (a real redis-server whose script cache
is flushed, as a restarted node's or a promoted replica's is), and the bounded ride over
CLUSTERDOWN refusals."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
import redis
import redis.asyncio
from redis.exceptions import ClusterDownError

from services.redis_connection import CLUSTER_DOWN_PAUSE_S, riding_cluster_down
from services.redis_scripts import AsyncNodeScript, NodeScript, node_script
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis
INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def test_a_flushed_script_cache_is_loaded_again_on_first_use() -> None:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        script = node_script(client, INCR_BY)
        assert isinstance(script, NodeScript)
        assert script(keys=["n"], args=[2]) == 2  # never loaded on this server: EVAL
        assert script(keys=["n"], args=[3]) == 5  # then EVALSHA
        assert script.loads == 1
        assert client.script_exists(script.sha) == [True]
        client.script_flush()  # a restarted node, a promoted replica
        assert script(keys=["n"], args=[1]) == 6
        assert script.loads == 2
        client.close()


def test_the_asyncio_twin_loads_lazily_too() -> None:
    async def run(url: str) -> tuple[int, int, int]:
        client = redis.asyncio.Redis.from_url(url)
        script = node_script(client, INCR_BY)
        assert isinstance(script, AsyncNodeScript)
        first = await script(keys=["a"], args=[4])
        await client.script_flush()
        second = await script(keys=["a"], args=[1])
        await client.aclose()
        return first, second, script.loads

    with RedisServer() as server:
        assert asyncio.run(run(server.url)) == (4, 5, 2)


def test_cluster_down_is_ridden_out_for_a_bounded_time_without_spinning() -> None:
    calls: list[float] = []

    def refused_until(n: int) -> str:
        calls.append(time.monotonic())
        if len(calls) < n:
            raise ClusterDownError("CLUSTERDOWN The cluster is down")
        return "answered"

    assert riding_cluster_down(lambda: refused_until(3), wait_s=2.0) == "answered"
    assert len(calls) == 3
    calls.clear()
    started = time.monotonic()
    with pytest.raises(ClusterDownError):
        riding_cluster_down(lambda: refused_until(10**6), wait_s=0.5)
    assert time.monotonic() - started <= 0.5 + CLUSTER_DOWN_PAUSE_S
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps and min(gaps) >= CLUSTER_DOWN_PAUSE_S * 0.9
    assert len(calls) <= 0.5 / CLUSTER_DOWN_PAUSE_S + 1
