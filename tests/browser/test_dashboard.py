"""The dashboard in headless Chromium, fed by the real feed from the local exchange replaying
a real recording (REPLAY)."""

from __future__ import annotations

import csv
import glob
import os
import re
import time

import pytest
from dash.testing.errors import TestingTimeoutError
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from app.server import create_app
from tests.redis_server import free_port

pytestmark = pytest.mark.browser

PANELS = (
    "#depth-chart .js-plotly-plot .scatterlayer .trace",
    "#trade-tape .tape-row",
    "#flow-meter .js-plotly-plot .barlayer",
    "#volume-profile .js-plotly-plot .barlayer .point",
    "#liquidity-score .score-value",
    "#status-bar .status-item",
)
DEPTH_MID_JS = (
    "const g = document.querySelector('#depth-chart .js-plotly-plot');"
    "return g && g.layout && g.layout.shapes && g.layout.shapes.length"
    " ? g.layout.shapes[0].x0 : null;"
)
DEPTH_POINTS_JS = (
    "const g = document.querySelector('#depth-chart .js-plotly-plot');"
    "return g && g.data && g.data.length ? JSON.stringify(g.data[1].y) : null;"
)


def start(dash_duo, store, path: str = "/") -> None:
    app = create_app(store, refresh_ms=300, slow_refresh_ms=800)
    dash_duo.start_server(app, port=free_port())
    dash_duo.driver.set_window_size(1400, 1000)
    if path != "/":
        dash_duo.driver.get(dash_duo.server_url + path)
    for selector in PANELS:
        dash_duo.wait_for_element(selector, timeout=15)


def first_tape_row(dash_duo) -> str:
    return dash_duo.driver.execute_script(
        "const row = document.querySelector('#trade-tape .tape-row');"
        "return row ? row.textContent : '';"
    )


def test_panels_render_from_recording_and_keep_updating(dash_duo, replay_store):
    store, _feed = replay_store
    start(dash_duo, store)
    dash_duo.wait_for_contains_text("#status-bar", "REPLAY", timeout=10)
    dash_duo.wait_for_contains_text("#status-bar", "2021-04-04 20:03", timeout=5)
    dash_duo.wait_for_contains_text("#status-bar", "LIVE", timeout=5)
    assert dash_duo.find_element("#symbol-dropdown").text.strip().startswith("BTCUSDT")
    seq_before = store.snapshot("BTCUSDT").seq
    tape_before = first_tape_row(dash_duo)
    depth_before = dash_duo.driver.execute_script(DEPTH_POINTS_JS)
    until(lambda: first_tape_row(dash_duo) != tape_before, timeout=10)
    until(lambda: dash_duo.driver.execute_script(DEPTH_POINTS_JS) != depth_before, timeout=10)
    assert store.snapshot("BTCUSDT").seq > seq_before
    mid = dash_duo.driver.execute_script(DEPTH_MID_JS)
    assert 57_000 < mid < 59_000
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3}\s+5\d,\d{3}\.\d\d", first_tape_row(dash_duo))
    score = dash_duo.driver.execute_script(  # one read: the panel re-renders as it refreshes
        "return document.querySelector('#liquidity-score .score-value').textContent;"
    )
    assert score.isdigit()
    assert dash_duo.get_logs() == []


def test_symbol_switches_through_dropdown(dash_duo, replay_store):
    store, _feed = replay_store
    start(dash_duo, store)
    dash_duo.select_dcc_dropdown("#symbol-dropdown", value="ETHUSDT")
    until(lambda: dash_duo.driver.current_url.endswith("/ETHUSDT"), timeout=10)
    until(lambda: 2_000 < (dash_duo.driver.execute_script(DEPTH_MID_JS) or 0) < 2_200, timeout=10)
    until(lambda: " 2,0" in first_tape_row(dash_duo), timeout=10)
    assert dash_duo.get_logs() == []


def test_symbol_from_url_unknown_and_on_demand(dash_duo, replay_store):
    store, _feed = replay_store
    start(dash_duo, store)
    dash_duo.driver.get(dash_duo.server_url + "/BTCUSTD")
    dash_duo.wait_for_contains_text("#symbol-message", "Unknown symbol 'BTCUSTD'", timeout=10)
    dash_duo.wait_for_contains_text("#symbol-message", "BTCUSDT", timeout=5)
    # DOTUSDT trades on the exchange but the feed does not stream it: the page asks for it,
    # the feed subscribes on demand, syncs its book and the panels follow.
    dash_duo.driver.get(dash_duo.server_url + "/DOTUSDT")
    until(lambda: "DOTUSDT" in store.requested_symbols(), timeout=10)
    until(lambda: 40 < (dash_duo.driver.execute_script(DEPTH_MID_JS) or 0) < 50, timeout=30)
    assert "DOTUSDT" in dash_duo.find_element("#symbol-dropdown").text
    assert dash_duo.get_logs() == []


def test_large_trades_csv_download(dash_duo, replay_store):
    store, _feed = replay_store
    start(dash_duo, store)
    tiers = dash_duo.find_element("#tape-tiers")
    tiers.send_keys(Keys.CONTROL, "a")
    tiers.send_keys("1k, 10k", Keys.ENTER)
    dash_duo.find_element("#large-trades-export").click()
    pattern = os.path.join(dash_duo.download_path, "large_trades_BTCUSDT_*.csv")
    until(lambda: glob.glob(pattern), timeout=10)
    (path,) = glob.glob(pattern)
    assert re.search(r"large_trades_BTCUSDT_\d{8}T\d{6}Z\.csv$", path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "the recording has trades above 1k USDT"
    assert list(rows[0]) == [
        "time_utc",
        "symbol",
        "trade_id",
        "price",
        "qty",
        "quote_qty",
        "side",
        "tier",
        "threshold",
    ]
    for row in rows:
        # Replayed trades carry times re-stamped to the current clock, as the exchange sends.
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row["time_utc"])
        assert row["symbol"] == "BTCUSDT"
        assert row["side"] in ("taker buy", "taker sell")
        assert float(row["quote_qty"]) >= float(row["threshold"]) >= 1_000
        assert row["tier"] in ("1", "2")
    assert dash_duo.get_logs() == []


WIDEST_ELEMENTS_JS = (
    "const w = document.documentElement.clientWidth;"
    "const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement)"
    " if (getComputedStyle(p).overflowX !== 'visible') return true; return false; };"
    "return [...document.querySelectorAll('body *')]"
    ".filter(e => e.getBoundingClientRect().right > w + 0.5 && !clipped(e))"
    ".slice(0, 8).map(e => (e.closest('[id]') || e).id + ' ' + e.tagName + '.'"
    " + (typeof e.className === 'string' ? e.className : '') + ':'"
    " + Math.round(e.getBoundingClientRect().right));"
)


def test_page_has_no_horizontal_scroll_bar(dash_duo, replay_store):
    """At a desktop, a laptop and a phone width the page is never wider than the window."""
    store, _feed = replay_store
    start(dash_duo, store)
    driver = dash_duo.driver
    for width in (1600, 1280, 420):
        driver.set_window_size(width, 900)
        until(lambda w=width: driver.execute_script("return window.innerWidth") <= w, timeout=5)
        dash_duo.wait_for_element("#liquidity-score .score-value", timeout=10)

        def fits() -> bool:
            return driver.execute_script(
                "const s = document.scrollingElement;return s.scrollWidth <= s.clientWidth;"
            )

        try:
            until(fits, timeout=3)
            time.sleep(0.6)  # panels keep refreshing: the page must stay within the window
            until(fits, timeout=0.5)
        except TestingTimeoutError:
            wide = driver.execute_script(WIDEST_ELEMENTS_JS)
            pytest.fail(f"horizontal scroll at {width}px: {wide}")
