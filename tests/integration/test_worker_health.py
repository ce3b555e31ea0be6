"""``/healthz`` lists every ingest worker sharing a real redis-server, each with its own
status; a worker silent past the state's lifetime is dropped."""

from __future__ import annotations

import time

import pytest

from app.api import health
from services.redis_store import RedisStore
from services.store import FeedStatus
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


def test_healthz_lists_each_workers_own_status() -> None:
    with RedisServer() as server:
        stores = {w: RedisStore(server.url, writer_id=w, ttl_s=30.0) for w in ("a", "b", "c")}
        stores["a"].publish_status(FeedStatus(connection_state="CONNECTED", messages_per_s=9.0))
        stores["b"].publish_status(FeedStatus(connection_state="RECONNECTING"))
        stores["c"].publish_status(FeedStatus(published_at=time.time() - 20))
        reader = RedisStore(server.url, ttl_s=10.0)
        workers = health(reader)["workers"]
        assert list(workers) == ["a", "b"]  # c: silent for longer than the state lives
        assert workers["a"]["connection_state"] == "CONNECTED"
        assert workers["a"]["messages_per_s"] == 9.0 and workers["a"]["publishing"]
        assert workers["b"]["connection_state"] == "RECONNECTING"
        assert list(reader.worker_statuses()) == ["a", "b"]  # and removed from Redis
        assert list(RedisStore(server.url, ttl_s=60.0).worker_statuses()) == ["a", "b"]
        for store in (*stores.values(), reader):
            store.close()
