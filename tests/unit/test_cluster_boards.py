"""The market board of sharded workers: book columns only for owned symbols, versions
stamped on change, merged per owner — and no change is ever missed by a reader that asks
for the rows changed since the version it saw (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from services.cluster.boards import SKEW_US, PublishedBoard, merge_boards, stamp_rows
from services.market.market_board import WatchlistRow, WatchlistRows

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")


def _row(symbol: str, last: float, spread: float | None = None) -> WatchlistRow:
    state = "" if spread is None else "LIVE"
    return WatchlistRow(symbol, symbol[:-4], "USDT", last=last, spread_bps=spread,
                        liquidity=None if spread is None else 50.0, sync_state=state)  # fmt: skip


def _board(rows, at: float) -> PublishedBoard:
    stamped = tuple(rows)
    return PublishedBoard(at, WatchlistRows(stamped, max(r.version for r in stamped)))


def _rows(stamped) -> dict[str, WatchlistRow]:
    return {symbol: s.row for symbol, s in stamped.items()}


def test_a_worker_shows_book_columns_only_for_symbols_it_owns() -> None:
    board = WatchlistRows((_row("BTCUSDT", 1.0, 0.5), _row("ETHUSDT", 2.0, 0.7)), 2)
    rows = _rows(stamp_rows({}, board, lambda s: s == "BTCUSDT", 100))
    assert rows["BTCUSDT"] == replace(board.rows[0], version=100)
    assert rows["ETHUSDT"] == replace(_row("ETHUSDT", 2.0), version=100)


def test_versions_move_only_when_a_row_or_its_ownership_changes() -> None:
    board = WatchlistRows((replace(_row("BTCUSDT", 1.0, 0.5), version=1), _row("ETHUSDT", 2.0)))
    first = stamp_rows({}, board, lambda s: True, 100)
    changed = WatchlistRows((board.rows[0], replace(_row("ETHUSDT", 2.5), version=7)))
    again = _rows(stamp_rows(first, changed, lambda s: True, 200))
    assert again["BTCUSDT"].version == 100 and again["ETHUSDT"].version == 200
    assert again["ETHUSDT"].last == 2.5
    lost = _rows(stamp_rows(first, board, lambda s: s != "BTCUSDT", 300))
    assert lost["BTCUSDT"].version == 300 and lost["BTCUSDT"].sync_state == ""
    assert lost["ETHUSDT"].version == 100


def test_merge_takes_book_columns_from_the_owner_and_drops_silent_boards() -> None:
    a = _board([replace(_row("BTCUSDT", 1.0, 0.5), version=10), _row("ETHUSDT", 2.0)], 100.0)
    b = _board([replace(_row("BTCUSDT", 1.1), version=20), _row("ETHUSDT", 2.1, 0.9)], 101.0)
    merged = merge_boards([b, a], now=101.5, stale_s=5.0)
    rows = {r.symbol: r for r in merged.rows}
    assert rows["BTCUSDT"].spread_bps == 0.5 and rows["BTCUSDT"].version == 20
    assert rows["ETHUSDT"].spread_bps == 0.9
    alone = merge_boards([b, a], now=105.5, stale_s=5.0, dropped_us=5_000_000)
    rows = {r.symbol: r for r in alone.rows}
    assert rows["BTCUSDT"].spread_bps is None and rows["BTCUSDT"].last == 1.1
    assert all(r.version >= 5_000_000 for r in alone.rows)  # sent again: the owner is gone
    assert alone.version == 5_000_000 - SKEW_US
    assert merge_boards([], 0.0, 5.0) == WatchlistRows()


def _content(board: WatchlistRows) -> dict[str, WatchlistRow]:
    return {r.symbol: replace(r, version=0) for r in board.rows}


# One step: (worker 0 or 1, symbol index, new last price or None = no change, owner flip).
STEPS = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 3), st.none() | st.floats(1, 2), st.booleans()),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(steps=STEPS)
def test_a_reader_following_versions_never_misses_a_change(steps) -> None:
    """Two workers publish in turn on one clock; after every publication a reader asks for
    the rows changed since the version it saw: its copy always equals the merged board."""
    owners = {s: i % 2 for i, s in enumerate(SYMBOLS)}
    prices = dict.fromkeys(SYMBOLS, 1.0)
    sources = [MarketBoardRows(), MarketBoardRows()]
    stamped: list[dict] = [{}, {}]
    published: list[PublishedBoard | None] = [None, None]
    clock_us = 1_000_000_000
    seen_version, copy = 0, {}
    for worker, index, price, flip in steps:
        symbol = SYMBOLS[index]
        if price is not None:
            prices[symbol] = price
        if flip:
            owners[symbol] = 1 - owners[symbol]
        clock_us += 250_000
        board = sources[worker].update([_row(s, prices[s], 1.0 + worker) for s in SYMBOLS])
        owns = lambda s, w=worker: owners[s] == w  # noqa: E731
        stamped[worker] = stamp_rows(stamped[worker], board, owns, clock_us)
        published[worker] = _board([x.row for x in stamped[worker].values()], clock_us / 1e6)
        merged = merge_boards([b for b in published if b], clock_us / 1e6, stale_s=60.0)
        for row in merged.since(seen_version):
            copy[row.symbol] = replace(row, version=0)
        seen_version = merged.version
        assert copy == _content(merged)


class MarketBoardRows:
    """What ``MarketBoard.rows`` hands out: a row's version moves only when it changes."""

    def __init__(self) -> None:
        self.version = 0
        self.rows: dict[str, WatchlistRow] = {}

    def update(self, rows: list[WatchlistRow]) -> WatchlistRows:
        for row in rows:
            before = self.rows.get(row.symbol)
            if before is None or replace(before, version=0) != row:
                self.version += 1
                self.rows[row.symbol] = replace(row, version=self.version)
        return WatchlistRows(tuple(self.rows[s] for s in sorted(self.rows)), self.version)
