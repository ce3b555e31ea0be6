"""A process started while the node its ``REDIS_URL`` names first is down joins the real
6-node Redis Cluster through the next seed listed: store client, asyncio client and the
history cache all work, where the dead node alone leaves them unable to start."""

from __future__ import annotations

import asyncio

import pytest
import redis
from flask import Flask

from app.history_api import make_cache
from services.redis_connection import async_client, is_cluster, sync_client
from tests.redis_cluster import RedisCluster

pytestmark = pytest.mark.redis


@pytest.mark.timeout(90)
def test_a_dead_first_seed_is_passed_over() -> None:
    with RedisCluster() as cluster:
        masters = cluster.masters()
        replica = next(p for p in cluster.ports if p not in masters)
        cluster.processes[replica].kill()
        cluster.processes[replica].wait(timeout=10)
        alone = f"redis://127.0.0.1:{replica}/0"
        with pytest.raises((redis.RedisError, OSError)):
            sync_client(alone).ping()
        url = f"{alone},127.0.0.1:{masters[0]}"
        assert is_cluster(url)
        client = sync_client(url, socket_timeout_s=2.0)
        for i in range(30):  # keys over every master's slots
            client.set(f"seed:{i}", i)
        assert [int(client.get(f"seed:{i}")) for i in range(30)] == list(range(30))

        async def read() -> list[int]:
            aclient = async_client(url, socket_timeout_s=2.0)
            try:
                return [int(await aclient.get(f"seed:{i}")) for i in range(30)]
            finally:
                await aclient.aclose()

        assert asyncio.run(read()) == list(range(30))
        app = Flask(__name__)
        cache = make_cache(url)
        cache.init_app(app)
        with app.app_context():
            for i in range(30):
                cache.set(f"k{i}", i)
            assert [cache.get(f"k{i}") for i in range(30)] == list(range(30))
