"""The watchlist side panel in headless Chromium, fed by the real feed and the local
exchange: every symbol listed with live figures, filters, favourites kept across a reload,
and a click that switches the main views."""

from __future__ import annotations

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from app.server import create_app
from tests.redis_server import free_port

pytestmark = pytest.mark.browser

GRID_JS = """
const rows = {};
document.querySelectorAll('#watchlist .ag-row[row-id]').forEach(row => {
  const id = row.getAttribute('row-id');
  rows[id] = rows[id] || {};
  row.querySelectorAll('[col-id]').forEach(c => {
    rows[id][c.getAttribute('col-id')] = c.textContent;
  });
});
return rows;
"""


def start(dash_duo, store) -> None:
    """The dashboard at a calm refresh (the panels are not what this test looks at)."""
    app = create_app(store, refresh_ms=2000, slow_refresh_ms=700)
    dash_duo.start_server(app, port=free_port())
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.wait_for_contains_text("#status-bar", "LIVE", timeout=20)


def grid(dash_duo) -> dict[str, dict[str, str]]:
    """Every displayed row of the watchlist: row id → column id → text (one round trip)."""
    return dash_duo.driver.execute_script(GRID_JS)


def click_cell(dash_duo, symbol: str, column: str) -> None:
    dash_duo.driver.find_element(
        "css selector",
        f"#watchlist .ag-pinned-left-cols-container .ag-row[row-id='{symbol}'] [col-id='{column}']",
    ).click()


def test_watchlist_lists_filters_keeps_favourites_and_switches_symbol(dash_duo, replay_store):
    store, _feed = replay_store
    start(dash_duo, store)
    dash_duo.find_element("#watchlist-toggle").click()
    until(
        lambda: (
            sorted(g := grid(dash_duo)) == ["BTCUSDT", "DOTUSDT", "ETHUSDT"]
            and g["BTCUSDT"].get("sync_state") == "LIVE"
            and g["ETHUSDT"].get("liquidity")
        ),
        timeout=15,
    )
    rows = grid(dash_duo)
    assert rows["BTCUSDT"]["spread_bps"].endswith(" bp")
    assert 0 <= int(rows["ETHUSDT"]["liquidity"]) <= 100
    assert rows["DOTUSDT"]["sync_state"] == ""  # its book is not streamed
    assert 57_000 < float(rows["BTCUSDT"]["last"]) < 59_000

    text = dash_duo.find_element("#watchlist-text")
    text.send_keys("eth")
    until(lambda: sorted(grid(dash_duo)) == ["ETHUSDT"], timeout=10)
    text.send_keys(Keys.BACKSPACE * 3)
    until(lambda: len(grid(dash_duo)) == 3, timeout=10)

    click_cell(dash_duo, "DOTUSDT", "favourite")
    until(lambda: grid(dash_duo)["DOTUSDT"]["favourite"] == "★", timeout=10)
    dash_duo.driver.refresh()
    dash_duo.wait_for_element("#watchlist-toggle", timeout=15).click()
    until(lambda: len(g := grid(dash_duo)) == 3 and g["DOTUSDT"]["favourite"] == "★", 15)
    dash_duo.find_element("#watchlist-favourites-only").click()
    until(lambda: sorted(grid(dash_duo)) == ["DOTUSDT"], timeout=10)
    dash_duo.find_element("#watchlist-favourites-only").click()
    until(lambda: len(grid(dash_duo)) == 3, timeout=10)

    click_cell(dash_duo, "ETHUSDT", "symbol")
    until(lambda: dash_duo.driver.current_url.endswith("/ETHUSDT"), timeout=10)
    dash_duo.wait_for_contains_text("#symbol-dropdown", "ETHUSDT", timeout=10)
    assert dash_duo.get_logs() == []
