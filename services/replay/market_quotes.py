"""REST quote bodies the local exchange derives from its book and replayed trades, and the
symbol filters it derives for exchangeInfo. Every value here is *derived* (served with
``X-Tapescope-Derived: true``). Definitions:

* **average price** (``avgPrice``) — volume-weighted price ``Σp·q / Σq`` of the fills in the
  last ``AVG_PRICE_MINS`` minutes of replay time (the last price when none), ``closeTime``
  the last such fill's time.
* **price ticker** — the last replayed trade price.
* **book ticker** — the exchange book's best bid and ask with their quantities.
* **premium index** (USD-M) — mark and index price = the book's mid price (the recording
  carries no mark price stream), funding and interest rate 0.0001 (Binance's default 0.01 %
  per 8 h), next funding at the next 00:00/08:00/16:00 UTC on the replay clock.
* **filters** — tick and step size from the recorded decimals; ``maxPrice`` and ``maxQty``
  a hundred times the largest recorded price and quantity, rounded up to a power of ten;
  minimum notional 5 quote units (Binance's usual minimum for USDT-quoted spot pairs).
"""

from __future__ import annotations

from decimal import Decimal

from services.replay.derived import decimal_text
from services.replay.exchange_book import ExchangeBook
from services.replay.symbol_market import SymbolMarket

AVG_PRICE_MINS = 5
FUNDING_PERIOD_MS = 8 * 3_600_000
DEFAULT_RATE = "0.00010000"
MIN_NOTIONAL = "5"


def average_price(market: SymbolMarket, now_ms: int) -> dict:
    """``/api/v3/avgPrice`` body (see the module docstring)."""
    fills = market.fills_since(now_ms - AVG_PRICE_MINS * 60_000)
    volume = sum((Decimal(f.q) for f in fills), Decimal(0))
    if volume:
        price = sum((Decimal(f.p) * Decimal(f.q) for f in fills), Decimal(0)) / volume
        close_time = fills[-1].T
    else:
        price, close_time = market.stats.last, market.stats.close_time
    return {
        "mins": AVG_PRICE_MINS,
        "price": decimal_text(price, market.price_places),
        "closeTime": close_time,
    }


def price_ticker(market: SymbolMarket, usdm: bool, now_ms: int) -> dict:
    """``ticker/price`` body for one symbol (USD-M adds ``time``)."""
    body: dict = {
        "symbol": market.symbol,
        "price": decimal_text(market.stats.last, market.price_places),
    }
    if usdm:
        body["time"] = now_ms
    return body


def book_ticker_rest(market: SymbolMarket, usdm: bool, now_ms: int) -> dict:
    """``ticker/bookTicker`` body for one symbol (USD-M adds ``lastUpdateId`` and ``time``)."""
    bid, ask = market.book.best()
    zero_price = decimal_text(Decimal(0), market.price_places)
    zero_qty = decimal_text(Decimal(0), market.qty_places)
    body: dict = {"symbol": market.symbol}
    if usdm:
        body["lastUpdateId"] = market.book.last_update_id
    body |= {
        "bidPrice": bid[0] if bid else zero_price,
        "bidQty": bid[1] if bid else zero_qty,
        "askPrice": ask[0] if ask else zero_price,
        "askQty": ask[1] if ask else zero_qty,
    }
    if usdm:
        body["time"] = now_ms
    return body


def mid_price(book: ExchangeBook) -> Decimal | None:
    """Mean of the best bid and ask (``None`` while a side is empty)."""
    bid, ask = book.best()
    if bid is None or ask is None:
        return None
    return (Decimal(bid[0]) + Decimal(ask[0])) / 2


def premium_index(market: SymbolMarket, now_ms: int) -> dict:
    """``/fapi/v1/premiumIndex`` body for one symbol (see the module docstring)."""
    mid = mid_price(market.book)
    mark = market.stats.last if mid is None else mid
    text = decimal_text(mark, market.price_places)
    return {
        "symbol": market.symbol,
        "markPrice": text,
        "indexPrice": text,
        "estimatedSettlePrice": text,
        "lastFundingRate": DEFAULT_RATE,
        "interestRate": DEFAULT_RATE,
        "nextFundingTime": now_ms - now_ms % FUNDING_PERIOD_MS + FUNDING_PERIOD_MS,
        "time": now_ms,
    }


def power_of_ten_above(value: Decimal) -> Decimal:
    """The smallest power of ten ``>= value`` (1 for values up to 1)."""
    power = Decimal(1)
    while power < value:
        power *= 10
    return power


def symbol_filters(market: SymbolMarket, usdm: bool, tick: str, step: str) -> list[dict]:
    """exchangeInfo ``filters`` of a symbol (see the module docstring)."""
    start = market.start.book
    prices = [Decimal(p) for p in (*start.bids, *start.asks, *market.book.bids, *market.book.asks)]
    qtys = [Decimal(q) for q in (*start.bids.values(), *start.asks.values())]
    max_price = power_of_ten_above(max(prices, default=Decimal(1)) * 100)
    max_qty = power_of_ten_above(max(qtys, default=Decimal(1)) * 100)
    width = max(len(tick.partition(".")[2]), len(step.partition(".")[2]))
    price_text = decimal_text(max_price, len(tick.partition(".")[2]))
    qty_text = decimal_text(max_qty, len(step.partition(".")[2]))
    filters: list[dict] = [
        {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": price_text, "tickSize": tick},
        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": qty_text, "stepSize": step},
        {"filterType": "MARKET_LOT_SIZE", "minQty": step, "maxQty": qty_text, "stepSize": step},
    ]
    if usdm:
        filters.append({"filterType": "MIN_NOTIONAL", "notional": MIN_NOTIONAL})
    else:
        filters.append(
            {
                "filterType": "NOTIONAL",
                "minNotional": decimal_text(Decimal(MIN_NOTIONAL), width),
                "applyMinToMarket": True,
                "maxNotional": decimal_text(max_price * max_qty, width),
                "applyMaxToMarket": False,
                "avgPriceMins": AVG_PRICE_MINS,
            }
        )
    return filters
