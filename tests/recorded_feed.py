"""A test-only publisher: turns a bundled real recording into SymbolSnapshots in a store.

It rebuilds each symbol's book from the recorded REST snapshot plus the diffs after it,
collects the recorded aggTrades, and publishes every symbol with an increasing ``seq`` as
it steps through the file; at the end it keeps republishing the final state (fresh
``published_at``), as a quiet live feed would. Unit and API tests use it for deterministic
data from a real recording; the browser tests run the real exchange and feed instead.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from services.binance.messages import AggTrade, DepthUpdate, decode_depth_snapshot, decode_frame
from services.market.views import BookView, SymbolInfo, SyncState, TradeView
from services.replay.recording import RecordedMessage, read_recording
from services.store import FeedStatus, MarketStore, SymbolSnapshot

TICK_SIZES = {"BTCUSDT": 0.01, "ETHUSDT": 0.01, "DOTUSDT": 0.0001}
EXTRA_SYMBOLS = (
    SymbolInfo("BNBUSDT", "TRADING", "BNB", "USDT", 0.01, 0.001, 2, 3),
    SymbolInfo("LUNAUSDT", "BREAK", "LUNA", "USDT", 0.0001, 0.01, 4, 2),
)


@dataclass
class _SymbolState:
    symbol: str
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    last_update_id: int = 0
    synced: bool = False
    event_time_ms: int = 0
    trade_id: list[int] = field(default_factory=list)
    time_ms: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    qty: list[float] = field(default_factory=list)
    side: list[float] = field(default_factory=list)

    def apply(self, update: DepthUpdate) -> None:
        if not self.synced or update.u <= self.last_update_id:
            return
        for book, levels in ((self.bids, update.b), (self.asks, update.a)):
            for price, qty in levels:
                if qty == 0.0:
                    book.pop(price, None)
                else:
                    book[price] = qty
        self.last_update_id = update.u
        self.event_time_ms = update.E

    def book_view(self) -> BookView:
        bid_prices = np.array(sorted(self.bids, reverse=True), dtype=np.float64)
        ask_prices = np.array(sorted(self.asks), dtype=np.float64)
        return BookView(
            symbol=self.symbol,
            bid_prices=bid_prices,
            bid_qtys=np.array([self.bids[p] for p in bid_prices], dtype=np.float64),
            ask_prices=ask_prices,
            ask_qtys=np.array([self.asks[p] for p in ask_prices], dtype=np.float64),
            last_update_id=self.last_update_id,
            sync_state=SyncState.LIVE if self.synced else SyncState.SYNCING,
            event_time_ms=self.event_time_ms,
        )

    def trade_view(self) -> TradeView:
        return TradeView(
            symbol=self.symbol,
            trade_id=np.array(self.trade_id, dtype=np.int64),
            time_ms=np.array(self.time_ms, dtype=np.int64),
            price=np.array(self.price, dtype=np.float64),
            qty=np.array(self.qty, dtype=np.float64),
            side=np.array(self.side, dtype=np.float64),
        )


@lru_cache(maxsize=4)
def recorded_messages(path: Path) -> tuple[RecordedMessage, ...]:
    """The messages of a recording, read once per process."""
    return tuple(read_recording(path))


def symbol_infos(symbols: list[str]) -> list[SymbolInfo]:
    """SymbolInfo for the recorded symbols, plus one unstreamed and one halted symbol."""
    infos = []
    for symbol in symbols:
        tick = TICK_SIZES.get(symbol, 0.01)
        decimals = max(len(f"{tick:.10f}".rstrip("0").split(".")[1]), 0)
        infos.append(
            SymbolInfo(symbol, "TRADING", symbol[:-4], symbol[-4:], tick, 1e-5, decimals, 5)
        )
    return infos + list(EXTRA_SYMBOLS)


class RecordedFeed:
    """Steps through a recording and publishes snapshots into ``store``."""

    def __init__(
        self,
        store: MarketStore,
        path: Path,
        *,
        messages_per_step: int = 60,
        interval_s: float = 0.2,
        recording_date: str = "2021-04-04T20:03:11Z",
    ) -> None:
        self.store = store
        self.interval_s = interval_s
        self.messages_per_step = messages_per_step
        self.recording_date = recording_date
        self._messages = recorded_messages(path)
        self._position = 0
        self._seq = 0
        self._states: dict[str, _SymbolState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prime()

    @property
    def symbols(self) -> list[str]:
        return sorted(self._states)

    def _state(self, symbol: str) -> _SymbolState:
        return self._states.setdefault(symbol, _SymbolState(symbol))

    def _consume(self, count: int) -> None:
        end = min(self._position + count, len(self._messages))
        for message in self._messages[self._position : end]:
            if message.src == "rest":
                symbol = message.url.split("symbol=")[1].split("&")[0]
                snapshot = decode_depth_snapshot(message.raw)
                state = self._state(symbol)
                state.bids = dict(snapshot.bids)
                state.asks = dict(snapshot.asks)
                state.last_update_id = snapshot.lastUpdateId
                state.synced = True
                continue
            event = decode_frame(message.raw).event
            if isinstance(event, DepthUpdate):
                self._state(event.s).apply(event)
            elif isinstance(event, AggTrade):
                state = self._state(event.s)
                state.trade_id.append(event.a)
                state.time_ms.append(event.T)
                state.price.append(event.p)
                state.qty.append(event.q)
                state.side.append(-1.0 if event.m else 1.0)
                state.event_time_ms = max(state.event_time_ms, event.E)
        self._position = end

    def _prime(self) -> None:
        """Play until every symbol's book is synced, so the first publication is LIVE."""
        while self._position < len(self._messages) and (
            not self._states or not all(s.synced for s in self._states.values())
        ):
            self._consume(1)
        self._consume(self.messages_per_step)
        self.store.publish_symbols(symbol_infos(self.symbols))
        self.publish()

    def publish(self) -> None:
        """Publish every symbol once (seq + 1) and the feed status."""
        self._seq += 1
        now = time.time()
        infos = {info.symbol: info for info in symbol_infos(self.symbols)}
        for symbol, state in self._states.items():
            self.store.publish(
                SymbolSnapshot(
                    symbol=symbol,
                    seq=self._seq,
                    book=state.book_view(),
                    trades=state.trade_view(),
                    info=infos[symbol],
                    published_at=now,
                )
            )
        self.store.publish_status(
            FeedStatus(
                source="REPLAY",
                endpoint="recording",
                recording="spot_BTCUSDT-ETHUSDT-DOTUSDT_20210404T2003Z_cryptofeed",
                recording_date=self.recording_date,
                connection_state="CONNECTED",
                messages_per_s=self.messages_per_step / self.interval_s,
                event_lag_ms=12.0,
                last_message_age_s=0.0,
                published_at=now,
            )
        )

    def step(self) -> None:
        """Consume the next messages and publish."""
        self._consume(self.messages_per_step)
        self.publish()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.step()

    def start(self) -> RecordedFeed:
        self._thread = threading.Thread(target=self._run, name="recorded-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
