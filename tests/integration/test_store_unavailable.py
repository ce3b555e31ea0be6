"""A web worker whose Redis cannot be read (a real redis-server, stopped) says so wherever a
user looks — the symbol message, the status bar, the JSON API, ``/healthz`` — and never
calls a streamed symbol unknown or its book absent; once Redis is back it shows the book."""

from __future__ import annotations

import time

import pytest

from app.callbacks.status import symbol_message, symbol_status
from app.server import create_app
from app.streams import TRY_AGAIN_LATER, _admit
from services.market.views import SymbolInfo
from services.redis_store import RedisStore
from services.store import FeedStatus
from tests.cluster_worker import book_snapshot
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


class _Socket:
    """What a push stream's WebSocket was closed with."""

    code, reason = 0, ""

    def close(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


def test_a_reader_that_cannot_reach_redis_says_unavailable() -> None:
    with RedisServer() as server:
        writer = RedisStore(server.url, writer_id="w")
        writer.publish_symbols([SymbolInfo("BTCUSDT"), SymbolInfo("ETHUSDT")])
        writer.publish(book_snapshot("BTCUSDT", 1, 1))
        writer.publish_status(FeedStatus(connection_state="CONNECTED"))
        server.stop()
        try:
            reader = RedisStore(server.url, poll_s=0)  # a web worker starting now
            api = create_app(reader).server.test_client()
            assert reader.snapshot("BTCUSDT") is None
            assert reader.unavailable("BTCUSDT") and reader.unavailable()
            message = str(symbol_message(reader, "BTCUSDT", "/BTCUSDT"))
            assert "unavailable" in message and "Unknown symbol" not in message
            assert "Waiting for data" not in message
            items = symbol_status(reader, "BTCUSDT", time.time())
            book = next(i for i in items if i.label == "book")
            assert (book.value, book.level) == ("unavailable (store)", "bad")
            response = api.get("/api/assets/crypto/BTCUSDT/orderbook")
            assert response.status_code == 503
            assert response.get_json()["state"] == "unavailable"
            closed = _Socket()
            assert _admit(closed, reader, "BTCUSDT") is None  # a push stream: try again later
            assert closed.code == TRY_AGAIN_LATER and "unavailable" in closed.reason
            health = api.get("/healthz")
            assert health.status_code == 503
            assert health.get_json()["store"] == {
                "mode": "redis",
                "state": "down",
                "unreachable": {server.url: reader.availability.error},
            }
        finally:
            server.start()
        deadline = time.monotonic() + 5  # the server kept nothing: the worker writes again
        while reader.snapshot("BTCUSDT") is None and time.monotonic() < deadline:
            writer.publish_symbols([SymbolInfo("BTCUSDT"), SymbolInfo("ETHUSDT")])
            writer.publish(book_snapshot("BTCUSDT", 2, 2))
            time.sleep(0.1)
        assert reader.snapshot("BTCUSDT") is not None
        assert reader.unavailable("BTCUSDT") is None
        assert symbol_message(reader, "BTCUSDT", "/BTCUSDT") is None
        assert api.get("/api/assets/crypto/BTCUSDT/orderbook").status_code == 200
        assert api.get("/healthz").get_json()["store"] == {"mode": "redis", "state": "ok"}
        writer.close()
        reader.close()
