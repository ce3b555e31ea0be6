"""The page driven by the push streams, in headless Chromium: the tape is painted from the
trades stream (``#pushed-tape``), the badge shows pushed prices; when the streams go away the
page says so and polls (``#trade-tape`` updates again), and it returns to push when they are
back; the flow panel follows the trades stream; the status bar comes from the status stream
and the depth chart from the book stream."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from dash.testing.wait import until

from app import market_source
from app.config import Settings
from app.server import create_app
from components.flow_meter import DIRECTION_LABELS
from services.analytics.flow import cvd, trade_flow
from services.analytics.window import WINDOWS_MS
from services.market.feed import Feed
from services.push.messages import slice_view
from services.push.service import PushService
from services.store import MemoryStore
from tests.conftest import SPOT_2021
from tests.redis_server import free_port

pytestmark = pytest.mark.browser

LIVE = "return document.body.classList.contains('push-live');"
FIRST_ROW = (
    "const row = document.querySelector('{} .tape-row');"
    "return row && row.offsetParent !== null ? row.textContent : null;"
)
PUSHED, POLLED = FIRST_ROW.format("#pushed-tape"), FIRST_ROW.format("#trade-tape")


@pytest.fixture(scope="module")
def pushed_replay() -> Iterator[tuple[MemoryStore, PushService]]:
    settings = Settings(
        source="replay", recording=SPOT_2021, speed="2", loop=True, symbols=("BTCUSDT",),
        publish_interval_s=0.2, history=False,
    )  # fmt: skip
    source = market_source.resolve(settings)
    store = MemoryStore()
    push = PushService.embedded(store)
    feed = Feed(market_source.feed_config(settings, source), store, taps=[push.tap])
    feed.start_in_thread()
    deadline = time.monotonic() + 30
    while not ((s := store.snapshot("BTCUSDT")) and s.book.is_live and len(s.trades)):
        assert time.monotonic() < deadline, "the feed did not sync BTCUSDT"
        time.sleep(0.1)
    yield store, push
    feed.stop()
    source.close()


def test_tape_is_pushed_and_falls_back_to_polling_while_the_streams_are_away(
    dash_duo, pushed_replay
):
    store, push = pushed_replay
    dash_duo.driver.set_window_size(1400, 1000)  # every panel on screen
    dash_duo.start_server(create_app(store, push=push), port=free_port())
    run = dash_duo.driver.execute_script
    try:
        until(lambda: run(LIVE) and run(PUSHED), timeout=15)
        dash_duo.wait_for_contains_text("#push-badge", "bid", timeout=10)
        first = run(PUSHED)
        until(lambda: run(PUSHED) not in (None, first), timeout=10)  # new trades painted
        assert run(POLLED) is None  # the polled tape is hidden
        _flow_follows_the_stream(run, store)
        _status_and_depth_follow_their_streams(run)
        _depth_waits_off_screen(dash_duo, run)
        _intervals_stretch_under_load(run)
        push.pause("restart")
        dash_duo.wait_for_contains_text("#push-badge", "polling", timeout=10)
        until(lambda: not run(LIVE) and run(POLLED), timeout=10)
        until(lambda: run(STATUS.format("#status-bar")), timeout=10)  # polled bar back
        assert run(STATUS.format("#pushed-status")) is None
        polled = run(POLLED)
        until(lambda: run(POLLED) not in (None, polled), timeout=10)  # polling updates it
        push.resume()
        until(lambda: run(LIVE) and run(PUSHED), timeout=15)
        assert "live" in dash_duo.find_element("#push-badge").get_attribute("class")
        # Only the refused handshakes of the pause may be logged as errors.
        errors = [
            e for e in dash_duo.get_logs() if "Unexpected response code: 503" not in e["message"]
        ]
        assert errors == []
    finally:
        push.pause("test over")  # close the page's sockets before the server stops
        dash_duo.driver.get("about:blank")
        push.resume()


STATUS = (
    "const bar = document.querySelector('{}');"
    "return bar && bar.offsetParent !== null && bar.textContent ? bar.textContent : null;"
)
DEPTH_READ = """
const gd = document.querySelector('#depth-chart .js-plotly-plot');
if (!gd || !gd.data) { return null; }
const trace = (name) => gd.data.find((t) => t.name === name);
const bids = trace('bids'), asks = trace('asks');
if (!bids || !asks || !gd.layout.shapes || !gd.layout.shapes.length) { return null; }
return {bid: bids.x[0], ask: asks.x[0], mid: gd.layout.shapes[0].x0,
        note: gd.layout.annotations[0].text, range: gd.layout.xaxis.range,
        deepest_bid: bids.x[bids.x.length - 1], deepest_ask: asks.x[asks.x.length - 1]};
"""


def _status_and_depth_follow_their_streams(run) -> None:
    """While pushed, the status bar shown is the pushed one and refreshes itself (its
    ``updated`` badge comes from the server each second), the polled one is hidden; the
    depth chart's traces move with the book stream between the server's redraws, never
    crossed, its mid line and spread note drawn from the same book."""
    until(lambda: run(STATUS.format("#pushed-status")), timeout=10)
    assert run(STATUS.format("#status-bar")) is None
    bar = run(STATUS.format("#pushed-status"))
    assert "REPLAY" in bar and "LIVE" in bar
    until(lambda: run(STATUS.format("#pushed-status")) not in (None, bar), timeout=5)
    seen = set()
    deadline = time.monotonic() + 12
    while len(seen) < 2 and time.monotonic() < deadline:
        depth = run(DEPTH_READ)
        if depth is not None:
            assert depth["bid"] < depth["ask"]
            assert depth["mid"] == pytest.approx((depth["bid"] + depth["ask"]) / 2)
            # the book stream holds the chart's band: the curves reach both edges of the view
            # (the recorded book is deeper than ±0.5 %; 200 levels a side stopped at 0.12 %)
            assert (
                depth["deepest_bid"]
                <= depth["range"][0]
                < depth["range"][1]
                <= depth["deepest_ask"]
            ), depth
            seen.add((depth["bid"], depth["ask"], depth["note"]))
        time.sleep(0.3)
    assert len(seen) >= 2, "the depth chart did not move with the book stream"


DEPTH_BOOK = "return document.getElementById('depth-chart').dataset.lastUpdateId || null;"
DEPTH_OFF_SCREEN = (
    "return document.getElementById('depth-chart').getBoundingClientRect().bottom < 0;"
)


def _depth_waits_off_screen(dash_duo, run) -> None:
    """A pushed chart scrolled off screen is not redrawn (the book it shows stays the same
    while the book stream goes on), and is redrawn with a newer book once it shows again."""
    until(lambda: run(DEPTH_BOOK), timeout=10)
    dash_duo.driver.set_window_size(1400, 300)
    run("window.scrollTo(0, document.body.scrollHeight);")
    until(lambda: run(DEPTH_OFF_SCREEN), timeout=5)
    time.sleep(0.5)  # a redraw already waiting for its idle slot
    hidden = run(DEPTH_BOOK)
    time.sleep(5)  # at least two of the depth chart's 2 s gaps, the book moving meanwhile
    assert run(DEPTH_BOOK) == hidden, "the depth chart was redrawn off screen"
    dash_duo.driver.set_window_size(1400, 1000)
    run("window.scrollTo(0, 0);")
    until(lambda: run(DEPTH_BOOK) != hidden, timeout=10)


POLLING_FOR = "return window.dash_clientside.tapescope.pollingFor(arguments[0]);"


def _intervals_stretch_under_load(run) -> None:
    """The intervals the push state asks for: pushed ones (× the load-shedding stretch)
    while live, the normal ones otherwise whatever the stretch."""
    state = {
        "refresh_ms": 500, "slow_refresh_ms": 2000, "pushed_refresh_ms": 3000,
        "pushed_slow_refresh_ms": 4000,
    }  # fmt: skip
    live = {**state, "state": "live"}
    assert run(POLLING_FOR, live) == [True, 3000, 4000, "push-badge live"]
    assert run(POLLING_FOR, {**live, "stretch": 2}) == [True, 6000, 8000, "push-badge live"]
    down = {**state, "state": "down", "stretch": 2}
    assert run(POLLING_FOR, down) == [False, 500, 2000, "push-badge down"]


FLOW_READ = """
const holder = document.getElementById('flow-meter');
const gd = holder && holder.querySelector('.js-plotly-plot');
if (!gd || !gd.data || !holder.dataset.lastTradeId) { return null; }
const trace = (name) => gd.data.find((t) => t.name === name);
const cvd = trace('CVD');
return {last_id: Number(holder.dataset.lastTradeId), buy_x: trace('buy').x[0],
        buy_text: trace('buy').text[0], sell_text: trace('sell').text[0],
        title: gd.layout.title.text, cvd_x: cvd.x[cvd.x.length - 1],
        cvd_axis: gd._fullLayout.xaxis2.type,
        cvd_y: cvd.y[cvd.y.length - 1], cvd_xs: Array.from(cvd.x).slice(-400),
        cvd_ys: Array.from(cvd.y).slice(-400)};
"""


def _volume(text: str) -> float:
    """The notional in a bar's text (``buy 12,345.67 USDT (55%)``)."""
    return float(text.split()[1].replace(",", ""))


def _flow_follows_the_stream(run, store) -> None:
    """While pushed, the flow panel is repainted from streamed trades (its newest trade id
    moves on between the server's seeds) and shows what the server computes from the same
    trades: window bars, direction, CVD."""
    until(lambda: run(FLOW_READ), timeout=15)
    first = run(FLOW_READ)
    until(lambda: (run(FLOW_READ) or first)["last_id"] > first["last_id"], timeout=10)
    shown = run(FLOW_READ)
    until(lambda: int(store.snapshot("BTCUSDT").trades.trade_id[-1]) >= shown["last_id"], 5)
    trades = store.snapshot("BTCUSDT").trades
    upto = int(np.searchsorted(trades.trade_id, shown["last_id"], "right"))
    view = slice_view(trades, 0, upto)
    expected = trade_flow(view, window_ms=WINDOWS_MS["1m"])
    assert _volume(shown["buy_text"]) == pytest.approx(expected.buy_quote, abs=0.011)
    assert _volume(shown["sell_text"]) == pytest.approx(expected.sell_quote, abs=0.011)
    total = expected.buy_quote + expected.sell_quote
    assert shown["buy_x"] == pytest.approx(100 * expected.buy_quote / total, rel=1e-9)
    assert shown["title"] == f"1m: {DIRECTION_LABELS[expected.direction]}"
    line = cvd(view, unit="quote", max_points=0)
    assert shown["cvd_x"] == int(view.time_ms[-1])
    assert shown["cvd_axis"] == "date"  # epoch ms drawn as times, not as 1.6T
    assert shown["cvd_y"] == pytest.approx(line.final, abs=0.011)
    # every streamed trade since the first reading is a point of the line, as in the
    # server's (undownsampled) series: not one point per redraw
    since = int(np.searchsorted(trades.trade_id, first["last_id"], "right"))
    pushed = upto - since
    assert 0 < pushed <= 400
    assert shown["cvd_xs"][-pushed:] == view.time_ms[since:upto].tolist()
    assert shown["cvd_ys"][-pushed:] == pytest.approx(line.cvd[since:upto].tolist(), abs=0.011)
