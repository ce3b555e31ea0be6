"""The heatmap and footprint views in headless Chromium, fed by the real feed from the local
exchange replaying the 2021 recording: they render, grow live, keep the user's zoom, switch
through the dropdowns and the URL, and the flow filter reaches the tape."""

from __future__ import annotations

import re

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from app.alerting import make_alerts
from app.config import Settings
from app.server import create_app
from tests.redis_server import free_port

pytestmark = pytest.mark.browser

GRAPH = "const g = document.querySelector('{sel} .js-plotly-plot');"
HEATMAP_STATE_JS = (
    GRAPH.format(sel="#heatmap-chart")
    + "const m = window.dash_clientside.heatmapLayer.inspect('heatmap-chart');"
    "if (!g || !g._fullLayout || !m) return null;"
    "const c = document.querySelector('#heatmap-chart canvas.heatmap-layer');"
    "const xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis;"
    "let painted = 0;"
    "if (c && c.width) { const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
    " for (let i = 3; i < px.length; i += 4) if (px[i]) painted++; }"
    "return Object.assign(m, {last: m.x0 + (m.columns - 1) * m.dx, painted: painted,"
    " yrange: ya.range, xauto: xa.autorange, xright: xa.r2l(xa.range[1]),"
    " aligned: !!c && c.style.left === xa._offset + 'px' && c.style.top === ya._offset + 'px'"
    "  && c.style.width === xa._length + 'px' && c.style.height === ya._length + 'px',"
    " box: c ? (() => { const r = c.getBoundingClientRect();"
    "  return [r.left, r.top, r.width, r.height]; })() : null});"
)
FOOTPRINT_STATE_JS = (
    GRAPH.format(sel="#footprint-chart")
    + "if (!g || !g.data || !g.data.length || g.data[0].type !== 'heatmap') return null;"
    "return {y0: g.data[0].y[0], text: g.data[0].text.flat().filter(t => t).length,"
    " labels: [...g.querySelectorAll('.heatmap-label text')].filter(t => t.textContent)"
    ".length, visible: g.offsetParent !== null,"
    " total: g.data[0].z.flat().reduce((a, v) => a + Math.abs(v || 0), 0)};"
)


def start(dash_duo, store, path: str, alerts=None) -> None:
    app = create_app(store, refresh_ms=500, slow_refresh_ms=2000, alerts=alerts)
    dash_duo.start_server(app, port=free_port())
    dash_duo.driver.set_window_size(1500, 1000)
    dash_duo.driver.get(dash_duo.server_url + path)


def state(dash_duo, script: str) -> dict | None:
    return dash_duo.driver.execute_script(script)


def test_heatmap_renders_grows_live_and_keeps_zoom(dash_duo, replay_store, tmp_path):
    store, _feed = replay_store
    alerts = make_alerts(Settings(alerts_dir=tmp_path, history=False))  # the price alert form
    start(dash_duo, store, "/BTCUSDT?view=heatmap", alerts)
    until(lambda: (state(dash_duo, HEATMAP_STATE_JS) or {}).get("cells", 0) > 50, timeout=30)
    until(lambda: state(dash_duo, HEATMAP_STATE_JS)["painted"] > 500, timeout=10)
    first = state(dash_duo, HEATMAP_STATE_JS)
    assert first["aligned"], "the canvas layer covers exactly Plotly's plot area"
    assert 100 <= first["rows"] <= 201 and first["columns"] == 300
    # the replay's clock (the recording's 2021 times), as its trades: the dots land on it
    assert first["last"] < 1_700_000_000_000
    # the x axis follows the drawn columns (Plotly moves it in the frame after the paint)
    until(lambda: abs((s := state(dash_duo, HEATMAP_STATE_JS))["xright"] - s["end"]) <= 1, 10)
    assert state(dash_duo, HEATMAP_STATE_JS)["xauto"]
    until(lambda: state(dash_duo, HEATMAP_STATE_JS)["dots"] > 0, timeout=10)
    low, high = first["yrange"]
    assert 57_000 < low < high < 59_000
    # live columns arrive as layers (same drawing, no new figure) and the x axis follows them
    until(lambda: state(dash_duo, HEATMAP_STATE_JS)["end"] >= first["end"] + 2000, timeout=10)
    grown = state(dash_duo, HEATMAP_STATE_JS)
    assert grown["appended"] > first["appended"] and grown["columns"] == 300
    assert grown["painted"] > 500
    until(lambda: abs((s := state(dash_duo, HEATMAP_STATE_JS))["xright"] - s["end"]) <= 1, 10)
    # a click (not a drag) on the plot starts a price alert at the price under the pointer
    # (the band follows the mid: the price is read against the band drawn at the click)
    before = state(dash_duo, HEATMAP_STATE_JS)
    left, top, width, height = before["box"]
    dash_duo.driver.execute_script(
        "const c = document.querySelector('#heatmap-chart .nsewdrag');"
        "const o = {bubbles: true, clientX: arguments[0], clientY: arguments[1], buttons: 1};"
        "c.dispatchEvent(new MouseEvent('mousedown', o));"
        "c.dispatchEvent(new MouseEvent('mouseup', o));"
        "c.dispatchEvent(new MouseEvent('click', o));",
        left + width / 2, top + height / 2,
    )  # fmt: skip
    until(lambda: dash_duo.find_element("#alerts-threshold").get_attribute("value"), timeout=10)
    price = float(dash_duo.find_element("#alerts-threshold").get_attribute("value"))
    after = state(dash_duo, HEATMAP_STATE_JS)
    assert any(
        b < price < t and abs(price - (b + t) / 2) < (t - b) * 0.05
        for b, t in (before["yrange"], after["yrange"])
    ), (price, before["yrange"], after["yrange"])
    zoom = [low + (high - low) * 0.4, low + (high - low) * 0.6]
    dash_duo.driver.execute_script(
        GRAPH.format(sel="#heatmap-chart") + f"Plotly.relayout(g, {{'yaxis.range': {zoom}}});"
    )
    until(lambda: state(dash_duo, HEATMAP_STATE_JS)["dy"] < first["dy"], timeout=10)
    zoomed = state(dash_duo, HEATMAP_STATE_JS)
    until(lambda: state(dash_duo, HEATMAP_STATE_JS)["end"] >= zoomed["end"] + 2000, timeout=10)
    later = state(dash_duo, HEATMAP_STATE_JS)
    assert later["columns"] == 300, "new columns are appended and as many dropped"
    assert later["yrange"] == pytest.approx(zoom), "the user's zoom survives live updates"
    assert later["painted"] > 0 and later["aligned"]
    # hover names the cell under the pointer; the notional toggle redraws in quote units
    left, top, width, height = later["box"]
    dash_duo.driver.execute_script(
        "document.querySelector('#heatmap-chart .nsewdrag').dispatchEvent(new MouseEvent("
        "'mousemove', {bubbles: true, clientX: arguments[0], clientY: arguments[1]}));",
        left + width * 0.9, top + height / 2,
    )  # fmt: skip
    tip = dash_duo.find_element("#heatmap-chart .heatmap-tip")
    assert tip.is_displayed() and "price" in tip.text
    dash_duo.driver.execute_script(
        "[...document.querySelectorAll('#heatmap-unit label')]"
        ".find(l => l.textContent === 'notional').click();"
    )
    until(lambda: state(dash_duo, HEATMAP_STATE_JS)["unit"] == "USDT", timeout=10)
    quote = state(dash_duo, HEATMAP_STATE_JS)
    assert quote["upper"] > later["upper"] * 1000, "notional: size × price"
    assert dash_duo.find_element("#depth-chart .js-plotly-plot")
    assert dash_duo.find_element("#trade-tape .tape-row")
    assert dash_duo.get_logs() == []


def test_views_and_symbols_switch_and_the_flow_filter_applies(dash_duo, replay_store):
    store, _feed = replay_store
    start(dash_duo, store, "/BTCUSDT?view=footprint")
    until(lambda: (state(dash_duo, FOOTPRINT_STATE_JS) or {}).get("text", 0) > 3, timeout=15)
    fp = state(dash_duo, FOOTPRINT_STATE_JS)
    assert fp["visible"] and 57_000 < fp["y0"] < 59_000
    assert fp["labels"] == fp["text"], "every cell's label is drawn (in its own cell)"
    # the footprint updates live: new trades of the replay change its cells
    until(lambda: state(dash_duo, FOOTPRINT_STATE_JS)["total"] != fp["total"], timeout=15)
    dash_duo.find_element("#flow-filter-min").send_keys("5k", Keys.ENTER)
    dash_duo.wait_for_contains_text("#tape-filter-badge", "filter ≥ 5k", timeout=10)
    assert dash_duo.find_element("#main-filter-badge").text == "filter ≥ 5k"
    assert dash_duo.find_element("#flow-filter-badge").text == "filter ≥ 5k"
    until(lambda: "filter ≥ 5k" in (state(dash_duo, FOOTPRINT_TITLE_JS) or ""), timeout=10)
    notionals = [
        float(re.split(r"\s+", row.strip())[3].replace(",", ""))
        for row in dash_duo.driver.execute_script(
            "return [...document.querySelectorAll('#trade-tape .tape-row')]"
            ".map(r => r.textContent);"
        )
    ]
    assert notionals and min(notionals) >= 5_000
    dash_duo.select_dcc_dropdown("#view-dropdown", value="Heatmap")
    until(lambda: dash_duo.driver.current_url.endswith("/BTCUSDT?view=heatmap"), timeout=10)
    until(lambda: (state(dash_duo, HEATMAP_STATE_JS) or {}).get("painted", 0) > 0, timeout=15)
    dash_duo.select_dcc_dropdown("#symbol-dropdown", value="ETHUSDT")
    until(lambda: dash_duo.driver.current_url.endswith("/ETHUSDT?view=heatmap"), timeout=10)
    until(lambda: 1_900 < (state(dash_duo, HEATMAP_STATE_JS) or {"yrange": [0]})["yrange"][0]
          < 2_200, timeout=25)  # fmt: skip
    assert dash_duo.get_logs() == []


FOOTPRINT_TITLE_JS = (
    GRAPH.format(sel="#footprint-chart")
    + "return g && g.layout && g.layout.title ? g.layout.title.text : null;"
)
