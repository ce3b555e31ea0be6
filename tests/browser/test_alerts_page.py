"""The alerts section in real headless Chromium: a rule created on the page fires on the
replayed recording (the feed's AlertTap evaluates it) and its toast shows on the page."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from dash.testing.wait import until

from app import market_source
from app.alerting import make_alerts, start_tap
from app.config import Settings
from app.server import create_app
from services.market.feed import Feed
from services.store import MemoryStore
from tests.conftest import SPOT_2021
from tests.redis_server import free_port


@pytest.fixture(scope="module")
def alerting_replay(tmp_path_factory) -> Iterator[tuple[MemoryStore, object]]:
    """The real feed on the replayed 2021 recording (looping), with the alert tap."""
    settings = Settings(
        source="replay",
        recording=SPOT_2021,
        speed="4",
        loop=True,
        history=False,
        symbols=("BTCUSDT", "ETHUSDT"),
        publish_interval_s=0.2,
        alerts_dir=tmp_path_factory.mktemp("alerts"),
    )
    source = market_source.resolve(settings)
    store = MemoryStore()
    alerts = make_alerts(settings)
    tap = start_tap(alerts)
    feed = Feed(market_source.feed_config(settings, source), store, taps=[tap])
    feed.start_in_thread()
    deadline = time.monotonic() + 30
    while store.snapshot("BTCUSDT") is None or not store.snapshot("BTCUSDT").book.is_live:
        assert time.monotonic() < deadline, "the feed did not sync BTCUSDT"
        time.sleep(0.1)
    yield store, alerts
    feed.stop()
    tap.stop()
    source.close()


def click(dash_duo, selector: str) -> None:
    """Click the element through the DOM: the page is taller than the window and fixed
    elements (the toast, the footer) may cover where a pointer click would land."""
    dash_duo.wait_for_element(selector)  # then found and clicked in one script: a redraw
    # between a find and a click would leave a stale element
    dash_duo.driver.execute_script("document.querySelector(arguments[0]).click();", selector)


def test_a_rule_created_on_the_page_fires_a_toast(dash_duo, alerting_replay):
    store, alerts = alerting_replay
    app = create_app(store, refresh_ms=500, slow_refresh_ms=2000, alerts=alerts)
    dash_duo.start_server(app, port=free_port())
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.wait_for_element("#alerts-create", timeout=15)
    pushed = "return window.tapescopeAlerts || {};"
    until(lambda: dash_duo.driver.execute_script(pushed).get("pushed"), timeout=15)
    dash_duo.find_element("#alerts-symbol").send_keys("BTCUSDT")
    dash_duo.find_element("#alerts-threshold").send_keys("1000")
    click(dash_duo, "#alerts-create")
    dash_duo.wait_for_contains_text("#alerts-message", "added", timeout=10)
    dash_duo.wait_for_contains_text("#alerts-rules", "min_notional 1,000.00", timeout=10)
    [rule] = alerts.rules.all()
    assert rule.kind == "large_trade" and rule.symbol == "BTCUSDT"
    # events are pushed (/ws/alerts/): the list's poll is down to every 15 s, and each event
    # asks for a read at once
    dash_duo.wait_for_contains_text("#alerts-toast", "BTCUSDT large trade", timeout=12)
    assert dash_duo.driver.execute_script(pushed)["nudges"] >= 2
    toast = dash_duo.find_element("#alerts-toast").text
    assert "@" in toast and "trade" in toast
    fired = alerts.events.since(0, 100)
    assert fired and all(e.details["notional"] >= 1000 for e in fired)
    dash_duo.wait_for_contains_text("#alerts-events", "BTCUSDT large trade", timeout=10)
    first = dash_duo.driver.execute_script(
        "const row = document.querySelector('#alerts-events .alert-event');"
        "return row ? row.textContent : '';"
    )
    assert first.startswith("20") and "Z" in first and "BTCUSDT" in first
    # a press on a row, a redraw (a newer event: Dash remounts every row, the pressed node
    # leaves the page), then the release: the click lands on the list, and still jumps to
    # the row pressed
    dash_duo.driver.execute_script(
        "window.heldRow = document.querySelector('#alerts-events .alert-event');"
        "window.heldText = window.heldRow.textContent;"
        "window.heldRow.dispatchEvent(new PointerEvent('pointerdown', {bubbles: true}));"
    )
    until(
        lambda: dash_duo.driver.execute_script(
            "return document.querySelector('#alerts-events .alert-event').textContent"
            " !== window.heldText;"
        ),
        timeout=30,
    )
    assert not dash_duo.driver.execute_script("return document.body.contains(window.heldRow);")
    assert not dash_duo.driver.current_url.endswith("/BTCUSDT")
    dash_duo.driver.execute_script(
        "document.getElementById('alerts-events')"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}));"
    )
    until(lambda: dash_duo.driver.current_url.endswith("/BTCUSDT"), timeout=10)
    # disable it from the page: the store follows
    click(dash_duo, "#alerts-rules button")
    dash_duo.wait_for_contains_text("#alerts-rules", "enable", timeout=10)
    assert not alerts.rules.all()[0].enabled
    # a click on an event shows its symbol (the rule is off: no new event redraws the list
    # under the click, as every fill did at 4x replay speed)
    dash_duo.driver.get(dash_duo.server_url + "/ETHUSDT")
    dash_duo.wait_for_contains_text("#symbol-dropdown", "ETHUSDT", timeout=15)
    dash_duo.wait_for_contains_text("#alerts-events", "BTCUSDT large trade", timeout=15)
    dash_duo.driver.execute_script("document.querySelector('#alerts-events .alert-event').click();")
    deadline = time.monotonic() + 10
    while not dash_duo.driver.current_url.endswith("/BTCUSDT") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dash_duo.driver.current_url.endswith("/BTCUSDT")
    assert dash_duo.get_logs() == []
