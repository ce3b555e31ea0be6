"""Flow meter factory: buy/sell shares, direction label, CVD line."""

from __future__ import annotations

import json

from components.flow_meter import create_flow_figure


def test_bars_direction_and_cvd():
    figure = create_flow_figure(
        buy_volume=700.0,
        sell_volume=300.0,
        window_label="5m",
        direction="strong_buy",
        cvd_time_ms=[1, 2, 3],
        cvd_values=[0.0, 5.0, 4.0],
        uirevision="BTCUSDT|5m",
        unit="USDT",
    )
    buy, sell, cvd = figure["data"]
    assert buy["x"] == [70.0] and sell["x"] == [30.0]
    assert "buy 700.00 USDT (70%)" in buy["text"][0]
    assert cvd["y"] == [0.0, 5.0, 4.0] and cvd["yaxis"] == "y2"
    assert figure["layout"]["title"]["text"] == "5m: strong buying"
    json.dumps(figure)


def test_empty_window_says_no_trades():
    figure = create_flow_figure(
        buy_volume=0.0,
        sell_volume=0.0,
        window_label="1m",
        direction="neutral",
        cvd_time_ms=[],
        cvd_values=[],
        uirevision="u",
    )
    assert figure["layout"]["title"]["text"] == "1m: no trades"
