"""Depth chart factory: book data in, plain figure dict out; a book not LIVE is not drawn."""

from __future__ import annotations

import json

import numpy as np

from components.depth_chart import (
    create_depth_figure,
    create_depth_unavailable,
    downsample_indices,
    zoom_range,
)


def book_arrays(levels: int = 2000) -> dict[str, np.ndarray]:
    bid_prices = 100.0 - 0.01 * np.arange(levels)
    ask_prices = 100.01 + 0.01 * np.arange(levels)
    qty = np.full(levels, 2.0)
    return {
        "bid_prices": bid_prices,
        "bid_cum_qty": np.cumsum(qty),
        "bid_cum_notional": np.cumsum(bid_prices * qty),
        "ask_prices": ask_prices,
        "ask_cum_qty": np.cumsum(qty),
        "ask_cum_notional": np.cumsum(ask_prices * qty),
    }


def test_figure_has_bid_and_ask_step_areas_mid_spread_and_zoom():
    figure = create_depth_figure(
        **book_arrays(), mid=100.005, spread=0.01, spread_bps=1.0, zoom_pct=1.0, uirevision="X|1"
    )
    bids, asks = figure["data"]
    assert bids["line"]["shape"] == "vh" and asks["line"]["shape"] == "hv"
    assert bids["fill"] == asks["fill"] == "tozeroy"
    assert bids["x"][0] == 100.0 and asks["x"][0] == 100.01
    assert asks["y"][0] == 2.0 and asks["customdata"][0] == round(100.01 * 2.0)
    assert "cumulative notional" in bids["hovertemplate"]
    layout = figure["layout"]
    assert layout["uirevision"] == "X|1"
    assert layout["xaxis"]["range"] == zoom_range(100.005, 1.0)
    assert layout["shapes"][0]["x0"] == 100.005
    assert "spread 0.01" in layout["annotations"][0]["text"]
    json.dumps(figure)


def test_points_per_side_are_bounded_and_keep_both_ends():
    figure = create_depth_figure(
        **book_arrays(5000),
        mid=100.0,
        spread=0.01,
        spread_bps=1.0,
        zoom_pct=5,
        uirevision="u",
        max_points=300,
    )
    for trace in figure["data"]:
        assert len(trace["x"]) <= 300
        assert trace["y"][-1] == 10_000.0
    keep = downsample_indices(10, 4)
    assert keep[0] == 0 and keep[-1] == 9


def test_book_not_live_gives_a_message_instead_of_a_chart():
    figure = create_depth_unavailable("RESYNCING", "gap in diff stream")
    assert figure["data"] == []
    text = figure["layout"]["annotations"][0]["text"]
    assert "RESYNCING" in text and "gap in diff stream" in text and "not drawn" in text
