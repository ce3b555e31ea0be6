"""Aiohttp client for Binance's public market-data REST endpoints, within a weight budget.

Every request declares its weight (Binance's tables, spot ``/api/v3`` or USD-M
``/fapi/v1``) and waits in a shared ``WeightBudget`` for room before it goes out, so a
herd of depth snapshots is staggered instead of tripping 429s. The used weight reported in
``X-MBX-USED-WEIGHT-1M`` is fed back into the budget.

Failures:

- 429 (rate limited) and 418 (IP banned): ``Retry-After`` pauses the whole budget, i.e.
  every caller of this client: no request at all goes out until it expires. A request
  waits out a pause up to ``max_ban_wait_s`` and then retries; a longer pause raises
  ``IpBanned`` (418) or ``RateLimited`` (429) at once, without sending anything.
- 451: ``RestrictedLocation``, a configuration error (the venue refuses this location);
  never retried.
- 5xx, connection errors and timeouts: retried after ``Backoff`` delays, at most
  ``max_attempts`` tries, then ``BinanceUnavailable``.
- any other status: ``BinanceHttpError`` with Binance's ``code``/``msg``.

Decoded results reuse the stream's event types where they mean the same thing: aggTrades
become ``AggTrade`` and trades ``Trade`` events (event time = trade time), klines become
``KlineBar``; exchangeInfo becomes ``SymbolInfo`` (``symbol_rules``). A body that does
not decode raises ``MalformedFrame``, whatever the decoder raised.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import aiohttp
import msgspec

from services.binance.backoff import Backoff
from services.binance.endpoints import Endpoints, Market
from services.binance.messages import (
    AggTrade,
    DepthSnapshot,
    ErrorBody,
    KlineBar,
    MalformedFrame,
    Trade,
    decode_depth_snapshot,
)
from services.binance.rate_limit import PausedTooLong, Priority, WeightBudget
from services.binance.symbol_rules import SymbolInfo, decode_exchange_info

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
_BAN_REASON = "HTTP 418"
USDM_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


class BinanceHttpError(RuntimeError):
    """A request Binance answered with an error (``code``/``msg`` as Binance sent them)."""

    def __init__(
        self,
        path: str,
        status: int | None,
        code: int | None = None,
        msg: str | None = None,
        detail: str = "",
    ) -> None:
        text = detail or f"{path}: HTTP {status}" + (f" code {code}: {msg}" if msg else "")
        super().__init__(text)
        self.path = path
        self.status = status
        self.code = code
        self.msg = msg


class RestrictedLocation(BinanceHttpError):
    """HTTP 451: the venue refuses requests from this location. Not retryable."""


class RateLimited(BinanceHttpError):
    """HTTP 429 and the pause it imposed is longer than the client waits."""


class IpBanned(BinanceHttpError):
    """HTTP 418: the IP is banned for longer than the client waits (``retry_after_s``)."""

    def __init__(self, path: str, retry_after_s: float, reason: str) -> None:
        super().__init__(path, 418, detail=f"{path}: IP banned for {retry_after_s:.0f} s more")
        self.retry_after_s = retry_after_s
        self.reason = reason


class BinanceUnavailable(BinanceHttpError):
    """5xx, connection errors or timeouts on every one of ``max_attempts`` tries."""


def depth_weight(limit: int, market: Market = Market.SPOT) -> int:
    """Request weight of a depth snapshot of ``limit`` levels.

    Spot: 1–100 → 5, 101–500 → 25, 501–1000 → 50, 1001–5000 → 250.
    USD-M (limits 5, 10, 20, 50, 100, 500, 1000 only): ≤50 → 2, 100 → 5, 500 → 10,
    1000 → 20.
    """
    if market is Market.USDM:
        if limit not in USDM_DEPTH_LIMITS:
            raise ValueError(f"USD-M depth limit must be one of {USDM_DEPTH_LIMITS}")
        return {100: 5, 500: 10, 1000: 20}.get(limit, 2)
    if not 1 <= limit <= 5000:
        raise ValueError("spot depth limit must be within 1..5000")
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def klines_weight(limit: int, market: Market = Market.SPOT) -> int:
    """Request weight of a klines request (spot: 2; USD-M: 1, 2, 5 or 10 by ``limit``)."""
    if market is Market.SPOT:
        return 2
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1000 else 10


_WEIGHTS: dict[Market, dict[str, int]] = {
    Market.SPOT: {
        "aggTrades": 4,
        "trades": 25,
        "historicalTrades": 25,
        "exchangeInfo": 20,
        "ticker/24hr": 2,
    },
    Market.USDM: {
        "aggTrades": 20,
        "trades": 5,
        "historicalTrades": 20,
        "exchangeInfo": 1,
        "ticker/24hr": 1,
    },
}


class _ServerTime(msgspec.Struct):
    serverTime: int


class _RestAggTrade(msgspec.Struct):
    a: int
    p: float
    q: float
    f: int
    l: int  # noqa: E741 - Binance's field name
    T: int
    m: bool


class _RestTrade(msgspec.Struct):
    id: int
    price: float
    qty: float
    time: int
    isBuyerMaker: bool


KlineRow = tuple[int, float, float, float, float, float, int, float, int, float, float, Any]

_ERROR = msgspec.json.Decoder(ErrorBody)
_AGG_TRADES = msgspec.json.Decoder(list[_RestAggTrade], strict=False)
_TRADES = msgspec.json.Decoder(list[_RestTrade], strict=False)
_KLINES = msgspec.json.Decoder(list[KlineRow], strict=False)
_ANY_JSON = msgspec.json.Decoder()
_SERVER_TIME = msgspec.json.Decoder(_ServerTime)
_Decoded = TypeVar("_Decoded")


def _decoded(decoder: msgspec.json.Decoder[_Decoded], body: bytes, what: str) -> _Decoded:
    """A response body decoded; ``MalformedFrame`` for any exception decoding raises (deep
    nesting, invalid UTF-8, a schema mismatch), which callers count and survive."""
    try:
        return decoder.decode(body)
    except Exception as exc:
        raise MalformedFrame(f"{what}: {type(exc).__name__}: {exc}"[:300]) from exc


def _error_body(body: bytes) -> ErrorBody:
    try:
        return _ERROR.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorBody(msg=body[:200].decode(errors="replace") or None)


class BinanceRestClient:
    """Public market-data REST client of one venue.

    weight_per_minute: the budget (Binance allows 6000 per IP per minute on spot, 2400 on
        USD-M; stay well under). burst_weight: weight that may go out at once before
        requests are spread at the refill rate (default a quarter of the budget).
    budget: share one ``WeightBudget`` among clients of the same IP (overrides the above).
    window_s: budget window (60 s on Binance; shorter only for tests).
    max_attempts: tries per request for 5xx, connection errors, timeouts, 429 and 418.
    backoff: delays between those tries. timeout_s: total time of one try.
    max_ban_wait_s: longest pause (429/418 ``Retry-After``) a request waits out.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        weight_per_minute: int = 1200,
        burst_weight: int | None = None,
        budget: WeightBudget | None = None,
        window_s: float = 60.0,
        max_attempts: int = 4,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        max_ban_wait_s: float = 120.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be ≥ 1")
        self.endpoints = endpoints
        self.budget = budget or WeightBudget(weight_per_minute, window_s, burst_weight)
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff(initial=0.5, cap=10.0, floor=0.2)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_ban_wait_s = max_ban_wait_s
        self._session = session
        self._owns_session = session is None
        self._clock_offset_ms: int | None = None

    async def __aenter__(self) -> BinanceRestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._owns_session = True
        return self._session

    def _weight(self, endpoint: str) -> int:
        return _WEIGHTS[self.endpoints.market][endpoint]

    # -- transport ------------------------------------------------------------------------

    async def get(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        weight: int,
        priority: Priority = Priority.SYNC,
    ) -> bytes:
        """GET ``{rest_base}{rest_prefix}/{endpoint}`` within the budget (admitted in
        ``priority`` order among the requests waiting for room); the body bytes.

        Raises ``RestrictedLocation``, ``IpBanned``, ``RateLimited``,
        ``BinanceUnavailable`` or ``BinanceHttpError`` (see the module docstring).
        """
        path = f"{self.endpoints.rest_prefix}/{endpoint}"
        url = self.endpoints.rest_base.rstrip("/") + path
        query = {k: str(v) for k, v in params.items() if v is not None}
        failure: BinanceHttpError | None = None
        for attempt in range(self.max_attempts):
            try:
                grant = await self.budget.acquire(weight, self.max_ban_wait_s, priority)
            except PausedTooLong as exc:
                if exc.reason.startswith(_BAN_REASON):
                    raise IpBanned(path, exc.remaining_s, exc.reason) from None
                raise RateLimited(path, 429, detail=f"{path}: {exc}") from None
            try:
                try:
                    async with self._http().get(url, params=query, timeout=self.timeout) as reply:
                        body = await reply.read()
                        status = reply.status
                        headers = reply.headers
                finally:  # answered or given up: counted a window from now, not from the sleep
                    self.budget.answered(grant)
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = BinanceUnavailable(path, None, detail=f"{path}: {exc!r}")
                await asyncio.sleep(self.backoff.delay(attempt))
                continue
            used = headers.get(USED_WEIGHT_HEADER)
            if used is not None and used.isdigit():
                self.budget.record_used(int(used))
            if status == 200:
                return body
            error = _error_body(body)
            if status == 451:
                raise RestrictedLocation(
                    path,
                    status,
                    error.code,
                    error.msg,
                    detail=(
                        f"{path}: HTTP 451, {self.endpoints.rest_base} refuses this location"
                        f" ({error.msg}). Choose another endpoint preset: --preset spot-data"
                        " (data-api.binance.vision), --preset us (Binance.US, a different"
                        " exchange) or --source replay (offline)."
                    ),
                )
            if status in (418, 429):
                retry_after = _seconds(headers.get("Retry-After"))
                pause = retry_after if retry_after is not None else self.backoff.delay(attempt)
                reason = f"HTTP {status} code {error.code}: {error.msg}"
                self.budget.pause(pause, reason)
                failure = (
                    IpBanned(path, pause, reason)
                    if status == 418
                    else RateLimited(path, status, error.code, error.msg)
                )
                continue
            if status >= 500:
                failure = BinanceUnavailable(path, status, error.code, error.msg)
                await asyncio.sleep(self.backoff.delay(attempt))
                continue
            raise BinanceHttpError(path, status, error.code, error.msg)
        assert failure is not None
        raise failure

    # -- endpoints ------------------------------------------------------------------------

    async def server_time_ms(self) -> int:
        """The server's clock now, in ms: this machine's clock plus the offset measured
        once by ``GET time`` (weight 1) against the request's midpoint. A server that
        cannot tell its time (an error, a body without ``serverTime``) leaves the offset
        at 0, and is not asked again."""
        if self._clock_offset_ms is None:
            self._clock_offset_ms = 0
            sent = time.time() * 1000
            try:
                server = _decoded(_SERVER_TIME, await self.get("time", {}, 1), "time").serverTime
            except (BinanceHttpError, MalformedFrame):
                return int(time.time() * 1000)
            self._clock_offset_ms = int(server - (sent + time.time() * 1000) / 2)
        return int(time.time() * 1000) + self._clock_offset_ms

    async def depth_snapshot_raw(
        self, symbol: str, limit: int = 1000, priority: Priority = Priority.SYNC
    ) -> bytes:
        """Body of ``depth`` (``{lastUpdateId, bids, asks}``) for ``limit`` levels."""
        weight = depth_weight(limit, self.endpoints.market)
        params = {"symbol": symbol.upper(), "limit": limit}
        return await self.get("depth", params, weight, priority)

    async def depth_snapshot(
        self, symbol: str, limit: int = 1000, priority: Priority = Priority.SYNC
    ) -> DepthSnapshot:
        """The order book as of ``lastUpdateId``, best level first on each side."""
        return decode_depth_snapshot(await self.depth_snapshot_raw(symbol, limit, priority))

    async def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
        priority: Priority = Priority.SYNC,
    ) -> list[AggTrade]:
        """Aggregate trades from id ``from_id`` or within ``[start_time, end_time]`` ms,
        oldest first, as ``AggTrade`` events (``E`` = trade time)."""
        params = {
            "symbol": symbol.upper(),
            "fromId": from_id,
            "startTime": start_time,
            "endTime": end_time,
            "limit": limit,
        }
        body = await self.get("aggTrades", params, self._weight("aggTrades"), priority)
        name = symbol.upper()
        return [
            AggTrade("aggTrade", r.T, name, r.a, r.p, r.q, r.f, r.l, r.T, r.m)
            for r in _decoded(_AGG_TRADES, body, "aggTrades")
        ]

    async def trades(self, symbol: str, limit: int = 500) -> list[Trade]:
        """Most recent trades, oldest first, as ``Trade`` events (``E`` = trade time)."""
        body = await self.get(
            "trades", {"symbol": symbol.upper(), "limit": limit}, self._weight("trades")
        )
        return self._trades(symbol, body)

    async def historical_trades(
        self, symbol: str, from_id: int | None = None, limit: int = 500
    ) -> list[Trade]:
        """Trades from id ``from_id`` (no API key on spot; not on the ``spot-data``
        mirror), oldest first, as ``Trade`` events."""
        params = {"symbol": symbol.upper(), "fromId": from_id, "limit": limit}
        body = await self.get("historicalTrades", params, self._weight("historicalTrades"))
        return self._trades(symbol, body)

    @staticmethod
    def _trades(symbol: str, body: bytes) -> list[Trade]:
        name = symbol.upper()
        return [
            Trade("trade", r.time, name, r.id, r.price, r.qty, r.time, r.isBuyerMaker)
            for r in _decoded(_TRADES, body, "trades")
        ]

    async def klines(
        self,
        symbol: str,
        interval: str = "1m",
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[KlineBar]:
        """Candles identified by open time, oldest first. ``x`` (closed) is true for bars
        whose close time has passed on the server's clock (``server_time_ms``: a replay
        exchange's clock can be years behind this machine's)."""
        params = {
            "symbol": symbol.upper(),
            "interval": interval,
            "startTime": start_time,
            "endTime": end_time,
            "limit": limit,
        }
        body = await self.get("klines", params, klines_weight(limit, self.endpoints.market))
        now_ms = await self.server_time_ms()
        name = symbol.upper()
        return [
            KlineBar(
                t=row[0],
                T=row[6],
                s=name,
                i=interval,
                o=row[1],
                c=row[4],
                h=row[2],
                l=row[3],
                v=row[5],
                n=row[8],
                x=row[6] < now_ms,
                q=row[7],
                V=row[9],
                Q=row[10],
            )
            for row in _decoded(_KLINES, body, "klines")
        ]

    async def exchange_info(self, symbols: Iterable[str] = ()) -> list[SymbolInfo]:
        """Rules of ``symbols`` (all symbols when empty): status, assets, tick and step
        sizes with their decimal places."""
        wanted = [s.upper() for s in symbols]
        params = {"symbols": msgspec.json.encode(wanted).decode() if wanted else None}
        if self.endpoints.market is Market.USDM:
            params = {}
        body = await self.get("exchangeInfo", params, self._weight("exchangeInfo"))
        infos = decode_exchange_info(body)
        return [i for i in infos if i.symbol in wanted] if wanted else infos

    async def ticker_24hr(self, symbol: str) -> dict[str, Any]:
        """Rolling 24 h statistics of one symbol, as Binance sends them (strings)."""
        body = await self.get(
            "ticker/24hr", {"symbol": symbol.upper()}, self._weight("ticker/24hr")
        )
        return _decoded(_ANY_JSON, body, "ticker/24hr")


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
