"""The Redis record codec: a record decodes to the snapshot it encoded (trades aside), and
its header is the JSON of the snapshot's rules and ticker field by field, in order."""

from __future__ import annotations

import json
import struct
from collections import deque
from dataclasses import asdict, replace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from services.market.views import BookView, SymbolInfo, SyncState, TradeView
from services.store import Candle, SymbolSnapshot, Ticker24h
from services.store_codec import CandleRows, TradePointer, decode_record, encode_record

finite = st.floats(min_value=1e-8, max_value=1e9, allow_nan=False)


def _snapshot(info: SymbolInfo, ticker: Ticker24h | None) -> SymbolSnapshot:
    book = BookView(
        info.symbol,
        np.array([101.0, 100.5]),
        np.array([1.0, 2.0]),
        np.array([102.0]),
        np.array([0.5]),
        last_update_id=42,
        sync_state=SyncState.LIVE,
        event_time_ms=1_700_000_000_000,
    )
    candle = Candle(1_700_000_000_000, "1m", 1.0, 2.0, 0.5, 1.5, 10.0, 4.0, False)
    return SymbolSnapshot(
        info.symbol, 7, book, TradeView(info.symbol), info, (candle,), ticker, 1.5
    )


@given(
    tick=finite,
    step=finite,
    decimals=st.integers(0, 12),
    ticker=st.none() | st.builds(Ticker24h, finite, finite, finite, finite, finite, finite,
                                  st.integers(0, 2**53)),
)  # fmt: skip
def test_a_record_decodes_to_its_snapshot_with_rules_and_ticker_in_field_order(
    tick: float, step: float, decimals: int, ticker: Ticker24h | None
) -> None:
    info = SymbolInfo("DOTUSDT", "TRADING", "DOT", "USDT", tick, step, decimals, decimals + 1)
    snapshot = _snapshot(info, ticker)
    data = encode_record(snapshot, TradePointer("g1", 3, 500), "worker-a")
    (size,) = struct.unpack_from("<I", data)
    header = json.loads(data[4 : 4 + size])
    assert list(header["info"].items()) == list(asdict(info).items())
    assert header["ticker"] == (None if ticker is None else list(asdict(ticker).values()))
    decoded = decode_record(data)
    assert decoded.writer == "worker-a"
    assert decoded.trades == TradePointer("g1", 3, 500)
    assert decoded.snapshot.info == info
    assert decoded.snapshot.ticker == ticker
    assert decoded.snapshot.candles == snapshot.candles
    book = decoded.snapshot.book
    assert book.sync_state is SyncState.LIVE and book.last_update_id == 42
    assert book.bid_prices.tolist() == [101.0, 100.5] and book.ask_qtys.tolist() == [0.5]


def test_the_store_seq_is_written_instead_of_the_snapshots() -> None:
    snapshot = _snapshot(SymbolInfo("DOTUSDT", "TRADING", "DOT", "USDT"), None)
    data = encode_record(snapshot, TradePointer("g1", 3, 500), "worker-a", seq=10**12 + 7)
    assert decode_record(data).snapshot.seq == 10**12 + 7
    assert decode_record(encode_record(snapshot, TradePointer("g1", 3, 500), "w")).snapshot.seq == (
        snapshot.seq
    )


_bar_step = st.one_of(
    st.tuples(st.just("new"), finite),  # a new bar (the oldest dropped past 120)
    st.tuples(st.just("update"), finite),  # the open bar replaced
    st.tuples(st.just("same"), finite),  # nothing changed
    st.tuples(st.just("other"), finite),  # a different symbol's record between
)


@given(steps=st.lists(_bar_step, max_size=160))
def test_candle_rows_kept_between_records_give_the_same_bytes(steps) -> None:
    """Records encoded with a writer's ``CandleRows`` (only new bars encoded) are the very
    bytes of records encoded from scratch, whatever bars came, changed and dropped."""
    rows = CandleRows()
    info = SymbolInfo("DOTUSDT")
    bars: deque[Candle] = deque(maxlen=120)
    pointer = TradePointer("g1", 3, 500)
    for kind, price in steps:
        if kind == "new" or (kind == "update" and not bars):
            at = bars[-1].open_time_ms + 60_000 if bars else 0
            bars.append(Candle(at, "1m", price, price, price, price, 1.0, 0.5, False))
        elif kind == "update":
            last = bars[-1]
            bars[-1] = Candle(last.open_time_ms, "1m", last.open, price, 0.1, price, 2.0, 1.0, True)
        symbol = "ETHUSDT" if kind == "other" else "DOTUSDT"
        snapshot = replace(_snapshot(replace(info, symbol=symbol), None), candles=tuple(bars))
        data = encode_record(snapshot, pointer, "w", 9, rows)
        assert data == encode_record(snapshot, pointer, "w", 9)
        assert decode_record(data).snapshot.candles == tuple(bars)
