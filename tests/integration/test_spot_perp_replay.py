"""Spot against perpetual offline, over real sockets: the bundled spot and USD-M BTCUSDT
recordings of 2024-08-08 replayed together by two local exchanges on one clock; the spot
feed fills the app's store, the twin's feed (started with nothing, asked for BTCUSDT by the
API) fills its own; ``/cvd/spot-perp`` then draws each market's CVD from their common
anchor, equal to a plain loop over each store's trades, and never mixes the two markets'
trades."""

from __future__ import annotations

import time

import pytest

from app.server import create_app
from services.binance.messages import AggTrade, Trade, decode_frame
from services.replay.recording import SPOT_2024, USDM_2024, read_recording
from tests.spot_perp_market import spot_perp_market

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
    with spot_perp_market() as market:
        store, twin = market.store, market.twin
        client = create_app(store, perp_twin=twin).server.test_client()
        source, twin_source = market.source, market.twin_source
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
        market.stop_feeds()
        body = client.get(URL).json
        spot, perp = store.snapshot("BTCUSDT").trades, twin.snapshot("BTCUSDT").trades
        for view, path in ((spot, SPOT_2024), (perp, USDM_2024)):  # markets never mix
            pairs = set(zip(view.time_ms.tolist(), view.price.tolist(), strict=True))
            assert pairs <= recorded_trades(path)
        anchor = max(int(spot.time_ms[0]), int(perp.time_ms[0]))
        assert body["anchor_ms"] == anchor
        for name, view in (("spot", spot), ("perp", perp)):
            final, count = plain_final(view, anchor)
            assert body[name]["final"] == pytest.approx(final, abs=1e-6)
            assert body[name]["trades"] == count > 0
            assert min(body[name]["time_ms"]) >= anchor
        assert body["gap"] == pytest.approx(body["perp"]["final"] - body["spot"]["final"])
