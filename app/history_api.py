"""History over the JSON API: past ranges of the trade endpoints, ``/candles`` and
``/history``.

- ``/api/assets/crypto/<symbol>/{trades,trade-stats,trade-flow,large-trades,
  volume-profile}?start=…&end=…``: with ``start`` or ``end`` (ISO 8601 UTC or epoch ms) the
  endpoint answers over that range of the stored trades (``app.api`` hands such requests
  here), computed by the same analytics functions as the live window, the whole range being
  the window (``now_ms`` = ``end`` or the last trade).
- ``/api/assets/crypto/<symbol>/candles?interval=1m|5m|15m|1h|4h|1d&start=…&end=…``: OHLC,
  volume, buy and sell volume, delta and trade count per bar.
- ``/api/assets/crypto/<symbol>/history`` and ``/api/history``: coverage — stored id ranges,
  gaps (with why), book and candle spans.

A range that ends in the past is immutable: its result is cached with flask-caching (Redis
when ``REDIS_URL`` is set, so several web workers compute it once; its cluster backend when
that URL names a Redis Cluster node; in-process otherwise). A cache that cannot be reached
(Redis down, a cluster failing over) is skipped: the range is computed and answered.
Errors are JSON: 400 for a bad or reversed range or one over ``MAX_SPAN_DAYS``, 404 for a
symbol without history, 413 for a range holding more than the reader's row limit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import redis
from flask import Blueprint, Response, jsonify, request
from flask_caching import Cache

from app.api_args import int_arg, json_ready, positive_arg
from services.analytics import flow, large_trades, profile, trades
from services.history.book_grid import implied_tick
from services.history.ranges import checked_range
from services.history.reader import HistoryError, HistoryReader, PriceLevels
from services.market.views import SymbolInfo, TradeView
from services.redis_connection import is_cluster, live_seed
from services.store import MarketStore

MAX_SPAN_DAYS = 31
SETTLED_MS = 10_000
"""A range ending at least this long ago is treated as immutable (cached)."""
CACHE_TIMEOUT_S = 3600
CACHE_SOCKET_TIMEOUT_S = 1.0
"""Longest wait for one cache call: a slow cache costs a request this, then is skipped."""
CACHE_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)
MAX_TRADES = 1000
MAX_BINS = 300
RANGE_ENDPOINTS = ("trades", "trade-stats", "trade-flow", "large-trades", "volume-profile")


def make_cache(redis_url: str | None = None) -> Cache:
    """A flask-caching cache: Redis when a URL is given (or ``REDIS_URL`` is set)."""
    url = redis_url if redis_url is not None else os.environ.get("REDIS_URL", "")
    if url:
        config = {
            "CACHE_TYPE": "RedisClusterCache" if is_cluster(url) else "RedisCache",
            "CACHE_REDIS_URL": live_seed(url),
            "CACHE_KEY_PREFIX": "tapescope:history:",
            "CACHE_OPTIONS": {
                "socket_timeout": CACHE_SOCKET_TIMEOUT_S,
                "socket_connect_timeout": CACHE_SOCKET_TIMEOUT_S,
            },
        }
    else:
        config = {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 2000}
    return Cache(config={**config, "CACHE_DEFAULT_TIMEOUT": CACHE_TIMEOUT_S})


class HistoryQueries:
    """Range queries for the API, cached once a range is in the past.

    cache_errors: cache calls that failed (the result was computed and answered anyway).
    """

    def __init__(self, root: Path, store: MarketStore, cache: Cache) -> None:
        self.reader = HistoryReader(root)
        self.store = store
        self.cache = cache
        self.cache_errors = 0

    def market_of(self, symbol: str) -> str:
        market = request.args.get("market") or self.reader.market_of(symbol)
        if market is None or market not in {m for m, _ in self.reader.symbols()}:
            raise HistoryError(f"no history for {symbol}", 404, symbol=symbol)
        return market

    def cached(self, key: str, end_ms: int | None, compute: Callable[[], dict]) -> dict:
        """``compute()``, cached under ``key`` when the range ended ``SETTLED_MS`` ago."""
        settled = end_ms is not None and end_ms < time.time() * 1000 - SETTLED_MS
        if settled:
            try:
                hit = self.cache.get(key)
            except CACHE_ERRORS:
                self.cache_errors += 1
                hit = None
            if hit is not None:
                return hit
        value = json_ready(compute())
        if settled:
            try:
                self.cache.set(key, value)
            except CACHE_ERRORS:
                self.cache_errors += 1
        return value

    def range_result(self, endpoint: str, symbol: str) -> dict:
        """The body of a trade endpoint over ``start``..``end`` of the stored trades."""
        symbol = symbol.upper()
        start, end = _asked_range()
        params = _endpoint_params(endpoint)
        asked = request.args.get("market", "")
        key = f"{endpoint}:{asked}:{symbol}:{start}:{end}:{sorted(params.items())}"

        def compute() -> dict:
            market = self.market_of(symbol)
            ticks = self.store.symbols()
            return range_body(self.reader, endpoint, symbol, market, (start, end), params, ticks)

        return self.cached(key, end, compute)


def tick_size_of(infos: list[SymbolInfo], symbol: str, view: TradeView) -> float:
    """The symbol's tick size from the exchange's symbols, else implied by the prices."""
    for info in infos:
        if info.symbol == symbol:
            return info.tick_size
    return implied_tick(np.unique(view.price)) or 0.01


def range_body(
    reader: HistoryReader,
    endpoint: str,
    symbol: str,
    market: str,
    span: tuple[int | None, int | None],
    params: dict[str, Any],
    infos: list[SymbolInfo],
) -> dict:
    """A trade endpoint's answer over ``span`` (start..end ms) of the stored trades (the
    JSON API's, and the Python API's ``tapescope.Session`` with a history)."""
    start, end = span
    if endpoint == "volume-profile":
        levels = reader.price_levels(market, symbol, start, end)
        view, count = levels.volume, levels.trades
        body = ranged_profile(levels, tick_size_of(infos, symbol, view), params["bins"])
    else:
        view = reader.trades(market, symbol, start, end)
        count = len(view)
        body = _analytics(endpoint, view, params, end)
    return {"symbol": symbol, "market": market, "source": "history", "kind": view.kind,
            "start_ms": start, "end_ms": end, "count": count, **body}  # fmt: skip


def _asked_range() -> tuple[int | None, int | None]:
    """The request's ``start``..``end`` in ms (400 when bad, reversed or too long)."""
    return checked_range(
        request.args.get("start"), request.args.get("end"), MAX_SPAN_DAYS * 86_400_000
    )


def _endpoint_params(endpoint: str) -> dict[str, Any]:
    if endpoint == "trades":
        return {"limit": int_arg("limit", 100, 1, MAX_TRADES)}
    if endpoint == "volume-profile":
        return {"bins": int_arg("bins", 50, 1, MAX_BINS)}
    if endpoint == "large-trades" and "multiple" in request.args:
        return {"multiple": positive_arg("multiple")}
    if endpoint == "large-trades":
        return {"threshold": positive_arg("threshold", "100000")}
    return {}


def _analytics(endpoint: str, view: TradeView, params: dict[str, Any], end: int | None) -> dict:
    """The same analytics the live endpoints run, with the whole range as the window."""
    if endpoint == "trades":
        tape = trades.time_and_sales(view, params["limit"])
        return {"trades": [asdict(row) for row in tape.rows]}
    if endpoint == "trade-stats":
        return {"stats": asdict(trades.trade_stats(view, now_ms=end))}
    if endpoint == "trade-flow":
        first = int(view.time_ms[0]) if len(view) else 0
        now = end if end is not None else (int(view.time_ms[-1]) if len(view) else 0)
        window = max(now - first + 1, 1)
        return {"flow": asdict(flow.trade_flow(view, window_ms=window, now_ms=now))}
    if endpoint == "large-trades" and "multiple" in params:
        return multiple_fields(view, params["multiple"])
    if endpoint == "large-trades":
        result = large_trades.large_trades(view, tiers_quote=(params["threshold"],))
        return {"threshold": params["threshold"], "window_count": result.window_count,
                "trades": [asdict(row) for row in result.rows]}  # fmt: skip
    raise ValueError(f"no analytics for {endpoint}")


def multiple_fields(view: TradeView, multiple: float) -> dict[str, Any]:
    """Trades of ``view`` with qty ≥ ``multiple`` × its mean trade size (no absolute tier),
    newest first, with that mean and threshold: ``large-trades?multiple=K`` over the live
    window or a stored range (the Python API's ``threshold``)."""
    result = large_trades.large_trades(view, tiers_quote=(), relative_k=multiple)
    return {
        "multiple": multiple,
        "mean_qty": result.mean_qty,
        "threshold_qty": result.relative_threshold_qty,
        "window_count": result.window_count,
        "trades": [asdict(row) for row in result.rows],
    }


def ranged_profile(levels: PriceLevels, tick: float, bins: int) -> dict:
    """The volume profile of a stored range, from its per-price sums (the analytics'
    ``volume_profile`` over ``levels.volume``; trades per row = the same function over
    ``levels.counts``, whose rows are the same since the prices are)."""
    result = profile.volume_profile(levels.volume, tick_size=tick, rows=bins, count_trades=True)
    if len(levels.volume):
        counts = profile.volume_profile(levels.counts, tick_size=tick, rows=bins)
        result = replace(result, trades=np.rint(counts.volume).astype(np.int64))
    return {"bins": bins, "profile": asdict(result)}


def history_error(error: HistoryError) -> tuple[Response, int]:
    """A history query's error as JSON with its status."""
    return jsonify({"error": str(error), **error.extra}), error.status


def range_hook(queries: HistoryQueries | None) -> Callable[[], Any]:
    """A ``before_request`` hook for the trade endpoints' blueprint: a request naming
    ``start`` or ``end`` is answered here from the history (404 JSON without one)."""

    def ranged() -> Any:
        rule = request.url_rule.rule if request.url_rule is not None else ""
        endpoint = rule.rsplit("/", 1)[-1]
        if endpoint not in RANGE_ENDPOINTS:
            return None
        if "start" not in request.args and "end" not in request.args:
            return None
        if queries is None:
            return jsonify({"error": "this server keeps no history (--no-history)"}), 404
        try:
            return jsonify(queries.range_result(endpoint, (request.view_args or {})["symbol"]))
        except HistoryError as exc:
            return history_error(exc)

    return ranged


def create_history_api(queries: HistoryQueries) -> Blueprint:
    """``/candles``, ``/history`` and the error handler of history queries."""
    api = Blueprint("history_api", __name__)

    api.register_error_handler(HistoryError, history_error)

    @api.get("/api/assets/crypto/<symbol>/candles")
    def candles(symbol: str) -> Response:
        symbol = symbol.upper()
        interval = request.args.get("interval", "1m")
        start, end = _asked_range()
        key = f"candles:{request.args.get('market', '')}:{symbol}:{interval}:{start}:{end}"

        def compute() -> dict:
            market = queries.market_of(symbol)
            bars = queries.reader.candles(market, symbol, interval, start, end)
            return {"symbol": symbol, "market": market, "interval": interval,
                    "start_ms": start, "end_ms": end, "candles": bars.to_dicts()}  # fmt: skip

        return jsonify(queries.cached(key, end, compute))

    @api.get("/api/assets/crypto/<symbol>/history")
    def symbol_history(symbol: str) -> Response:
        symbol = symbol.upper()
        market = queries.market_of(symbol)
        kinds = queries.reader.trade_kinds(market, symbol)
        return jsonify(json_ready({"symbol": symbol, "market": market,
                               "coverage": [asdict(queries.reader.coverage(market, symbol, k))
                                            for k in kinds]}))  # fmt: skip

    @api.get("/api/history")
    def all_history() -> Response:
        reader = queries.reader
        body = []
        for market, symbol in reader.symbols():
            for kind in reader.trade_kinds(market, symbol):
                body.append(asdict(reader.coverage(market, symbol, kind)))
        problems = [{"path": str(p.path), "kind": p.kind, "detail": p.detail}
                    for p in reader.problems.values()]  # fmt: skip
        return jsonify(json_ready({"symbols": body, "skipped_files": problems}))

    return api


def register(server: Any, store: MarketStore, root: Path) -> HistoryQueries:
    """Serve history from ``root`` on the Flask ``server``; returns the query object the
    trade endpoints hand ranged requests to."""
    cache = make_cache()
    cache.init_app(server)
    queries = HistoryQueries(root, store, cache)
    server.register_blueprint(create_history_api(queries))
    return queries
