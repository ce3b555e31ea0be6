"""The watchlist side panel in headless Chromium, fed by the real feed and the local
exchange: every symbol listed with live figures, filters, favourites kept across a reload,
and a click that switches the main views."""

from __future__ import annotations

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from tests.browser.test_dashboard import start

pytestmark = pytest.mark.browser

ROWS_JS = (
    "return Array.from(document.querySelectorAll('#watchlist .ag-center-cols-container "
    ".ag-row')).map(r => r.getAttribute('row-id')).sort();"
)


def cell(dash_duo, symbol: str, column: str) -> str:
    return dash_duo.driver.execute_script(
        "const c = document.querySelector("
        f"`#watchlist .ag-center-cols-container .ag-row[row-id='{symbol}'] [col-id='{column}']`);"
        "return c ? c.textContent : null;"
    )


def pinned_cell(dash_duo, symbol: str, column: str):
    return dash_duo.driver.find_element(
        "css selector",
        f"#watchlist .ag-pinned-left-cols-container .ag-row[row-id='{symbol}'] [col-id='{column}']",
    )


def rows(dash_duo) -> list[str]:
    return dash_duo.driver.execute_script(ROWS_JS)


def test_watchlist_lists_filters_keeps_favourites_and_switches_symbol(dash_duo, replay_store):
    store, _feed = replay_store
    start(dash_duo, store)
    dash_duo.find_element("#watchlist-toggle").click()
    until(lambda: rows(dash_duo) == ["BTCUSDT", "DOTUSDT", "ETHUSDT"], timeout=10)
    until(lambda: cell(dash_duo, "BTCUSDT", "sync_state") == "LIVE", timeout=10)
    assert cell(dash_duo, "BTCUSDT", "spread_bps").endswith(" bp")
    assert 0 <= int(cell(dash_duo, "ETHUSDT", "liquidity")) <= 100
    assert cell(dash_duo, "DOTUSDT", "sync_state") == ""  # its book is not streamed
    last = float(cell(dash_duo, "BTCUSDT", "last"))
    assert 57_000 < last < 59_000
    until(lambda: float(cell(dash_duo, "BTCUSDT", "last") or 0) != last, timeout=15)

    text = dash_duo.find_element("#watchlist-text")
    text.send_keys("eth")
    until(lambda: rows(dash_duo) == ["ETHUSDT"], timeout=5)
    text.send_keys(Keys.BACKSPACE * 3)
    until(lambda: len(rows(dash_duo)) == 3, timeout=5)

    pinned_cell(dash_duo, "DOTUSDT", "favourite").click()
    until(lambda: pinned_cell(dash_duo, "DOTUSDT", "favourite").text == "★", timeout=5)
    dash_duo.driver.refresh()
    dash_duo.wait_for_element("#watchlist-toggle", timeout=10).click()
    until(lambda: len(rows(dash_duo)) == 3, timeout=10)
    assert pinned_cell(dash_duo, "DOTUSDT", "favourite").text == "★"  # kept in the browser
    dash_duo.find_element("#watchlist-favourites-only").click()
    until(lambda: rows(dash_duo) == ["DOTUSDT"], timeout=5)
    dash_duo.find_element("#watchlist-favourites-only").click()
    until(lambda: len(rows(dash_duo)) == 3, timeout=5)

    pinned_cell(dash_duo, "ETHUSDT", "symbol").click()
    until(lambda: dash_duo.driver.current_url.endswith("/ETHUSDT"), timeout=10)
    dash_duo.wait_for_contains_text("#symbol-dropdown", "ETHUSDT", timeout=10)
    assert dash_duo.get_logs() == []
