"""One local exchange per bundled recording, shared by the third-party client tests of a
module: speed 1 (a market that moves like the real one), looping, in a background thread,
so synchronous clients can call it too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from services.replay.exchange import LocalExchange
from services.replay.recording import SPOT_2021, SPOT_2024, USDM_2024


@dataclass(frozen=True)
class Venue:
    """A running local exchange and what its recording holds."""

    exchange: LocalExchange
    ws: str
    rest: str
    market: str
    symbol: str  # the first symbol, upper case
    trade_kind: str  # "trade" or "aggTrade": the trade stream the recording carries

    @property
    def stream_symbol(self) -> str:
        return self.symbol.lower()


@contextmanager
def running_venue(path) -> Iterator[Venue]:
    """The local exchange of one recording, running until the block ends."""
    exchange = LocalExchange([path], speed=1, loop=True, ping_interval=5.0)
    ws, rest = exchange.start_in_thread()
    try:
        symbol = sorted(exchange.markets)[0]
        kinds = exchange.session.recorded_kinds(symbol)
        trade_kind = "trade" if "trade" in kinds else "aggTrade"
        market = exchange.markets[symbol]
        deadline = time.monotonic() + 30
        while len(market.trades) + len(market.agg_trades) < 40 and time.monotonic() < deadline:
            time.sleep(0.1)  # a market with some trades behind it, as a client finds Binance
        yield Venue(exchange, ws, rest, exchange.market, symbol, trade_kind)
    finally:
        exchange.stop()


@pytest.fixture(
    scope="module",
    params=[SPOT_2021, SPOT_2024, USDM_2024],
    ids=["spot2021", "spot2024", "usdm2024"],
)
def venue(request) -> Iterator[Venue]:
    with running_venue(request.param) as venue:
        yield venue


@pytest.fixture(scope="module", params=[SPOT_2021, SPOT_2024], ids=["spot2021", "spot2024"])
def spot_venue(request) -> Iterator[Venue]:
    with running_venue(request.param) as venue:
        yield venue
