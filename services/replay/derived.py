"""Market data the local exchange derives because the recording does not carry it.

Everything here is labelled *derived* where it is served (``X-Tapescope-Derived: true``
header on REST, a ``derived`` note in exchangeInfo). Definitions:

* **aggTrade from trades** — consecutive trades of one symbol with the same trade time ``T``,
  side ``m`` and price ``p`` are one taker order at one price: one aggTrade with ``f``..``l``
  and the summed quantity. Aggregate ids count from 1 per replay.
* **24 h ticker** — statistics over the trades replayed so far (recordings are shorter than a
  day): open = first price, last = latest price, high/low, base volume ``Σq``, quote volume
  ``Σp·q``, weighted average = quote volume / base volume, trade count and id range.
* **klines** — trades bucketed by open time ``t − t mod interval``: OHLC, base and quote
  volume, taker-buy base/quote volume (trades with ``m`` false), count and id range.
* **partial depth** (``@depth5/10/20``) and **bookTicker** — read off the exchange's book.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.replay.exchange_book import ExchangeBook, Level

INTERVAL_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One fill as the trade endpoints serve it. ``buyer_maker`` true: the taker sold."""

    id: int
    price: str
    qty: str
    time: int
    buyer_maker: bool


@dataclass(frozen=True, slots=True)
class AggTradeRecord:
    """One taker order's fills at one price: aggregate id ``a``, trade ids ``f``..``l``."""

    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's field name
    T: int
    m: bool

    def rest(self) -> dict:
        return {
            "a": self.a,
            "p": self.p,
            "q": self.q,
            "f": self.f,
            "l": self.l,
            "T": self.T,
            "m": self.m,
            "M": True,
        }

    def event(self, symbol: str, event_ms: int) -> dict:
        return {"e": "aggTrade", "E": event_ms, "s": symbol, **self.rest()}


def decimal_text(value: Decimal, places: int) -> str:
    """A decimal as Binance writes it: fixed point with ``places`` decimals."""
    return f"{value:.{places}f}"


class AggTradeBuilder:
    """Groups consecutive trades into aggTrades (see the module docstring)."""

    def __init__(self, qty_places: int) -> None:
        self.qty_places = qty_places
        self.next_id = 1
        self._open: list[TradeRecord] = []

    def add(self, trade: TradeRecord) -> AggTradeRecord | None:
        """Add a trade; returns the aggTrade it closed, if any."""
        closed = None
        if self._open:
            head = self._open[0]
            same_order = (
                head.time == trade.time
                and head.buyer_maker == trade.buyer_maker
                and head.price == trade.price
                and self._open[-1].id + 1 == trade.id
            )
            if not same_order:
                closed = self.flush()
        self._open.append(trade)
        return closed

    def flush(self) -> AggTradeRecord | None:
        """Close the open aggTrade (the taker order is complete)."""
        if not self._open:
            return None
        trades, self._open = self._open, []
        qty = sum(Decimal(t.qty) for t in trades)
        head = trades[0]
        record = AggTradeRecord(
            self.next_id,
            head.price,
            decimal_text(qty, self.qty_places),
            head.id,
            trades[-1].id,
            head.time,
            head.buyer_maker,
        )
        self.next_id += 1
        return record


class TickerStats:
    """Running 24 h ticker statistics over the trades replayed so far."""

    def __init__(self, price_places: int, qty_places: int) -> None:
        self.price_places = price_places
        self.qty_places = qty_places
        self.open: Decimal | None = None
        self.high = Decimal(0)
        self.low = Decimal(0)
        self.last = Decimal(0)
        self.last_qty = Decimal(0)
        self.volume = Decimal(0)
        self.quote_volume = Decimal(0)
        self.first_id = -1
        self.last_id = -1
        self.count = 0
        self.open_time = 0
        self.close_time = 0

    def add(self, first_id: int, last_id: int, price: str, qty: str, time_ms: int) -> None:
        p, q = Decimal(price), Decimal(qty)
        if self.open is None:
            self.open, self.high, self.low = p, p, p
            self.first_id, self.open_time = first_id, time_ms
        self.high = max(self.high, p)
        self.low = min(self.low, p)
        self.last, self.last_qty = p, q
        self.volume += q
        self.quote_volume += p * q
        self.last_id, self.close_time = last_id, time_ms
        self.count += last_id - first_id + 1

    def _numbers(self) -> dict[str, str]:
        pp, qp = self.price_places, self.qty_places
        open_price = self.open or Decimal(0)
        change = self.last - open_price
        percent = change / open_price * 100 if open_price else Decimal(0)
        average = self.quote_volume / self.volume if self.volume else Decimal(0)
        return {
            "o": decimal_text(open_price, pp),
            "h": decimal_text(self.high, pp),
            "l": decimal_text(self.low, pp),
            "c": decimal_text(self.last, pp),
            "Q": decimal_text(self.last_qty, qp),
            "v": decimal_text(self.volume, qp),
            "q": decimal_text(self.quote_volume, pp),
            "p": decimal_text(change, pp),
            "P": decimal_text(percent, 3),
            "w": decimal_text(average, pp),
        }

    def mini_ticker_event(self, symbol: str, event_ms: int) -> dict:
        n = self._numbers()
        return {"e": "24hrMiniTicker", "E": event_ms, "s": symbol} | {
            k: n[k] for k in ("c", "o", "h", "l", "v", "q")
        }

    def ticker_event(self, symbol: str, event_ms: int, book: ExchangeBook) -> dict:
        n = self._numbers()
        bid, ask = book.best()
        return {
            "e": "24hrTicker",
            "E": event_ms,
            "s": symbol,
            "p": n["p"],
            "P": n["P"],
            "w": n["w"],
            "x": n["o"],
            "c": n["c"],
            "Q": n["Q"],
            "b": bid[0] if bid else "0",
            "B": bid[1] if bid else "0",
            "a": ask[0] if ask else "0",
            "A": ask[1] if ask else "0",
            "o": n["o"],
            "h": n["h"],
            "l": n["l"],
            "v": n["v"],
            "q": n["q"],
            "O": self.open_time,
            "C": self.close_time,
            "F": self.first_id,
            "L": self.last_id,
            "n": self.count,
        }

    def rest_ticker(self, symbol: str, book: ExchangeBook) -> dict:
        """``GET /api/v3/ticker/24hr`` body (type FULL)."""
        event = self.ticker_event(symbol, 0, book)
        names = {
            "p": "priceChange",
            "P": "priceChangePercent",
            "w": "weightedAvgPrice",
            "x": "prevClosePrice",
            "c": "lastPrice",
            "Q": "lastQty",
            "b": "bidPrice",
            "B": "bidQty",
            "a": "askPrice",
            "A": "askQty",
            "o": "openPrice",
            "h": "highPrice",
            "l": "lowPrice",
            "v": "volume",
            "q": "quoteVolume",
            "O": "openTime",
            "C": "closeTime",
            "F": "firstId",
            "L": "lastId",
            "n": "count",
        }
        return {"symbol": symbol} | {name: event[key] for key, name in names.items()}


WEEK_OPEN_MS = 4 * 86_400_000
"""Binance's weekly klines open on Monday 00:00 UTC; the epoch (1970-01-01) was a Thursday,
four days after a Monday."""


def kline_open_time(time_ms: int, interval_ms: int) -> int:
    """Open time of the kline of ``interval_ms`` holding ``time_ms``: a multiple of the
    interval since the epoch (weeks since a Monday, as Binance aligns them)."""
    phase = WEEK_OPEN_MS if interval_ms == INTERVAL_MS["1w"] else 0
    return time_ms - (time_ms - phase) % interval_ms


def kline_rows(
    trades: list[AggTradeRecord],
    interval_ms: int,
    price_places: int,
    qty_places: int,
) -> list[list]:
    """REST kline rows (``[t, o, h, l, c, v, T, q, n, V, Q, "0"]``) from trades, oldest
    first. Each trade is an aggTrade-shaped record (a single trade has ``f == l``)."""
    rows: list[list] = []
    bar: dict | None = None
    for trade in trades:
        open_time = kline_open_time(trade.T, interval_ms)
        p, q = Decimal(trade.p), Decimal(trade.q)
        if bar is None or bar["t"] != open_time:
            if bar is not None:
                rows.append(_row(bar, interval_ms, price_places, qty_places))
            bar = {"t": open_time, "o": p, "h": p, "l": p, "v": Decimal(0), "q": Decimal(0)}
            bar |= {"V": Decimal(0), "Q": Decimal(0), "n": 0, "f": trade.f}
        bar["h"], bar["l"], bar["c"] = max(bar["h"], p), min(bar["l"], p), p
        bar["v"] += q
        bar["q"] += p * q
        if not trade.m:
            bar["V"] += q
            bar["Q"] += p * q
        bar["n"] += trade.l - trade.f + 1
        bar["L"] = trade.l
    if bar is not None:
        rows.append(_row(bar, interval_ms, price_places, qty_places))
    return rows


def _row(bar: dict, interval_ms: int, pp: int, qp: int) -> list:
    return [
        bar["t"],
        decimal_text(bar["o"], pp),
        decimal_text(bar["h"], pp),
        decimal_text(bar["l"], pp),
        decimal_text(bar["c"], pp),
        decimal_text(bar["v"], qp),
        bar["t"] + interval_ms - 1,
        decimal_text(bar["q"], pp),
        bar["n"],
        decimal_text(bar["V"], qp),
        decimal_text(bar["Q"], pp),
        "0",
        bar["f"],
        bar["L"],
    ]


def kline_event(symbol: str, interval: str, row: list, event_ms: int) -> dict:
    """A ``@kline_<interval>`` event for the latest bar (open unless the interval ended)."""
    return {
        "e": "kline",
        "E": event_ms,
        "s": symbol,
        "k": {
            "t": row[0],
            "T": row[6],
            "s": symbol,
            "i": interval,
            "f": row[12],
            "L": row[13],
            "o": row[1],
            "c": row[4],
            "h": row[2],
            "l": row[3],
            "v": row[5],
            "n": row[8],
            "x": event_ms > row[6],
            "q": row[7],
            "V": row[9],
            "Q": row[10],
            "B": "0",
        },
    }


def continuous_kline_event(event: dict) -> dict:
    """A USD-M ``<pair>_perpetual@continuousKline_<interval>`` event from a kline event of
    the perpetual (the pair's trades are the contract's)."""
    bar = {key: value for key, value in event["k"].items() if key != "s"}
    head = {"e": "continuous_kline", "E": event["E"], "ps": event["s"], "ct": "PERPETUAL"}
    return head | {"k": bar}


def partial_depth(
    book: ExchangeBook, levels: int, market: str, symbol: str, ms: int, previous: int = -1
) -> dict:
    """``@depth<N>`` payload: spot ``{lastUpdateId, bids, asks}``; USD-M adds the event
    fields and names the sides ``b``/``a``, with the update ids since the previous push as
    Binance sends them: ``pu`` = the previous push's ``u`` (``previous``), ``U = pu + 1``,
    ``u`` = the book's update id."""
    bids, asks = book.top_bids(levels), book.top_asks(levels)
    if market == "usdm":
        u = book.last_update_id
        pu = u if previous < 0 else previous
        head = {"e": "depthUpdate", "E": ms, "T": ms, "s": symbol, "U": pu + 1, "u": u, "pu": pu}
        return head | {"b": bids, "a": asks}
    return {"lastUpdateId": book.last_update_id, "bids": bids, "asks": asks}


def book_ticker(
    bid: Level | None, ask: Level | None, last_update_id: int, market: str, symbol: str, ms: int
) -> dict | None:
    """``@bookTicker`` payload from the book's best levels (``ExchangeBook.best``) as of
    ``last_update_id``; ``None`` while a side is empty."""
    if bid is None or ask is None:
        return None
    body = {"u": last_update_id, "s": symbol, "b": bid[0], "B": bid[1]}
    body |= {"a": ask[0], "A": ask[1]}
    if market == "usdm":
        return {"e": "bookTicker"} | body | {"T": ms, "E": ms}
    return body
