"""A plain scan of a recording's trades, to check alert evaluation against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from services.market.views import TradeView
from services.replay.recording import read_recording


@dataclass(frozen=True, slots=True)
class RecordedTrade:
    symbol: str
    trade_id: int
    time_ms: int
    price: float
    qty: float
    taker_buy: bool

    @property
    def notional(self) -> float:
        return self.price * self.qty


def recorded_trades(path: Path) -> dict[str, list[RecordedTrade]]:
    """Every trade (aggTrade or trade) of the recording's WebSocket frames, per symbol, in
    id order, each id once."""
    by_symbol: dict[str, dict[int, RecordedTrade]] = {}
    for message in read_recording(path):
        if message.src != "ws":
            continue
        frame = orjson.loads(message.raw)
        data = frame.get("data", frame) if isinstance(frame, dict) else None
        if not isinstance(data, dict) or data.get("e") not in ("aggTrade", "trade"):
            continue
        trade_id = data["a"] if data["e"] == "aggTrade" else data["t"]
        trade = RecordedTrade(
            data["s"], trade_id, data["T"], float(data["p"]), float(data["q"]), not data["m"]
        )
        by_symbol.setdefault(trade.symbol, {})[trade_id] = trade
    return {s: [t[i] for i in sorted(t)] for s, t in by_symbol.items()}


def trade_view(symbol: str, trades: list[RecordedTrade]) -> TradeView:
    """The trades as the feed's taps receive them."""
    return TradeView(
        symbol,
        np.array([t.trade_id for t in trades], dtype=np.int64),
        np.array([t.time_ms for t in trades], dtype=np.int64),
        np.array([t.price for t in trades], dtype=np.float64),
        np.array([t.qty for t in trades], dtype=np.float64),
        np.array([1.0 if t.taker_buy else -1.0 for t in trades], dtype=np.float64),
    )
