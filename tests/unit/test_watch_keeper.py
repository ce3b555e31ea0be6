"""The watch keeper: a symbol still on screen is asked for again once a minute, however
often it is shown; pages and push streams hand it their symbols."""

from __future__ import annotations

import time

import pytest

from app.callbacks.symbol import still_shown
from services.market.views import SymbolInfo
from services.push import service as push_service
from services.push.service import PushService
from services.store import MemoryStore
from services.watch_keeper import REASK_S, WatchKeeper


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def request_symbol(self, symbol: str) -> None:
        self.asked.append(symbol)
        super().request_symbol(symbol)


def test_a_symbol_is_asked_for_again_once_every_period() -> None:
    store, clock = CountingStore(), Clock()
    keeper = WatchKeeper(store, clock=clock)
    assert keeper.still_watching(["BTCUSDT", "ETHUSDT"]) == 2
    for _ in range(50):  # shown on every tick of a page, or by many streams
        clock.now += 1.0
        keeper.still_watching(["BTCUSDT"])
    assert store.asked == ["BTCUSDT", "ETHUSDT"]
    clock.now += REASK_S - 50.0
    assert keeper.still_watching(["BTCUSDT", "ETHUSDT"]) == 2
    assert store.asked.count("BTCUSDT") == 2
    assert set(store.requested_symbols()) == {"BTCUSDT", "ETHUSDT"}


def test_the_page_keeps_its_known_symbol_watched() -> None:
    store = CountingStore()
    store.publish_symbols([SymbolInfo("BTCUSDT"), SymbolInfo("ETHUSDT")])
    keeper = WatchKeeper(store)
    still_shown(store, keeper, "/ethusdt")
    still_shown(store, keeper, "/")  # the root shows BTCUSDT
    still_shown(store, keeper, "/NOPE")  # unknown: never asked for
    assert store.asked == ["ETHUSDT", "BTCUSDT"]


@pytest.mark.timeout(10)
def test_open_push_streams_keep_their_symbols_watched(monkeypatch) -> None:
    monkeypatch.setattr(push_service, "WATCH_CHECK_S", 0.05)
    store = CountingStore()
    push = PushService.embedded(store)
    push.keeper.every_s = 0.2
    sub = push.hub.subscribe_book("DOTUSDT")
    push.start()
    try:
        deadline = time.monotonic() + 5.0
        while store.asked.count("DOTUSDT") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.asked.count("DOTUSDT") >= 2  # asked again while the stream is open
        push.hub.unsubscribe("book", "DOTUSDT", sub)
        time.sleep(0.3)
        count = store.asked.count("DOTUSDT")
        time.sleep(0.5)
        assert store.asked.count("DOTUSDT") == count  # closed: no longer asked for
    finally:
        push.stop()
