"""JSON API on the dashboard's Flask server (read-only, from the store).

``/api/assets/crypto/<symbol>/{orderbook,trades,trade-stats,trade-flow,large-trades,
volume-profile}`` and ``/healthz``; with ``start``/``end`` the trade endpoints answer over a
stored range (``app.history_api``). ``trade-flow?trades=N`` is the flow of the last N trades
and ``large-trades?multiple=K`` the trades of K × the mean size (the Python API's meaning).
Every payload carries ``time`` (UTC, ISO 8601),
``published_at`` and the book's ``sync_state``. Errors are JSON: 404 for an unknown symbol
(naming valid ones) and for any path under ``/api/`` that is not an endpoint (never the
dashboard page), 405 for a method an endpoint does not serve (naming the allowed ones), 400
for a bad parameter, 503 while a symbol has no data yet.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule

from app.api_args import ApiError, api_blueprint, int_arg, json_ready, positive_arg
from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from app.callbacks.symbol import trading_symbols
from app.history_api import HistoryQueries, multiple_fields, range_hook
from app.worker_health import worker_health
from components.symbol_picker import close_matches
from services.analytics.trades import trade_stats as trade_stats_of
from services.analytics.window import WINDOWS_MS
from services.store import MarketStore, SymbolSnapshot, unavailable

MAX_LEVELS = 5000
MAX_TRADES = 1000
MAX_FLOW_TRADES = 100_000
MAX_BINS = derived.PROFILE_MAX_ROWS
"""Most rows a volume profile is divided into; a larger ``bins`` is refused, not capped."""
HEALTH_MAX_AGE_S = 10.0
_PAGE_ROUTE = "/<path:path>"
"""Dash's catch-all page route, which answers any path no other route takes."""


def iso_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def snapshot_body(snapshot: SymbolSnapshot, **body: Any) -> dict[str, Any]:
    """JSON-ready ``body`` under the snapshot's identity: ``symbol``, ``published_at``
    (UTC, ISO 8601), ``seq``, ``sync_state`` and ``market_time_ms`` (the snapshot's clock).
    The JSON API and the Python API (``tapescope.metrics``) both answer with it."""
    return json_ready(
        {
            "symbol": snapshot.symbol,
            "published_at": iso_time(snapshot.published_at),
            "seq": snapshot.seq,
            "sync_state": str(snapshot.book.sync_state),
            "market_time_ms": derived.market_now_ms(snapshot),
            **body,
        }
    )


def order_book_fields(cache: DerivedCache, snapshot: SymbolSnapshot, levels: int) -> dict[str, Any]:
    """The top ``levels`` per side ([price, qty], best first) and the book summary."""
    view = snapshot.book
    return {
        "last_update_id": view.last_update_id,
        "event_time_ms": view.event_time_ms,
        "summary": asdict(derived.book_summary(cache, snapshot)),
        "bids": np.column_stack((view.bid_prices[:levels], view.bid_qtys[:levels])),
        "asks": np.column_stack((view.ask_prices[:levels], view.ask_qtys[:levels])),
    }


def last_trades_fields(snapshot: SymbolSnapshot, last_n: int) -> dict[str, Any]:
    """Flow over the last ``last_n`` trades: the trade statistics of exactly those trades
    (buy/sell volume, delta, buy ratio, direction; see ``TradeStats``)."""
    return {"trades": last_n, "flow": asdict(trade_stats_of(snapshot.trades, last_n=last_n))}


def volume_profile_fields(
    cache: DerivedCache, snapshot: SymbolSnapshot, bins: int
) -> dict[str, Any]:
    """Volume profile of the trade window in ``bins`` rows (POC, value area, per-row
    volumes and trade counts)."""
    result = derived.volume_profile(cache, snapshot, rows=bins, count_trades=True)
    return {"bins": bins, "rows": len(result.price), "profile": asdict(result)}


def _window_arg() -> tuple[str, int]:
    window = request.args.get("window", "1m")
    if window not in WINDOWS_MS:
        raise ApiError(400, f"window must be one of {', '.join(WINDOWS_MS)}", parameter="window")
    return window, WINDOWS_MS[window]


def symbol_snapshot(store: MarketStore, symbol: str) -> SymbolSnapshot:
    """The symbol's snapshot; only a known symbol ever reaches the store (404 with close
    matches for an unknown one, 503 while the feed has no data for it yet, and 503 with
    ``state: unavailable`` while the store cannot read it, e.g. a Redis failover)."""
    symbol = symbol.upper()
    known = trading_symbols(store)
    if symbol not in known and (reason := unavailable(store)) is not None:
        # The symbol list cannot be read now (its Redis node failing over): a symbol
        # whose book can be read is served, any other is unavailable, not unknown.
        if (snapshot := store.snapshot(symbol)) is not None:
            return snapshot
        raise ApiError(503, f"{symbol} unavailable: {reason}", state="unavailable")
    if symbol not in known:
        raise ApiError(
            404,
            f"unknown symbol {symbol}",
            close_matches=close_matches(symbol, known),
            valid_symbols=known,
        )
    snapshot = store.snapshot(symbol)
    if snapshot is not None:
        return snapshot
    if (reason := unavailable(store, symbol)) is not None:
        raise ApiError(503, f"{symbol} unavailable: {reason}", state="unavailable")
    store.request_symbol(symbol)
    raise ApiError(503, f"no data yet for {symbol}; requested from the feed")


def _payload(snapshot: SymbolSnapshot, **body: Any) -> Response:
    return jsonify({"time": iso_time(time.time()), **snapshot_body(snapshot, **body)})


def create_api(
    store: MarketStore, cache: DerivedCache, history: HistoryQueries | None = None
) -> Blueprint:
    """The API blueprint reading ``store``, sharing the dashboard's derived-results cache;
    requests with ``start``/``end`` are answered from ``history`` (``app.history_api``)."""
    api = api_blueprint("api", __name__)

    api.before_request(range_hook(history))

    def snapshot_of(symbol: str) -> SymbolSnapshot:
        return symbol_snapshot(store, symbol)

    _answer_unrouted_api_paths(api)

    @api.get("/api/assets/crypto/<symbol>/orderbook")
    def orderbook(symbol: str) -> Response:
        levels = int_arg("levels", 100, 1, MAX_LEVELS)
        snapshot = snapshot_of(symbol)
        return _payload(snapshot, **order_book_fields(cache, snapshot, levels))

    @api.get("/api/assets/crypto/<symbol>/trades")
    def trades(symbol: str) -> Response:
        limit = int_arg("limit", 100, 1, MAX_TRADES)
        snapshot = snapshot_of(symbol)
        tape = derived.time_and_sales(cache, snapshot, limit)
        return _payload(snapshot, kind=snapshot.trades.kind, trades=[asdict(r) for r in tape.rows])

    @api.get("/api/assets/crypto/<symbol>/trade-stats")
    def trade_stats(symbol: str) -> Response:
        window, window_ms = _window_arg()
        snapshot = snapshot_of(symbol)
        stats = derived.trade_stats(cache, snapshot, window_ms)
        return _payload(snapshot, window=window, stats=asdict(stats))

    @api.get("/api/assets/crypto/<symbol>/trade-flow")
    def trade_flow(symbol: str) -> Response:
        if "trades" in request.args:  # the last N trades instead of a time window
            snapshot = snapshot_of(symbol)
            flow = last_trades_fields(snapshot, int_arg("trades", 100, 1, MAX_FLOW_TRADES))
            return _payload(snapshot, **flow)
        window, window_ms = _window_arg()
        snapshot = snapshot_of(symbol)
        flow = derived.trade_flow(cache, snapshot, window_ms)
        return _payload(snapshot, window=window, flow=asdict(flow))

    @api.get("/api/assets/crypto/<symbol>/large-trades")
    def large_trades(symbol: str) -> Response:
        if "multiple" in request.args:  # qty ≥ multiple × the window's mean trade size
            snapshot = snapshot_of(symbol)
            return _payload(snapshot, **multiple_fields(snapshot.trades, positive_arg("multiple")))
        threshold = positive_arg("threshold", "100000")
        snapshot = snapshot_of(symbol)
        result = derived.large_trades_of(cache, snapshot, (threshold,))
        return _payload(
            snapshot,
            threshold=threshold,
            window_count=result.window_count,
            trades=[asdict(row) for row in result.rows],
        )

    @api.get("/api/assets/crypto/<symbol>/volume-profile")
    def volume_profile(symbol: str) -> Response:
        bins = int_arg("bins", 50, 1, MAX_BINS)
        snapshot = snapshot_of(symbol)
        return _payload(snapshot, **volume_profile_fields(cache, snapshot, bins))

    @api.get("/healthz")
    def healthz() -> tuple[Response, int]:
        body = health(store)
        return jsonify(body), 503 if body["status"] == "unavailable" else 200

    return api


def _answer_unrouted_api_paths(api: Blueprint) -> None:
    """Answer with JSON every request under ``/api/`` that no API endpoint serves (404) and
    every request for an API endpoint (``/healthz`` too) with a method it does not serve
    (405, with ``Allow``). Without this the dashboard's catch-all page route answers unknown
    ``/api/`` paths with HTML and 200, and Flask answers 405 with HTML."""
    endpoints: list[Map] = []

    def api_map() -> Map:
        """Every API route, this blueprint's and any other's under ``/api/`` (built on first
        use, when the app's map is complete)."""
        if not endpoints:
            prefix = f"{api.name}."
            rules = current_app.url_map.iter_rules()
            endpoints.append(
                Map(
                    [
                        Rule(rule.rule, methods=rule.methods, endpoint=rule.endpoint)
                        for rule in rules
                        if rule.endpoint.startswith(prefix) or rule.rule.startswith("/api/")
                    ],
                    merge_slashes=False,
                )
            )
        return endpoints[0]

    @api.before_app_request
    def unrouted_api_path() -> Response | None:
        rule = request.url_rule  # every request (Dash's callbacks too): one lookup, no more
        if rule is not None and rule.rule != _PAGE_ROUTE:
            return None  # routed to an endpoint (this API's, Dash's or another blueprint's)
        path = request.path
        under_api = path.startswith("/api/") or path == "/api"
        if rule is not None and not under_api:
            return None  # a dashboard page (a GET, which every API route outside /api serves)
        try:
            api_map().bind("").match(path, request.method)
        except MethodNotAllowed as exc:
            allowed = sorted(set(exc.valid_methods or ()) - {"OPTIONS"})
            response = jsonify(
                error=f"method {request.method} not allowed on {path}", allowed=allowed
            )
            response.status_code = 405
            response.headers["Allow"] = ", ".join(allowed)
            return response
        except HTTPException:
            pass
        if not under_api:
            return None
        response = jsonify(error=f"no API endpoint at {path}")
        response.status_code = 404
        return response


def health(store: MarketStore) -> dict[str, Any]:
    """Feed status and per-symbol book state (and, with sharded workers, which worker owns
    the symbol's shard and since when; with Redis, each ingest worker's own status under
    ``workers``, and how the store is reached under ``store``: ``state`` ok, failing_over
    or down, see ``RedisStore.health``); ``status`` is ``ok`` while the feed publishes (its
    status is at most ``HEALTH_MAX_AGE_S`` old) and the store is whole, ``degraded`` while it
    publishes but part of the store cannot be read (a Redis Cluster master down, until its
    replica is promoted: those books are missing from ``books``), else ``unavailable``."""
    status = store.status()
    now = time.time()
    books = {}
    owner_of = getattr(store, "owner", None)  # the Redis store over sharded workers
    for symbol in store.published_symbols():
        snapshot = store.snapshot(symbol)
        if snapshot is not None:
            books[symbol] = {
                "sync_state": str(snapshot.book.sync_state),
                "seq": snapshot.seq,
                "age_s": round(now - snapshot.published_at, 3),
            }
            owner = owner_of(symbol) if owner_of is not None else None
            if owner is not None:
                books[symbol] |= {"owner": owner[0], "owner_since": iso_time(owner[1])}
    age = None if status is None else now - status.published_at
    publishing = age is not None and age <= HEALTH_MAX_AGE_S
    feed = None
    if status is not None:
        feed = {**asdict(status), "published_at": iso_time(status.published_at), "age_s": age}
    store_health = getattr(store, "health", None)  # the Redis store
    reached = None if store_health is None else store_health()
    whole = reached is None or reached["state"] == "ok"
    body = {
        "status": "unavailable" if not publishing else "ok" if whole else "degraded",
        "time": iso_time(now),
        "feed": feed,
        "books": books,
    }
    if reached is not None:
        body["store"] = reached
    if (statuses := getattr(store, "worker_statuses", None)) is not None:
        body["workers"] = worker_health(statuses(), now, HEALTH_MAX_AGE_S)
    return json_ready(body)
