"""Panel callbacks called directly: skip unchanged snapshots, Patch while the view stays,
notices for books that are not LIVE, one computation per (symbol, seq, params)."""

from __future__ import annotations

import dataclasses

import dash
import pytest
from dash import Patch

from app import ids
from app.callbacks.depth import render_depth
from app.callbacks.derived import DerivedCache
from app.callbacks.export import render_export
from app.callbacks.flow import render_flow
from app.callbacks.liquidity import render_liquidity
from app.callbacks.profile import render_profile
from app.callbacks.status import render_status
from app.callbacks.symbol import select_symbol
from app.callbacks.tape import render_tape
from services.market.views import SyncState
from services.store import MemoryStore
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed


@pytest.fixture
def feed() -> RecordedFeed:
    feed = RecordedFeed(MemoryStore(), SPOT_2021, messages_per_step=200)
    for _ in range(10):
        feed.step()
    return feed


def test_depth_full_then_patch_then_skip(feed):
    store, cache = feed.store, DerivedCache()
    figure, rendered = render_depth(store, cache, "BTCUSDT", 0.5, None)
    assert isinstance(figure, dict) and len(figure["data"]) == 2
    skipped, same = render_depth(store, cache, "BTCUSDT", 0.5, rendered)
    assert skipped is dash.no_update and same == rendered
    feed.step()
    patch, newer = render_depth(store, cache, "BTCUSDT", 0.5, rendered)
    assert isinstance(patch, Patch) and newer["seq"] == rendered["seq"] + 1
    assert newer["centre"] == rendered["centre"]
    operations = patch.to_plotly_json()["operations"]
    assert all(op["location"] != ["layout", "xaxis", "range"] for op in operations)
    feed.step()
    far = {**newer, "centre": newer["centre"] * 0.99}
    recentred, latest = render_depth(store, cache, "BTCUSDT", 0.5, far)
    operations = recentred.to_plotly_json()["operations"]
    assert any(op["location"] == ["layout", "xaxis", "range"] for op in operations)
    assert latest["centre"] != far["centre"]
    newer = latest
    full, _ = render_depth(store, cache, "BTCUSDT", 1.0, newer)
    assert isinstance(full, dict) and full["layout"]["uirevision"] == "BTCUSDT|1.0"


def test_book_not_live_shows_notices(feed):
    store, cache = feed.store, DerivedCache()
    snapshot = store.snapshot("ETHUSDT")
    book = dataclasses.replace(snapshot.book, sync_state=SyncState.RESYNCING)
    store.publish(dataclasses.replace(snapshot, book=book, seq=snapshot.seq + 1))
    figure, _ = render_depth(store, cache, "ETHUSDT", 0.5, None)
    assert figure["data"] == [] and "RESYNCING" in figure["layout"]["annotations"][0]["text"]
    panel, _ = render_liquidity(store, cache, "ETHUSDT", None)
    assert "RESYNCING" in panel.children


def test_other_panels_render_and_skip(feed):
    store, cache = feed.store, DerivedCache()
    tape, key = render_tape(store, cache, "BTCUSDT", "100k", None)
    assert len(tape.children) == 51
    assert render_tape(store, cache, "BTCUSDT", "100k", key)[0] is dash.no_update
    flow, state = render_flow(store, cache, "BTCUSDT", "5m", None)
    assert flow["layout"]["title"]["text"].startswith("5m:")
    assert render_flow(store, cache, "BTCUSDT", "5m", state)[0] is dash.no_update
    profile, _ = render_profile(store, cache, "DOTUSDT", 5, None)
    assert profile["data"][0]["type"] == "bar"
    waiting, _ = render_profile(store, cache, "BNBUSDT", "auto", None)
    assert "Waiting for data" in waiting["layout"]["annotations"][0]["text"]


def test_derived_results_are_computed_once_per_seq(feed):
    store, cache = feed.store, DerivedCache()
    render_depth(store, cache, "BTCUSDT", 0.5, None)
    misses = cache.misses
    render_depth(store, cache, "BTCUSDT", 0.5, {"key": "other"})
    assert cache.misses == misses and cache.hits > 0


def test_symbol_selection_and_status(feed):
    store = feed.store
    assert select_symbol(store, "/", None, None) == (dash.no_update, "BTCUSDT")
    assert select_symbol(store, "/ethusdt", "BTCUSDT", ids.URL) == (dash.no_update, "ETHUSDT")
    assert select_symbol(store, "/BTCUSDT", "DOTUSDT", ids.SYMBOL_DROPDOWN) == (
        "/DOTUSDT",
        dash.no_update,
    )
    assert select_symbol(store, "/NOPE", "BTCUSDT", ids.URL) == (dash.no_update, None)
    select_symbol(store, "/BNBUSDT", None, ids.URL)
    assert "BNBUSDT" in store.requested_symbols()
    snapshot = store.snapshot("BTCUSDT")
    _bar, message = render_status(store, "BTCUSDT", "/BTCUSDT", snapshot.published_at + 10)
    assert message is None
    items = [span.children[1] for span in _bar]
    assert "STALE" in items
    _bar, message = render_status(store, None, "/LUNAUSDT", snapshot.published_at)
    assert "Unknown symbol 'LUNAUSDT'" in str(message.children)


def test_export_payload(feed):
    payload = render_export(feed.store, DerivedCache(), "BTCUSDT", "1k")
    assert payload["filename"].startswith("large_trades_BTCUSDT_")
    lines = payload["content"].splitlines()
    assert lines[0].startswith("time_utc,symbol,trade_id")
    assert len(lines) > 1
    assert render_export(feed.store, DerivedCache(), "BNBUSDT", None) is None


def test_liquidity_score_from_shared_pieces_equals_the_analytics(feed):
    from app.callbacks import derived
    from services.analytics.liquidity import liquidity_score

    snapshot = feed.store.snapshot("BTCUSDT")
    combined = derived.liquidity_score(DerivedCache(), snapshot)
    assert combined == liquidity_score(snapshot.book)


def test_stale_snapshot_is_not_drawn_as_live(feed):
    store, cache = feed.store, DerivedCache()
    later = store.snapshot("BTCUSDT").published_at + 30
    figure, _ = render_depth(store, cache, "BTCUSDT", 0.5, None, now=later)
    assert figure["data"] == [] and "STALE" in figure["layout"]["annotations"][0]["text"]
    panel, _ = render_liquidity(store, cache, "BTCUSDT", None, now=later)
    assert "STALE" in panel.children


def test_dropdown_options_follow_the_exchange(feed):
    from app.callbacks.symbol import refresh_options
    from services.market.views import SymbolInfo

    store = feed.store
    options, key = refresh_options(store, None)
    assert [o["value"] for o in options] == ["BNBUSDT", "BTCUSDT", "DOTUSDT", "ETHUSDT"]
    assert refresh_options(store, key) == (dash.no_update, dash.no_update)
    store.publish_symbols([*store.symbols(), SymbolInfo("SOLUSDT")])
    options, new_key = refresh_options(store, key)
    assert new_key != key and "SOLUSDT" in [o["value"] for o in options]
