"""The status stream's relay: the status bar's badges once per interval to each watcher of
a symbol, computed once per symbol; watchers cut while the push streams are paused."""

from __future__ import annotations

import orjson

from app.callbacks.status import symbol_status
from app.status_stream import StatusRelay, status_message
from services.market.views import SymbolInfo
from services.store import FeedStatus, MemoryStore


def _store() -> MemoryStore:
    store = MemoryStore()
    store.publish_symbols([SymbolInfo("BTCUSDT"), SymbolInfo("ETHUSDT")])
    store.publish_status(
        FeedStatus(source="LIVE", connection_state="CONNECTED", messages_per_s=12.0)
    )
    return store


def test_the_message_carries_the_status_bars_badges():
    store = _store()
    message = orjson.loads(status_message(store, "BTCUSDT", 1_000.0))
    badges = symbol_status(store, "BTCUSDT", 1_000.0)
    assert message["type"] == "status" and message["time"] == 1_000_000
    assert message["items"] == [
        {"label": b.label, "value": b.value, "level": b.level} for b in badges
    ]
    assert {"label": "msg/s", "value": "12", "level": "ok"} in message["items"]
    assert message["sync_state"] is None  # no snapshot yet: the bar says so ("waiting")


def test_each_watcher_gets_each_tick_and_a_gone_one_nothing():
    paused = []
    relay = StatusRelay(_store(), lambda: bool(paused))
    btc, eth, gone = (relay.subscribe(s) for s in ("BTCUSDT", "ETHUSDT", "BTCUSDT"))
    assert btc.current()[0] == 1  # the current message at once
    relay.unsubscribe("BTCUSDT", gone)
    assert relay.poll_once(now=2_000.0) == 2
    assert orjson.loads(btc.current()[1])["time"] == 2_000_000
    assert orjson.loads(eth.current()[1])["symbol"] == "ETHUSDT"
    assert gone.current()[0] == 1 and relay.watched() == {"BTCUSDT": 1, "ETHUSDT": 1}
    paused.append(True)
    assert relay.poll_once() == 0
    assert btc.cut_reason is not None and "paused" in btc.cut_reason
    relay.stop()
