"""The flow panel's seed for the pushed page (``app.callbacks.flow_push``), on the recorded
feed: the seed holds exactly the window's trades and the CVD the figure ends on, a page that
is live and seeded lets the server skip its ticks except re-seed ticks."""

from __future__ import annotations

import numpy as np
from dash import no_update

from app.callbacks.derived import DerivedCache
from app.callbacks.flow import render_flow
from app.callbacks.flow_push import RESEED_TICKS, skip_render
from services.analytics.flow import trade_flow
from services.analytics.window import WINDOWS_MS
from services.store import MemoryStore
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed

LIVE = {"state": "live"}


def test_the_seed_holds_the_window_and_the_cvd_the_figure_shows() -> None:
    feed = RecordedFeed(MemoryStore(), SPOT_2021, messages_per_step=200)
    for _ in range(10):
        feed.step()
    store, cache = feed.store, DerivedCache()
    figure, state = render_flow(store, cache, "BTCUSDT", "1m", None, "2k", None, seed=True)
    seed = state["seed"]
    snapshot = store.snapshot("BTCUSDT")
    trades = snapshot.trades
    assert state["seeded"] and seed["last_id"] == int(trades.trade_id[-1])
    assert (seed["key"], seed["seq"]) == (state["key"], snapshot.seq)
    expected = trade_flow(trades, window_ms=WINDOWS_MS["1m"])
    q = np.array(seed["trades"]["q"])
    assert len(q) == expected.count
    assert np.isclose(q[q > 0].sum(), expected.buy_quote)
    assert np.isclose(-q[q < 0].sum(), expected.sell_quote)
    v = np.array(seed["trades"]["v"])
    assert np.isclose(v[v > 0].sum(), expected.buy_volume)
    assert seed["band"] == [2000.0, None]
    assert round(seed["cvd"], 2) == figure["data"][2]["y"][-1]  # the CVD line ends there
    # Unchanged and already seeded: nothing to send; not seeded yet: a seed.
    kept = {k: v for k, v in state.items() if k != "seed"}  # what the page holds
    assert render_flow(store, cache, "BTCUSDT", "1m", kept, "2k", None, seed=True)[0] is no_update
    plain = {k: v for k, v in state.items() if k not in ("seed", "seeded")}
    assert "seed" in render_flow(store, cache, "BTCUSDT", "1m", plain, "2k", None, seed=True)[1]


def test_the_server_skips_only_ticks_of_a_live_seeded_page_between_reseeds() -> None:
    seeded = {"key": "k", "seq": 1, "seeded": True}
    assert skip_render(LIVE, True, 7, seeded)
    assert not skip_render(LIVE, True, RESEED_TICKS * 3, seeded)  # re-seed tick
    assert not skip_render(LIVE, False, 7, seeded)  # symbol, window, filter, push state
    assert not skip_render({"state": "down"}, True, 7, seeded)  # polling again
    assert not skip_render(LIVE, True, 7, {"key": "k", "seq": 1})  # not seeded yet
    assert not skip_render(None, True, 7, seeded)
