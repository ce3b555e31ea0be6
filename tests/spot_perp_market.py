"""The bundled spot and USD-M BTCUSDT recordings of 2024-08-08 replayed together by two
local exchanges: the app's feed fills ``store``, the perpetual twin's feed (started with
nothing, asked for symbols by the API or the page) fills its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app import market_source
from app.config import Settings
from app.perp_twin_setup import start_perp_twin
from services.market.feed import Feed
from services.market.perp_twin import PerpTwin
from services.replay.recording import SPOT_2024, USDM_2024
from services.store import MemoryStore


@dataclass
class SpotPerpMarket:
    store: MemoryStore
    twin: PerpTwin
    source: market_source.MarketSource
    twin_source: market_source.MarketSource | None
    feed: Feed
    stopped: bool = False

    def stop_feeds(self) -> None:
        """Stop both feeds (the stores keep what they hold); once."""
        if not self.stopped:
            self.stopped = True
            self.feed.stop()
            self.twin.stop()


@contextmanager
def spot_perp_market() -> Iterator[SpotPerpMarket]:
    """Both feeds running at replay speed 4; on exit the feeds stop and both exchanges
    close."""
    settings = Settings(
        source="replay", recording=SPOT_2024, perp_twin=True, perp_recording=USDM_2024,
        speed="4", loop=False, symbols=("BTCUSDT",), publish_interval_s=0.2, history=False,
    )  # fmt: skip
    source = market_source.resolve(settings)
    store = MemoryStore()
    feed = Feed(market_source.feed_config(settings, source), store)
    twin = PerpTwin()
    feed.start_in_thread()
    market = SpotPerpMarket(store, twin, source, start_perp_twin(settings, source, twin), feed)
    try:
        yield market
    finally:
        market.stop_feeds()
        source.close()
        if market.twin_source is not None:
            market.twin_source.close()
