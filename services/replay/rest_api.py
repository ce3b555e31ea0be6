"""The local exchange's REST market-data endpoints, with Binance's shapes, weights and errors.

Spot recordings are served under ``/api/v3``, USD-M recordings under ``/fapi/v1``. Every
response carries ``X-MBX-USED-WEIGHT-1M``: the request weight used in the last 60 seconds
(a rolling window). Above the market's limit (6000 spot, 2400 USD-M) requests get 429 with
``Retry-After``. Responses computed by the exchange rather than recorded carry
``X-Tapescope-Derived: true``. Times (``serverTime``, USD-M ``E``/``T``) are the replay
clock's. A path the exchange does not serve answers like Binance: HTTP 404 with
``{"code":-5000,"msg":"Path <path>, Method GET is invalid"}``.

The API reads the exchange through ``ReplayedMarkets`` (what it needs, nothing more), so
this module does not depend on ``services.replay.exchange``, which builds it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import orjson
from aiohttp import web

from services.replay.derived import INTERVAL_MS
from services.replay.faults import Faults, rest_error_body
from services.replay.market_quotes import (
    average_price,
    book_ticker_rest,
    premium_index,
    price_ticker,
    symbol_filters,
)
from services.replay.session import split_symbol
from services.replay.symbol_market import SymbolMarket

Handler = Callable[[web.Request], Awaitable[web.Response]]
WEIGHT_LIMIT = {"spot": 6000, "usdm": 2400}
DERIVED_NOTE = (
    "Tapescope local exchange replaying a recording: tickSize/stepSize are derived from the "
    "recorded decimals, maxPrice/maxQty/notional filters from the recorded prices and "
    "quantities; tickers, average price, premium index, klines of unrecorded intervals, "
    "partial depth, and aggTrades or bookTicker absent from the recording are computed by "
    "the exchange."
)


class ReplayedMarkets(Protocol):
    """What the REST API reads of the exchange it serves."""

    markets: dict[str, SymbolMarket]
    faults: Faults
    paths: list[Path]

    @property
    def market(self) -> str: ...

    @property
    def recording_start_ms(self) -> int: ...

    @property
    def replay_of(self) -> str: ...

    def clock_ms(self, wall_s: float | None = None) -> int: ...


@web.middleware
async def unknown_path_error(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Binance's JSON error for a path or method it does not serve (404, code -5000)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        status = 404
    except web.HTTPMethodNotAllowed:
        status = 405
    body = {"code": -5000, "msg": f"Path {request.path}, Method {request.method} is invalid"}
    return _json(body, status)


class BinanceError(Exception):
    """A request Binance would refuse: HTTP status, error code and message."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _int_param(request: web.Request, name: str, default: int | None = None) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise BinanceError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(text)


def _required(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise BinanceError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def depth_weight(market: str, limit: int) -> int:
    """Weight of a depth request for a limit (Binance's table for each market)."""
    if market == "usdm":
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def tick_text(decimals: int, width: int) -> str:
    """``10**-decimals`` written with ``width`` decimals (``2, 8`` → ``"0.01000000"``)."""
    value = Decimal(1).scaleb(-decimals)
    return f"{value:.{max(width, decimals)}f}"


class RestApi:
    """Routes and handlers of one exchange's REST API."""

    def __init__(self, exchange: ReplayedMarkets) -> None:
        self.exchange = exchange
        self.used: deque[tuple[float, int]] = deque()

    @property
    def market(self) -> str:
        return self.exchange.market

    def add_routes(self, app: web.Application) -> None:
        prefix = "/fapi/v1" if self.market == "usdm" else "/api/v3"
        trades_weight = 5 if self.market == "usdm" else 25
        routes: list[tuple[str, Handler, Callable[[web.Request], int]]] = [
            ("/ping", self.ping, lambda r: 1),
            ("/time", self.time, lambda r: 1),
            ("/exchangeInfo", self.exchange_info, lambda r: 1 if self.market == "usdm" else 20),
            ("/depth", self.depth, self._depth_weight),
            ("/trades", self.trades, lambda r: trades_weight),
            (
                "/historicalTrades",
                self.historical_trades,
                lambda r: 20 if self.market == "usdm" else 25,
            ),
            ("/aggTrades", self.agg_trades, lambda r: 20 if self.market == "usdm" else 4),
            ("/klines", self.klines, lambda r: 2),
            ("/ticker/24hr", self.ticker, self._ticker_weight),
            ("/ticker/price", self.price_ticker, self._quote_weight),
            ("/ticker/bookTicker", self.book_ticker, self._quote_weight),
        ]
        if self.market == "usdm":
            routes.append(
                ("/premiumIndex", self.premium_index, lambda r: 1 if "symbol" in r.query else 10)
            )
        else:
            routes.append(("/avgPrice", self.average_price, lambda r: 2))
            routes.append(("/uiKlines", self.klines, lambda r: 2))
        for path, handler, weight in routes:
            app.router.add_get(prefix + path, self._wrap(handler, weight))
        for other in OTHER_MARKETS_INFO[self.market]:
            app.router.add_get(other, self._wrap(self.other_market_info, lambda r: 1))
        if self.market == "usdm":  # the v2 price ticker (python-binance asks for it)
            app.router.add_get(
                "/fapi/v2/ticker/price", self._wrap(self.price_ticker, self._quote_weight)
            )

    def _depth_weight(self, request: web.Request) -> int:
        try:
            limit = _int_param(request, "limit", 100) or 100
        except BinanceError:
            limit = 100
        return depth_weight(self.market, limit)

    def _quote_weight(self, request: web.Request) -> int:
        if "symbol" in request.query:
            return 1 if self.market == "usdm" else 2
        return 2 if self.market == "usdm" else 4

    def _ticker_weight(self, request: web.Request) -> int:
        if "symbol" in request.query:
            return 1 if self.market == "usdm" else 2
        return 40 if self.market == "usdm" else 80

    def used_weight(self, add: int = 0) -> int:
        """Weight used in the last 60 s, after adding ``add`` for this request."""
        now = time.monotonic()
        if add:
            self.used.append((now, add))
        while self.used and now - self.used[0][0] >= 60.0:
            self.used.popleft()
        return sum(w for _, w in self.used)

    def _wrap(self, handler: Handler, weight: Callable[[web.Request], int]) -> Handler:
        async def serve(request: web.Request) -> web.Response:
            used = self.used_weight(weight(request))
            headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
            armed = self.exchange.faults.take_rest_error(request.path)
            if armed is None and used > WEIGHT_LIMIT[self.market]:
                armed_status, retry_after = 429, 60 - int(time.monotonic() - self.used[0][0])
            elif armed is not None:
                armed_status, retry_after = armed.status, armed.retry_after
            else:
                armed_status, retry_after = 0, 0
            if armed_status:
                if armed_status in (429, 418):
                    headers["Retry-After"] = str(max(1, retry_after))
                body = rest_error_body(
                    armed_status, retry_after, self.exchange.clock_ms(), WEIGHT_LIMIT[self.market]
                )
                return _json(body, armed_status, headers)
            try:
                response = await handler(request)
            except BinanceError as exc:
                return _json({"code": exc.code, "msg": exc.msg}, exc.status, headers)
            response.headers.update(headers)
            return response

        return serve

    def _symbol(self, request: web.Request) -> SymbolMarket:
        market = self.exchange.markets.get(_required(request, "symbol"))
        if market is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return market

    def _limit(self, request: web.Request, default: int, maximum: int) -> int:
        return min(_int_param(request, "limit", default) or default, maximum)

    async def ping(self, request: web.Request) -> web.Response:
        return _json({})

    async def time(self, request: web.Request) -> web.Response:
        return _json({"serverTime": self.exchange.clock_ms()})

    async def depth(self, request: web.Request) -> web.Response:
        market = self._symbol(request)
        limit = self._limit(request, 100 if self.market == "spot" else 500, 5000)
        if self.market == "usdm" and limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'limit'.")
        body = market.depth(limit)
        if self.market == "usdm":
            now = self.exchange.clock_ms()
            body = {"lastUpdateId": body["lastUpdateId"], "E": now, "T": now} | {
                "bids": body["bids"],
                "asks": body["asks"],
            }
        delay = self.exchange.faults.snapshot_delay
        if delay > 0:
            self.exchange.faults.count("snapshot_delay")
            await asyncio.sleep(delay)
        return _json(body)

    async def trades(self, request: web.Request) -> web.Response:
        market = self._symbol(request)
        rows = market.trade_rows(self._limit(request, 500, 1000))
        return _json(rows, derived=market.trades_derived)

    async def historical_trades(self, request: web.Request) -> web.Response:
        market = self._symbol(request)
        from_id = _int_param(request, "fromId")
        rows = market.trade_rows(self._limit(request, 500, 1000), from_id)
        return _json(rows, derived=market.trades_derived)

    async def agg_trades(self, request: web.Request) -> web.Response:
        market = self._symbol(request)
        rows = market.agg_trade_rows(
            self._limit(request, 500, 1000),
            _int_param(request, "fromId"),
            _int_param(request, "startTime"),
            _int_param(request, "endTime"),
        )
        return _json(rows, derived=market.agg_trades_derived)

    async def klines(self, request: web.Request) -> web.Response:
        market = self._symbol(request)
        interval = _required(request, "interval")
        if interval not in INTERVAL_MS:
            raise BinanceError(400, -1120, "Invalid interval.")
        rows, derived = market.klines(
            interval,
            INTERVAL_MS[interval],
            self._limit(request, 500, 1500 if self.market == "usdm" else 1000),
            _int_param(request, "startTime"),
            _int_param(request, "endTime"),
        )
        return _json(rows, derived=derived)

    async def ticker(self, request: web.Request) -> web.Response:
        if "symbol" in request.query:
            market = self._symbol(request)
            return _json(market.stats.rest_ticker(market.symbol, market.book), derived=True)
        body = [m.stats.rest_ticker(m.symbol, m.book) for m in self.exchange.markets.values()]
        return _json(body, derived=True)

    def _each(self, request: web.Request, body: Callable[[SymbolMarket], dict]) -> web.Response:
        """One symbol's body with ``symbol=``, else a list of every symbol's."""
        if "symbol" in request.query:
            return _json(body(self._symbol(request)), derived=True)
        return _json([body(m) for _, m in sorted(self.exchange.markets.items())], derived=True)

    async def price_ticker(self, request: web.Request) -> web.Response:
        now = self.exchange.clock_ms()
        return self._each(request, lambda m: price_ticker(m, self.market == "usdm", now))

    async def book_ticker(self, request: web.Request) -> web.Response:
        now = self.exchange.clock_ms()
        return self._each(request, lambda m: book_ticker_rest(m, self.market == "usdm", now))

    async def average_price(self, request: web.Request) -> web.Response:
        market = self._symbol(request)
        return _json(average_price(market, self.exchange.clock_ms()), derived=True)

    async def premium_index(self, request: web.Request) -> web.Response:
        now = self.exchange.clock_ms()
        return self._each(request, lambda m: premium_index(m, now))

    def _listed(self, request: web.Request) -> list[SymbolMarket]:
        """The symbols exchangeInfo lists: ``symbol=``, ``symbols=["A","B"]`` or all."""
        markets = self.exchange.markets
        if "symbol" in request.query and "symbols" in request.query:
            raise BinanceError(
                400, -1101, "Parameter 'symbol' and 'symbols' were provided; only one is allowed."
            )
        if "symbol" in request.query:
            return [self._symbol(request)]
        if "symbols" not in request.query:
            return [m for _, m in sorted(markets.items())]
        try:
            wanted = orjson.loads(request.query["symbols"])
        except orjson.JSONDecodeError:
            wanted = None
        if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
            raise BinanceError(
                400,
                -1100,
                "Illegal characters found in parameter 'symbols'; legal range is "
                'a JSON array of symbols, e.g. ["BTCUSDT","ETHUSDT"].',
            )
        unknown = [w for w in wanted if w not in markets]
        if unknown or not wanted:
            raise BinanceError(400, -1121, f"Invalid symbol: {', '.join(unknown) or '[]'}.")
        return [markets[w] for w in dict.fromkeys(wanted)]

    async def exchange_info(self, request: web.Request) -> web.Response:
        symbols = []
        for market in self._listed(request):
            symbol = market.symbol
            start = market.start
            base, quote = split_symbol(symbol)
            tick = tick_text(start.price_decimals, start.price_width)
            step = tick_text(start.quantity_decimals, start.quantity_width)
            entry: dict = {"symbol": symbol, "status": "TRADING"}
            entry |= {"baseAsset": base, "baseAssetPrecision": 8, "quoteAsset": quote}
            entry |= {"quotePrecision": 8, "quoteAssetPrecision": 8}
            if self.market == "usdm":
                entry |= {
                    "pair": symbol,
                    "contractType": "PERPETUAL",
                    "marginAsset": quote,
                    "pricePrecision": start.price_decimals,
                    "quantityPrecision": start.quantity_decimals,
                }
            entry["filters"] = symbol_filters(market, self.market == "usdm", tick, step)
            if self.market == "spot":
                entry |= {"orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"]}
                entry |= {"isSpotTradingAllowed": True, "isMarginTradingAllowed": False}
                entry |= {"permissions": ["SPOT"], "permissionSets": [["SPOT"]]}
            symbols.append(entry)
        limit = WEIGHT_LIMIT[self.market]
        body = {
            "timezone": "UTC",
            "serverTime": self.exchange.clock_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1}
                | {"limit": limit}
            ],
            "exchangeFilters": [],
            "symbols": symbols,
            "derived": DERIVED_NOTE,
            "replay": {
                "recordingStartTime": self.exchange.recording_start_ms,
                "replayOf": self.exchange.replay_of,
                "recordings": [p.name for p in self.exchange.paths],
            },
        }
        return _json(body, derived=True)

    async def other_market_info(self, request: web.Request) -> web.Response:
        """exchangeInfo of a market this recording does not hold: no symbols."""
        body = {
            "timezone": "UTC",
            "serverTime": self.exchange.clock_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [],
        }
        return _json(body, derived=True)


OTHER_MARKETS_INFO = {
    "spot": ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"),
    "usdm": ("/api/v3/exchangeInfo", "/dapi/v1/exchangeInfo"),
}
"""exchangeInfo paths of the markets a recording does not hold. A multi-market client
(ccxt's ``binance`` loads spot, USD-M and COIN-M markets at start) whose base URLs all
point here finds those markets empty instead of failing on a 404."""


def _json(
    body: object, status: int = 200, headers: dict[str, str] | None = None, derived: bool = False
) -> web.Response:
    response = web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )
    if derived:
        response.headers["X-Tapescope-Derived"] = "true"
    return response
