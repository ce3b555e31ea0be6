"""The market board: rows for every TRADING symbol, mini-ticker figures, book figures only
for LIVE streamed books, versions that move only on a change, and its Redis encoding."""

from __future__ import annotations

import numpy as np

from services.binance.messages import MiniTicker
from services.cluster.boards import PublishedBoard, decode_board, encode_board
from services.market.market_board import (
    MarketBoard,
    change_pct,
    ticker_from_rest,
)
from services.market.views import BookView, SymbolInfo, SyncState

INFOS = {
    "BTCUSDT": SymbolInfo("BTCUSDT", "TRADING", "BTC", "USDT"),
    "ETHUSDT": SymbolInfo("ETHUSDT", "TRADING", "ETH", "USDT"),
}


def _ticker(symbol: str, close: float, open_: float = 100.0) -> MiniTicker:
    return MiniTicker("24hrMiniTicker", 1, symbol, close, open_, 120.0, 90.0, 5.0, 500.0)


def _view(state: SyncState) -> BookView:
    return BookView(
        symbol="BTCUSDT",
        bid_prices=np.array([99.99, 99.98]),
        bid_qtys=np.array([10.0, 5.0]),
        ask_prices=np.array([100.01, 100.02]),
        ask_qtys=np.array([10.0, 5.0]),
        last_update_id=7,
        sync_state=state,
        event_time_ms=1,
        resync_reason="",
    )


def test_rows_cover_every_trading_symbol_with_ticker_figures() -> None:
    board = MarketBoard()
    board.update_tickers([_ticker("BTCUSDT", 110.0), _ticker("XYZUSDT", 1.0)], INFOS)
    rows = {r.symbol: r for r in board.rows(INFOS).rows}
    assert set(rows) == {"BTCUSDT", "ETHUSDT"}  # XYZUSDT is not TRADING
    btc = rows["BTCUSDT"]
    assert (btc.last, btc.high, btc.low, btc.quote_volume) == (110.0, 120.0, 90.0, 500.0)
    assert btc.change_pct == 10.0
    assert rows["ETHUSDT"].last is None


def test_book_figures_only_while_live_and_versions_only_move_on_change() -> None:
    board = MarketBoard()
    board.update_book("BTCUSDT", _view(SyncState.LIVE), INFOS)
    live = board.rows(INFOS)
    btc = next(r for r in live.rows if r.symbol == "BTCUSDT")
    assert btc.sync_state == "LIVE" and abs(btc.spread_bps - 2.0) < 1e-3
    assert 0 <= btc.liquidity <= 100
    board.update_book("BTCUSDT", _view(SyncState.LIVE), INFOS)
    assert board.rows(INFOS).version == live.version
    board.update_book("BTCUSDT", _view(SyncState.RESYNCING), INFOS)
    after = board.rows(INFOS)
    btc = next(r for r in after.rows if r.symbol == "BTCUSDT")
    assert after.version > live.version and btc.spread_bps is None and btc.liquidity is None
    assert [r.symbol for r in after.since(live.version)] == ["BTCUSDT"]
    board.update_book("BTCUSDT", None, INFOS)
    assert next(r for r in board.rows(INFOS).rows if r.symbol == "BTCUSDT").sync_state == ""


def test_rest_ticker_rows_and_the_encoding_round_trip() -> None:
    ticker = ticker_from_rest(
        {
            "symbol": "ETHUSDT",
            "lastPrice": "2065.5",
            "openPrice": "2000",
            "highPrice": "2100",
            "lowPrice": "1990",
            "volume": "10",
            "quoteVolume": "20650",
            "closeTime": 5,
        }
    )
    assert ticker.c == 2065.5 and ticker.E == 5
    board = MarketBoard()
    board.update_tickers([ticker], INFOS)
    published = board.rows(INFOS)
    stored = PublishedBoard(1_700_000_000.25, published)
    assert decode_board(encode_board(stored)) == stored
    assert change_pct(1.0, 0.0) is None


def test_a_kept_score_with_a_fresh_spread_until_rescored() -> None:
    board = MarketBoard()
    first = _view(SyncState.LIVE)
    assert board.update_book("BTCUSDT", first, INFOS, rescore=False)  # no score yet
    scored = next(r for r in board.rows(INFOS).rows if r.symbol == "BTCUSDT")
    wider = BookView(
        symbol="BTCUSDT",
        bid_prices=np.array([99.9]),
        bid_qtys=np.array([1.0]),
        ask_prices=np.array([100.1]),
        ask_qtys=np.array([1.0]),
        last_update_id=8,
        sync_state=SyncState.LIVE,
    )
    assert not board.update_book("BTCUSDT", wider, INFOS, rescore=False)
    kept = next(r for r in board.rows(INFOS).rows if r.symbol == "BTCUSDT")
    assert abs(kept.spread_bps - 20.0) < 1e-3 and kept.liquidity == scored.liquidity
    assert board.update_book("BTCUSDT", wider, INFOS, rescore=True)
    fresh = next(r for r in board.rows(INFOS).rows if r.symbol == "BTCUSDT")
    assert fresh.liquidity < scored.liquidity  # a thinner, wider book
    assert not board.update_book("BTCUSDT", _view(SyncState.RESYNCING), INFOS, rescore=False)
    lost = next(r for r in board.rows(INFOS).rows if r.symbol == "BTCUSDT")
    assert lost.spread_bps is None and lost.liquidity is None
    assert board.update_book("BTCUSDT", first, INFOS, rescore=False)  # LIVE again: scored
    assert next(r for r in board.rows(INFOS).rows if r.symbol == "BTCUSDT").liquidity == (
        scored.liquidity
    )
