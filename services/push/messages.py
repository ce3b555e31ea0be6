"""The JSON messages the push streams send (schemas in ``docs/streams.md``).

Every message is one JSON object with a ``type``:

- ``trades``: a batch of trades of one symbol, oldest first, ids strictly increasing across
  messages of one connection; ``replay`` is true for trades sent from the window or the
  history store before the live ones (after ``?from_id=N``).
- ``prices``: best bid/ask with their sizes, mid, last trade price and the book's sync
  state. Bid and ask are ``null`` unless the book is LIVE and not crossed, so a client never
  sees a crossed or unsynced book as the current price.
- ``book``: the top levels of both sides when LIVE (empty lists otherwise), optionally only
  those within a band around the mid.
- ``alert``: an event of the alerts room, passed through as it was published.

Encoding is pure: functions from views to bytes (orjson), done once per message whatever
the number of subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from services.analytics.book import band_levels
from services.market.views import BookView, SyncState, TradeView

REPLAY_CHUNK = 1000
"""Trades per ``trades`` message when replaying a window."""


@dataclass(frozen=True, slots=True)
class Prices:
    """The top of one symbol's book and its last trade at one moment.

    ``best_bid``/``best_ask`` (and sizes) are None unless ``sync_state`` is LIVE and the book
    is not crossed; ``mid`` = (best_bid + best_ask) / 2 when both exist. ``last_price`` and
    ``last_trade_id`` are the newest trade's; ``event_time`` is the exchange time (ms) of the
    newest book change or trade that made this value.
    """

    symbol: str
    sync_state: str
    best_bid: float | None
    best_bid_qty: float | None
    best_ask: float | None
    best_ask_qty: float | None
    last_price: float | None
    last_trade_id: int | None
    event_time: int


def top_of_book(
    symbol: str,
    state: SyncState | str,
    bid: tuple[float, float] | None,
    ask: tuple[float, float] | None,
    last_price: float | None,
    last_trade_id: int | None,
    event_time: int,
) -> Prices:
    """``Prices`` from a book's best levels; an unsynced or crossed book shows no bid/ask."""
    shown = str(state) == SyncState.LIVE and bid is not None and ask is not None
    if shown and bid[0] >= ask[0]:  # type: ignore[index]
        shown = False
    return Prices(
        symbol=symbol,
        sync_state=str(state),
        best_bid=bid[0] if shown else None,  # type: ignore[index]
        best_bid_qty=bid[1] if shown else None,  # type: ignore[index]
        best_ask=ask[0] if shown else None,  # type: ignore[index]
        best_ask_qty=ask[1] if shown else None,  # type: ignore[index]
        last_price=last_price,
        last_trade_id=last_trade_id,
        event_time=event_time,
    )


def prices_message(prices: Prices) -> bytes:
    """The ``prices`` message of ``prices``."""
    mid = None
    if prices.best_bid is not None and prices.best_ask is not None:
        mid = (prices.best_bid + prices.best_ask) / 2
    return orjson.dumps(
        {
            "type": "prices",
            "symbol": prices.symbol,
            "sync_state": prices.sync_state,
            "best_bid": prices.best_bid,
            "best_bid_qty": prices.best_bid_qty,
            "best_ask": prices.best_ask,
            "best_ask_qty": prices.best_ask_qty,
            "mid": mid,
            "last_price": prices.last_price,
            "last_trade_id": prices.last_trade_id,
            "event_time": prices.event_time,
        }
    )


def trade_rows(trades: TradeView) -> list[dict[str, int | float | str]]:
    """The trades as the streams' rows: id, time (ms), price, qty, side ("buy" when the
    taker bought, else "sell")."""
    return [
        {"id": i, "time": t, "price": p, "qty": q, "side": "buy" if s > 0 else "sell"}
        for i, t, p, q, s in zip(
            trades.trade_id.tolist(),
            trades.time_ms.tolist(),
            trades.price.tolist(),
            trades.qty.tolist(),
            trades.side.tolist(),
            strict=True,
        )
    ]


def trades_message(trades: TradeView, replay: bool = False) -> bytes:
    """The ``trades`` message of a batch (rows as ``trade_rows``)."""
    return orjson.dumps(
        {"type": "trades", "symbol": trades.symbol, "replay": replay, "trades": trade_rows(trades)}
    )


def band_counts(book: BookView, levels: int, band_bps: int | None) -> tuple[int, int]:
    """How many levels per side (bids, asks) a ``book`` message carries: at most ``levels``,
    and with ``band_bps`` only those within ±band_bps basis points of the mid (of the
    side's best price when the other side is empty) — what a depth chart of that band
    draws (``services.analytics.book.band_levels``, the depth chart's own cut)."""
    return band_levels(book, None if band_bps is None else band_bps / 10_000.0, levels)


def book_message(book: BookView, levels: int, band_bps: int | None = None) -> bytes:
    """The ``book`` message: up to ``levels`` per side as [price, qty] when LIVE, only those
    within ±``band_bps`` of the mid when given (``band_counts``); empty when not LIVE."""
    live = book.is_live and not _crossed(book)
    kb, ka = band_counts(book, levels, band_bps) if live else (0, 0)
    return orjson.dumps(
        {
            "type": "book",
            "symbol": book.symbol,
            "sync_state": str(book.sync_state) if live or not book.is_live else "RESYNCING",
            "last_update_id": book.last_update_id,
            "event_time": book.event_time_ms,
            "bids": np.column_stack([book.bid_prices[:kb], book.bid_qtys[:kb]]).tolist(),
            "asks": np.column_stack([book.ask_prices[:ka], book.ask_qtys[:ka]]).tolist(),
        }
    )


def alert_message(event: dict) -> bytes:
    """The ``alert`` message: the published event's fields under ``type: alert``."""
    return orjson.dumps({**event, "type": "alert"})


def _crossed(book: BookView) -> bool:
    return bool(
        book.bid_prices.size and book.ask_prices.size and book.bid_prices[0] >= book.ask_prices[0]
    )


def slice_after(trades: TradeView, after_id: int) -> TradeView:
    """The trades of ``trades`` with an id above ``after_id`` (ids ascend)."""
    start = int(np.searchsorted(trades.trade_id, after_id, side="right"))
    if start == 0:
        return trades
    return slice_view(trades, start, len(trades))


def slice_view(trades: TradeView, start: int, stop: int) -> TradeView:
    """Rows ``start:stop`` of a trade view."""
    return TradeView(
        symbol=trades.symbol,
        trade_id=trades.trade_id[start:stop],
        time_ms=trades.time_ms[start:stop],
        price=trades.price[start:stop],
        qty=trades.qty[start:stop],
        side=trades.side[start:stop],
        kind=trades.kind,
    )


def concat(views: list[TradeView]) -> TradeView:
    """Trade views of one symbol, one after the other, as one view."""
    if len(views) == 1:
        return views[0]
    first = views[0]
    return TradeView(
        symbol=first.symbol,
        trade_id=np.concatenate([v.trade_id for v in views]),
        time_ms=np.concatenate([v.time_ms for v in views]),
        price=np.concatenate([v.price for v in views]),
        qty=np.concatenate([v.qty for v in views]),
        side=np.concatenate([v.side for v in views]),
        kind=first.kind,
    )


def chunks(trades: TradeView, size: int = REPLAY_CHUNK) -> list[TradeView]:
    """``trades`` cut into views of at most ``size`` rows."""
    return [slice_view(trades, i, min(i + size, len(trades))) for i in range(0, len(trades), size)]
