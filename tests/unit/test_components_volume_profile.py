"""Volume profile factory: bars per bucket, POC highlighted, value area shaded, delta."""

from __future__ import annotations

from components.theme import ACCENT
from components.volume_profile import create_profile_figure


def test_poc_value_area_and_delta():
    figure = create_profile_figure(
        bucket_prices=[100.0, 101.0, 102.0],
        buy_volume=[1.0, 6.0, 0.5],
        sell_volume=[2.0, 2.0, 0.5],
        point_of_control=101.0,
        value_area_low=100.0,
        value_area_high=102.0,
        bucket_size=1.0,
        uirevision="u",
    )
    volume, delta = figure["data"]
    assert volume["x"] == [3.0, 8.0, 1.0]
    assert volume["y"] == [100.5, 101.5, 102.5]
    assert volume["marker"]["color"][1] == ACCENT
    assert delta["x"] == [-1.0, 4.0, 0.0]
    area = figure["layout"]["shapes"][0]
    assert (area["y0"], area["y1"]) == (100.0, 102.0)
    assert "POC 101.00" in figure["layout"]["annotations"][0]["text"]


def test_no_trades_gives_a_notice():
    figure = create_profile_figure(
        bucket_prices=[],
        buy_volume=[],
        sell_volume=[],
        point_of_control=float("nan"),
        value_area_low=float("nan"),
        value_area_high=float("nan"),
        bucket_size=1.0,
        uirevision="u",
    )
    assert figure["data"] == []
