"""Spot against perpetual offline, over real sockets: the bundled spot and USD-M BTCUSDT
recordings of 2024-08-08 replayed together by two local exchanges on one clock; the spot
feed fills the app's store, the twin's feed (started with nothing, asked for BTCUSDT by the
API) fills its own; ``/cvd/spot-perp`` then draws each market's CVD from their common
anchor, equal to a plain loop over each store's trades, and never mixes the two markets'
trades."""

from __future__ import annotations

import time

import pytest

from app import market_source
from app.config import Settings
from app.perp_twin_setup import start_perp_twin
from app.server import create_app
from services.binance.messages import AggTrade, Trade, decode_frame
from services.market.feed import Feed
from services.market.perp_twin import PerpTwin
from services.replay.recording import SPOT_2024, USDM_2024, read_recording
from services.store import MemoryStore

URL = "/api/assets/crypto/BTCUSDT/cvd/spot-perp?unit=base&points=5000"


def recorded_trades(path) -> set[tuple[int, float]]:
    """(time ms, price) of every trade in a recording."""
    out = set()
    for message in read_recording(path):
        if message.src != "rest":
            event = decode_frame(message.raw).event
            if isinstance(event, Trade | AggTrade):
                out.add((event.T, event.p))
    return out


def plain_final(view, anchor: int) -> tuple[float, int]:
    total, count = 0.0, 0
    for t, q, s in zip(view.time_ms.tolist(), view.qty.tolist(), view.side.tolist(), strict=True):
        if t >= anchor:
            total += s * q
            count += 1
    return total, count


def test_spot_and_usdm_recordings_replayed_together_give_two_cvd_lines():
    settings = Settings(
        source="replay", recording=SPOT_2024, perp_twin=True, perp_recording=USDM_2024,
        speed="4", loop=False, symbols=("BTCUSDT",), publish_interval_s=0.2, history=False,
    )  # fmt: skip
    source = market_source.resolve(settings)
    store = MemoryStore()
    feed = Feed(market_source.feed_config(settings, source), store)
    twin = PerpTwin()
    client = create_app(store, perp_twin=twin).server.test_client()
    feed.start_in_thread()
    twin_source = start_perp_twin(settings, source, twin)
    try:
        assert twin_source is not None and twin_source.endpoints.market == "usdm"
        lag_ms = source.exchange.clock_ms() - twin_source.exchange.clock_ms()
        assert abs(lag_ms) < 2_000, "both exchanges replay the same moments"
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            status = client.get(URL).status_code  # the request asks the twin for BTCUSDT
            spot, perp = store.snapshot("BTCUSDT"), twin.snapshot("BTCUSDT")
            if status == 200 and spot and perp and len(spot.trades) > 50 and len(perp.trades) > 50:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"no spot and perpetual trades within 60 s (last status {status})")
        assert twin.following() == frozenset({"BTCUSDT"})
    finally:
        feed.stop()
        twin.stop()
    body = client.get(URL).json
    spot, perp = store.snapshot("BTCUSDT").trades, twin.snapshot("BTCUSDT").trades
    for view, path in ((spot, SPOT_2024), (perp, USDM_2024)):  # markets never mix
        pairs = set(zip(view.time_ms.tolist(), view.price.tolist(), strict=True))
        assert pairs <= recorded_trades(path)
    anchor = max(int(spot.time_ms[0]), int(perp.time_ms[0]))
    assert body["anchor_ms"] == anchor
    for market, view in (("spot", spot), ("perp", perp)):
        final, count = plain_final(view, anchor)
        assert body[market]["final"] == pytest.approx(final, abs=1e-6)
        assert body[market]["trades"] == count > 0
        assert min(body[market]["time_ms"]) >= anchor
    assert body["gap"] == pytest.approx(body["perp"]["final"] - body["spot"]["final"])
    source.close()
    twin_source.close()
