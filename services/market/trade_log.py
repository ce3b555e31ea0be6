"""The recent trades of one symbol: a bounded columnar ring buffer with rolling totals.

Each trade is one row of four numpy columns — ``trade_id`` int64, ``time_ms`` int64,
``price`` float64 and ``qty`` float64 signed by the taker's side (+ taker bought, − taker
sold; Binance ``m`` true means the buyer was the maker, so the taker sold) — 32 bytes per
trade. When the ring is full the oldest row is evicted. The columns start at
``initial_rows`` (``INITIAL_ROWS``) and double as trades arrive, up to ``capacity``:
allocated at full size, 1,500 symbols' empty 100,000-row logs took ≈ 800 MB resident before
a trade arrived (once a large buffer has been freed, glibc serves such arrays from the heap
and zero-fills them).

Ids are the stream's own (``t`` for ``trade``, ``a`` for ``aggTrade``) and increase by one.
A repeated id is dropped and counted; a jump leaves a gap, which is recorded. With
``backfill_gaps=True`` the log instead *holds* the live trades that follow a gap as pending
while the feed fetches the missing ids from REST (``aggTrades`` / ``historicalTrades`` with
``fromId``):

1. ``add`` returns a ``TradeGap`` (first and last missing id) when it sees the jump; the
   feed fetches ``fromId=gap.first_id``;
2. the feed calls ``backfill(rows)`` with what it got (any order, may overlap); rows in the
   gap are merged in id order and, once the gap is closed, the pending trades are released;
   a partial answer returns the gap that is still open, to fetch again;
3. if the ids cannot be had, ``abandon_backfill()`` records the gap as permanent and releases
   the pending trades.

Rolling totals over the rows in the ring (count, taker buy/sell base volume and quote
volume, hence VWAP = quote/base) are updated in O(1) per trade: the evicted row is
subtracted. To stop floating-point drift the totals are recomputed from the columns once per
``capacity`` evictions (O(capacity), amortised O(1)).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from services.market.views import TradeView

DEFAULT_CAPACITY = 100_000
INITIAL_ROWS = 1024
DEFAULT_MAX_PENDING = 50_000

TradeRow = tuple[int, int, float, float, bool]
"""(trade id, trade time ms, price, base quantity, buyer is maker) — as on the wire."""


def trade_rows(view: TradeView) -> list[TradeRow]:
    """A view's trades as log rows (id, time, price, unsigned qty, buyer is maker), one
    column at a time (``tolist`` gives Python ints and floats)."""
    columns = (
        view.trade_id.astype(np.int64).tolist(),
        view.time_ms.astype(np.int64).tolist(),
        view.price.astype(np.float64).tolist(),
        np.abs(view.qty).astype(np.float64).tolist(),
        (view.side < 0).tolist(),
    )
    return list(zip(*columns, strict=True))


@dataclass(frozen=True, slots=True)
class TradeGap:
    """Trade ids ``first_id``..``last_id`` (inclusive) that the stream did not deliver."""

    first_id: int
    last_id: int

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass(frozen=True, slots=True)
class TradeTotals:
    """Totals over the trades in the window.

    ``buy_volume``/``sell_volume``: base quantity of trades whose taker bought/sold;
    ``buy_quote``/``sell_quote``: the same in quote units (Σ price·qty);
    ``vwap`` = (buy_quote + sell_quote) / (buy_volume + sell_volume), 0 when empty;
    ``delta`` = buy_volume − sell_volume.
    """

    count: int
    buy_volume: float
    sell_volume: float
    buy_quote: float
    sell_quote: float

    @property
    def volume(self) -> float:
        return self.buy_volume + self.sell_volume

    @property
    def vwap(self) -> float:
        volume = self.buy_volume + self.sell_volume
        return (self.buy_quote + self.sell_quote) / volume if volume > 0.0 else 0.0

    @property
    def delta(self) -> float:
        return self.buy_volume - self.sell_volume


class TradeLog:
    """Bounded trade window of one symbol with id dedupe, gap tracking and backfill."""

    __slots__ = (
        "_buy_quote",
        "_buy_volume",
        "_evictions",
        "_head",
        "_id_cells",
        "_ids",
        "_pending",
        "_price_cells",
        "_prices",
        "_qty_cells",
        "_qtys",
        "_rows",
        "_sell_quote",
        "_sell_volume",
        "_size",
        "_time_cells",
        "_times",
        "backfill_gaps",
        "capacity",
        "duplicates",
        "gaps",
        "kind",
        "last_id",
        "max_pending",
        "open_gap",
        "rewrites",
        "symbol",
    )

    def __init__(
        self,
        symbol: str,
        capacity: int = DEFAULT_CAPACITY,
        kind: str = "trade",
        backfill_gaps: bool = False,
        max_pending: int = DEFAULT_MAX_PENDING,
        initial_rows: int = INITIAL_ROWS,
    ) -> None:
        if capacity < 1 or initial_rows < 1:
            raise ValueError("capacity and initial_rows must be at least 1")
        self.symbol = symbol
        self.kind = kind
        self.capacity = capacity
        self.backfill_gaps = backfill_gaps
        self.max_pending = max_pending
        self._head = 0
        self._size = 0
        self.rewrites = 0  # times the ring was rebuilt (a warm-up); otherwise it only appends
        self._allocate(min(capacity, initial_rows))
        self._evictions = 0
        self.last_id = -1
        self.duplicates = 0
        self.gaps: list[TradeGap] = []
        self.open_gap: TradeGap | None = None
        self._pending: list[TradeRow] = []
        self._buy_volume = 0.0
        self._sell_volume = 0.0
        self._buy_quote = 0.0
        self._sell_quote = 0.0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes held by the four columns (32 per allocated row: at most ``capacity``)."""
        return self._ids.nbytes + self._times.nbytes + self._prices.nbytes + self._qtys.nbytes

    @property
    def pending(self) -> int:
        """Live trades held back until the open gap is backfilled or abandoned."""
        return len(self._pending)

    def add(
        self, trade_id: int, time_ms: int, price: float, qty: float, buyer_maker: bool
    ) -> TradeGap | None:
        """Append one trade; returns the gap when this trade reveals one and the log holds
        trades for backfill (``backfill_gaps``), else None. O(1)."""
        if trade_id != self.last_id + 1 or self.open_gap is not None:
            return self._add_out_of_sequence(trade_id, time_ms, price, qty, buyer_maker)
        self.last_id = trade_id
        self._append(trade_id, time_ms, price, -qty if buyer_maker else qty)
        return None

    def extend(self, rows: Iterable[TradeRow]) -> None:
        """Add rows in the order given (each as ``add``)."""
        for row in rows:
            self.add(*row)

    def warm_up(self, rows: Iterable[TradeRow]) -> None:
        """Merge REST history into the log at start: rows older than what the stream has
        already delivered go before it. Rebuilds the ring and totals in O(capacity).

        Live trades held behind an open gap join the merge and the gap is closed: the rows
        usually cover it, and releasing those trades later would add them a second time."""
        merged: dict[int, TradeRow] = {int(r[0]): r for r in rows}
        if not merged:
            return
        for row in self._pending:
            merged[int(row[0])] = row
        self._pending = []
        self.open_gap = None
        ids, times, prices, qtys = self._ordered_columns()
        for i in range(ids.shape[0]):
            q = float(qtys[i])
            merged[int(ids[i])] = (int(ids[i]), int(times[i]), float(prices[i]), abs(q), q < 0)
        self._reset_ring()
        last_id = self.last_id
        self.last_id = -1
        for trade_id in sorted(merged):
            row = merged[trade_id]
            if self.last_id >= 0 and trade_id != self.last_id + 1:
                self.gaps.append(TradeGap(self.last_id + 1, trade_id - 1))
            self.last_id = trade_id
            self._append(trade_id, row[1], row[2], -row[3] if row[4] else row[3])
        self.last_id = max(self.last_id, last_id)

    def backfill(self, rows: Iterable[TradeRow]) -> TradeGap | None:
        """Merge REST rows into the open gap; releases pending trades when it is closed.

        Returns the gap still open (to fetch again), or None once the log is continuous or
        a new gap has opened among the released trades (then that gap is returned).
        """
        gap = self.open_gap
        if gap is None:
            return None
        found = {int(r[0]): r for r in rows if gap.first_id <= r[0] <= gap.last_id}
        next_id = gap.first_id
        while next_id in found:
            row = found[next_id]
            self._append(next_id, row[1], row[2], -row[3] if row[4] else row[3])
            next_id += 1
        if next_id <= gap.last_id:
            self.open_gap = TradeGap(next_id, gap.last_id)
            return self.open_gap
        return self._release_pending()

    def abandon_backfill(self) -> TradeGap | None:
        """Give up on the open gap: record it as permanent and release the pending trades.
        Returns a new gap if one opened among the released trades."""
        if self.open_gap is None:
            return None
        self.gaps.append(self.open_gap)
        return self._release_pending()

    def totals(self) -> TradeTotals:
        """Rolling totals over the trades in the ring. O(1)."""
        return TradeTotals(
            self._size, self._buy_volume, self._sell_volume, self._buy_quote, self._sell_quote
        )

    def view(self, last_n: int | None = None, since_ms: int | None = None) -> TradeView:
        """Trades oldest first as an immutable copy: the last ``last_n`` and/or those at or
        after ``since_ms``. ``qty`` is absolute and ``side`` is ±1.0. O(rows returned)."""
        ids, times, prices, qtys = self._ordered_columns(last_n)
        if since_ms is not None:
            start = int(np.searchsorted(times, since_ms, side="left"))
            ids, times, prices, qtys = ids[start:], times[start:], prices[start:], qtys[start:]
        return TradeView(
            symbol=self.symbol,
            trade_id=ids,
            time_ms=times,
            price=prices,
            qty=np.abs(qtys),
            side=np.copysign(1.0, qtys),
            kind=self.kind,
        )

    @property
    def newest_id(self) -> int:
        """Id of the newest trade in the ring (-1 when empty); trades held behind an open
        gap are not in the ring yet."""
        if self._size == 0:
            return -1
        return int(self._id_cells[(self._head - 1) % self.capacity])

    def released_after(self, trade_id: int) -> TradeView:
        """Trades in the ring with an id above ``trade_id``, oldest first (as ``view``).
        O(rows returned): ids in the ring increase, so it walks back from the newest."""
        cells = self._id_cells
        capacity = self.capacity
        n = 0
        i = (self._head - 1) % capacity
        while n < self._size and cells[i] > trade_id:
            n += 1
            i = i - 1 if i > 0 else capacity - 1
        return self.view(last_n=n)

    def _add_out_of_sequence(
        self, trade_id: int, time_ms: int, price: float, qty: float, buyer_maker: bool
    ) -> TradeGap | None:
        last = self.last_id
        if trade_id != last + 1:
            if trade_id <= last:
                self.duplicates += 1
                return None
            if last >= 0 and self.open_gap is None:
                gap = TradeGap(last + 1, trade_id - 1)
                if self.backfill_gaps:
                    self.open_gap = gap
                    self._pending.append((trade_id, time_ms, price, qty, buyer_maker))
                    self.last_id = trade_id
                    return gap
                self.gaps.append(gap)
        self.last_id = trade_id
        if self.open_gap is not None:
            self._pending.append((trade_id, time_ms, price, qty, buyer_maker))
            if len(self._pending) > self.max_pending:
                return self.abandon_backfill()
            return None
        self._append(trade_id, time_ms, price, -qty if buyer_maker else qty)
        return None

    def _append(self, trade_id: int, time_ms: int, price: float, signed_qty: float) -> None:
        i = self._head
        if self._size == self.capacity:
            old_qty = self._qty_cells[i]
            old_price = self._price_cells[i]
            if old_qty < 0.0:
                self._sell_volume += old_qty
                self._sell_quote += old_qty * old_price
            else:
                self._buy_volume -= old_qty
                self._buy_quote -= old_qty * old_price
            self._evictions += 1
        else:
            if i == self._rows:  # not full yet and out of rows: double them (never wraps)
                self._allocate(min(self.capacity, 2 * self._rows))
            self._size += 1
        self._id_cells[i] = trade_id
        self._time_cells[i] = time_ms
        self._price_cells[i] = price
        self._qty_cells[i] = signed_qty
        if signed_qty < 0.0:
            self._sell_volume -= signed_qty
            self._sell_quote -= signed_qty * price
        else:
            self._buy_volume += signed_qty
            self._buy_quote += signed_qty * price
        i += 1
        self._head = 0 if i == self.capacity else i
        if self._evictions >= self.capacity:
            self._recompute_totals()

    def _recompute_totals(self) -> None:
        self._evictions = 0
        n = self._size
        qtys = self._qtys[:n]
        quote = qtys * self._prices[:n]
        sell = qtys < 0.0
        self._buy_volume = float(qtys.sum(where=~sell))
        self._sell_volume = -float(qtys.sum(where=sell))
        self._buy_quote = float(quote.sum(where=~sell))
        self._sell_quote = -float(quote.sum(where=sell))

    def _ordered_columns(
        self, last_n: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = self._size if last_n is None else max(0, min(last_n, self._size))
        start = (self._head - n) % self.capacity
        if start + n <= self.capacity:
            index = slice(start, start + n)
            return (
                self._ids[index].copy(),
                self._times[index].copy(),
                self._prices[index].copy(),
                self._qtys[index].copy(),
            )
        take = np.r_[start : self.capacity, 0 : (start + n) % self.capacity]
        return self._ids[take], self._times[take], self._prices[take], self._qtys[take]

    def _allocate(self, rows: int) -> None:
        """Columns of ``rows`` rows holding the current ones (rows ``0..size``: the ring has
        not wrapped while it is not full; none before the first columns)."""
        size = self._size
        columns = [np.zeros(rows, dtype=d) for d in (np.int64, np.int64, np.float64, np.float64)]
        if size:
            old_columns = (self._ids, self._times, self._prices, self._qtys)
            for column, old in zip(columns, old_columns, strict=True):
                column[:size] = old[:size]
        self._ids, self._times, self._prices, self._qtys = columns
        self._id_cells = memoryview(self._ids)
        self._time_cells = memoryview(self._times)
        self._price_cells = memoryview(self._prices)
        self._qty_cells = memoryview(self._qtys)
        self._rows = rows

    def _reset_ring(self) -> None:
        self.rewrites += 1
        self._head = 0
        self._size = 0
        self._evictions = 0
        self._buy_volume = self._sell_volume = self._buy_quote = self._sell_quote = 0.0

    def _release_pending(self) -> TradeGap | None:
        self.open_gap = None
        pending, self._pending = self._pending, []
        self.last_id = pending[0][0] - 1 if pending else self.last_id
        for index, row in enumerate(pending):
            gap = self.add(*row)
            if gap is not None:
                self._pending.extend(pending[index + 1 :])
                return gap
        return None
