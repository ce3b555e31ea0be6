"""JSON API of spot against perpetual: ``/api/assets/crypto/<symbol>/cvd/spot-perp``.

The CVD of the spot symbol (this app's store) and of its USD-M perpetual twin (the twin
feed's store, ``services.market.perp_twin``) from their common anchor, as defined in
``services.analytics.spot_perp``. Parameters: ``start`` (anchor, ISO 8601 UTC or epoch ms;
default: the later of the two markets' first trades in the live windows), ``unit``
(``quote``, default, or ``base``), ``points`` (per line, 2–5000, default 500),
``min_notional`` / ``max_notional`` (the flow filter, applied to both markets).

``anchor_ms``, ``gap`` and the lines are null while a market has no trade (in the filter's
band). 404: unknown symbol, no twin feed configured, or no USD-M perpetual of that name;
503 while the twin is not streamed yet (the request starts streaming it, so asking again
soon answers); 400 names a bad parameter.
"""

from __future__ import annotations

import time

import numpy as np
from flask import Blueprint, Response, jsonify, request

from app.api import ApiError, iso_time, json_ready, symbol_snapshot
from app.api_args import api_blueprint
from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from app.views_api import flow_filter_arg, integer_arg, parse_time
from services.analytics.flow import CvdSeries
from services.analytics.flow_filter import filter_trades
from services.analytics.spot_perp import spot_perp_cvd
from services.market.perp_twin import PerpTwin
from services.store import MarketStore


def _line(series: CvdSeries) -> dict:
    return {
        "time_ms": series.time_ms,
        "cvd": np.round(series.cvd, 8),
        "final": series.final,
        "trades": series.points_total,
    }


def create_spot_perp_api(
    store: MarketStore, cache: DerivedCache, twin: PerpTwin | None
) -> Blueprint:
    """The spot-vs-perpetual CVD endpoint over ``store`` and ``twin``'s store."""
    api = api_blueprint("spot_perp_api", __name__)

    @api.get("/api/assets/crypto/<symbol>/cvd/spot-perp")
    def spot_perp(symbol: str) -> Response:
        unit = request.args.get("unit", "quote")
        if unit not in ("base", "quote"):
            raise ApiError(400, "unit must be 'base' or 'quote'", parameter="unit")
        points = integer_arg("points", 500, 2, 5000)
        anchor = parse_time("start", request.args.get("start"))
        band = flow_filter_arg()
        spot = symbol_snapshot(store, symbol)
        if twin is None:
            raise ApiError(404, "no perpetual twin feed runs here (start with --perp-twin)")
        if twin.has_twin(spot.symbol) is False:
            raise ApiError(404, f"USD-M lists no perpetual {spot.symbol}")
        twin.request(spot.symbol)
        perp = twin.snapshot(spot.symbol)
        if perp is None:
            raise ApiError(
                503, f"no perpetual data for {spot.symbol} yet; its USD-M twin was requested"
            )
        pair = spot_perp_cvd(
            derived.filtered_trades(cache, spot, band.min_notional, band.max_notional),
            filter_trades(perp.trades, band),
            anchor_ms=anchor, max_points=points or 500, unit=unit,
        )  # fmt: skip
        lines = {"anchor_ms": None, "gap": None, "spot": None, "perp": None}
        if pair is not None:
            lines = {"anchor_ms": pair.anchor_ms, "gap": pair.gap,
                     "spot": _line(pair.spot), "perp": _line(pair.perp)}  # fmt: skip
        return jsonify(
            json_ready(
                {
                    "symbol": spot.symbol,
                    "time": iso_time(time.time()),
                    "unit": unit,
                    "filter": band.label() or None,
                    **lines,
                }
            )
        )

    return api
