"""Spot against perpetual in headless Chromium: the bundled spot and USD-M BTCUSDT
recordings of 2024-08-08 replayed together by two local exchanges (the app's feed and the
perpetual twin's); the page's flow chart asks for the twin and draws a spot CVD line and a
perp CVD line from one anchor, each equal to its own market's trades, with a legend."""

from __future__ import annotations

import pytest
from dash.testing.wait import until

from app.server import create_app
from tests.redis_server import free_port
from tests.spot_perp_market import spot_perp_market

pytestmark = pytest.mark.browser

LINES_JS = (
    "const g = document.querySelector('#flow-meter .js-plotly-plot');"
    "if (!g || !g.data) return null;"
    "const lines = g.data.filter(t => t.name === 'spot CVD' || t.name === 'perp CVD');"
    "return {names: lines.map(t => t.name), points: lines.map(t => t.x.length),"
    " first: lines.map(t => t.x[0]), last: lines.map(t => t.y[t.y.length - 1]),"
    " legend: !!g.querySelector('.legend'),"
    " drawn: g.querySelectorAll('.scatterlayer .trace path.js-line').length};"
)


def test_flow_chart_draws_spot_and_perp_cvd_lines(dash_duo):
    with spot_perp_market() as market:
        store, twin = market.store, market.twin
        assert market.twin_source is not None
        until(lambda: store.snapshot("BTCUSDT") is not None, timeout=30)
        app = create_app(store, refresh_ms=500, slow_refresh_ms=2000, perp_twin=twin)
        dash_duo.start_server(app, port=free_port())
        dash_duo.driver.set_window_size(1500, 1000)
        dash_duo.driver.get(dash_duo.server_url + "/BTCUSDT")
        until(lambda: len((dash_duo.driver.execute_script(LINES_JS) or {}).get("names", []))
              == 2, timeout=60)  # fmt: skip
        until(lambda: min(dash_duo.driver.execute_script(LINES_JS)["points"]) > 5, timeout=30)
        lines = dash_duo.driver.execute_script(LINES_JS)
        assert lines["names"] == ["spot CVD", "perp CVD"] and lines["legend"]
        assert lines["drawn"] >= 2, "both lines are painted"
        assert twin.following() == frozenset({"BTCUSDT"}), "the page asked for the twin"
        spot, perp = store.snapshot("BTCUSDT").trades, twin.snapshot("BTCUSDT").trades
        # one anchor, the later of the two markets' first trades: neither line starts before
        anchor = max(int(spot.time_ms[0]), int(perp.time_ms[0]))
        assert all(anchor <= first < anchor + 5_000 for first in lines["first"])
        assert lines["last"][0] != lines["last"][1], "each line counts its own market"
        assert dash_duo.get_logs() == []
