"""Spot against perpetual CVD: the pair's common anchor and both lines against a plain loop
(hand-made and hypothesis), the flow chart's two lines, the twin's request bookkeeping, and
``/cvd/spot-perp`` over a spot store and a twin store (both filled from recordings)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.callbacks.derived import DerivedCache
from app.callbacks.flow import render_flow
from app.server import create_app
from components.flow_meter import create_flow_figure
from services.analytics.spot_perp import common_anchor, spot_perp_cvd
from services.market.perp_twin import PerpTwin
from services.market.views import TradeView
from services.store import MemoryStore
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed

URL = "/api/assets/crypto/{}/cvd/spot-perp"


def trades(rows: list[tuple[int, float, float, int]], symbol: str = "BTCUSDT") -> TradeView:
    """A trade view from (time ms, price, qty, side) rows."""
    cols = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return TradeView(
        symbol, np.arange(len(rows), dtype=np.int64), np.array(cols[0], dtype=np.int64),
        np.array(cols[1], dtype=np.float64), np.array(cols[2], dtype=np.float64),
        np.array(cols[3], dtype=np.float64), kind="aggTrade",
    )  # fmt: skip


def plain_cvd(rows, anchor: int, unit: str) -> list[float]:
    out, total = [], 0.0
    for t, p, q, s in rows:
        if t >= anchor:
            total += s * q * (p if unit == "quote" else 1.0)
            out.append(total)
    return out


def test_both_lines_start_at_the_later_first_trade():
    spot = [(1_000, 100.0, 1.0, 1), (1_400, 101.0, 2.0, -1), (2_000, 102.0, 3.0, 1)]
    perp = [(1_500, 100.5, 4.0, 1), (1_900, 101.5, 1.0, -1), (2_100, 100.0, 2.0, -1)]
    pair = spot_perp_cvd(trades(spot), trades(perp), unit="quote")
    assert pair.anchor_ms == 1_500
    assert pair.spot.time_ms.tolist() == [2_000] and pair.spot.cvd.tolist() == [306.0]
    assert pair.perp.cvd.tolist() == pytest.approx([402.0, 300.5, 100.5])
    assert pair.gap == pytest.approx(100.5 - 306.0)
    later = spot_perp_cvd(trades(spot), trades(perp), anchor_ms=1_950, unit="base")
    assert later.anchor_ms == 1_950 and later.spot.final == 3.0 and later.perp.final == -2.0
    assert spot_perp_cvd(trades(spot), trades([])) is None
    assert common_anchor(trades([]), trades(perp)) is None


rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 10_000), st.floats(1.0, 1e5), st.floats(1e-4, 50.0), st.sampled_from([-1, 1])
    ),
    max_size=300,
).map(lambda rows: sorted(rows, key=lambda r: r[0]))


@settings(max_examples=60, deadline=None)
@given(rows_strategy, rows_strategy, st.sampled_from(["base", "quote"]), st.integers(2, 50))
def test_each_line_is_its_markets_cvd_from_the_common_anchor(spot, perp, unit, points):
    pair = spot_perp_cvd(trades(spot), trades(perp), max_points=points, unit=unit)
    if not spot or not perp:
        assert pair is None
        return
    anchor = max(spot[0][0], perp[0][0])
    assert pair.anchor_ms == anchor
    for line, rows in ((pair.spot, spot), (pair.perp, perp)):
        expected = plain_cvd(rows, anchor, unit)
        assert line.points_total == len(expected)
        assert line.final == pytest.approx(expected[-1] if expected else 0.0, rel=1e-9, abs=1e-6)
        assert line.cvd.shape[0] <= points and (line.time_ms >= anchor).all()
    assert pair.gap == pytest.approx(pair.perp.final - pair.spot.final)


def test_flow_figure_draws_spot_and_perp_lines():
    one = create_flow_figure(
        buy_volume=1.0, sell_volume=1.0, window_label="1m", direction="neutral",
        cvd_time_ms=[1, 2], cvd_values=[1.0, 2.0], uirevision="k",
    )  # fmt: skip
    assert [t["name"] for t in one["data"] if t["type"] == "scatter"] == ["CVD"]
    two = create_flow_figure(
        buy_volume=1.0, sell_volume=1.0, window_label="1m", direction="neutral",
        cvd_time_ms=[1, 2], cvd_values=[1.0, 2.0], uirevision="k", perp_cvd=([2, 3], [5.0, -1.0]),
    )  # fmt: skip
    lines = [t for t in two["data"] if t["type"] == "scatter"]
    assert [t["name"] for t in lines] == ["spot CVD", "perp CVD"]
    assert lines[1]["x"] == [2, 3] and lines[1]["y"] == [5.0, -1.0]
    assert two["layout"]["showlegend"] is True


class FakeFeed:
    def __init__(self) -> None:
        self.followed: list[set[str]] = []

    def follow_soon(self, symbols) -> bool:
        self.followed.append(set(symbols))
        return True


def test_twin_requests_follow_the_recently_asked_symbols():
    twin = PerpTwin(idle_s=10.0, max_symbols=2)
    twin.request("btcusdt", now=0.0)  # not started: nothing to follow yet
    assert twin.following() == frozenset()
    twin.feed = FakeFeed()  # type: ignore[assignment]
    twin.request("BTCUSDT", now=1.0)
    twin.request("BTCUSDT", now=2.0)  # unchanged set: no new follow
    twin.request("ETHUSDT", now=3.0)
    twin.request("DOTUSDT", now=4.0)  # at most two: the oldest asked is released
    twin.request("DOTUSDT", now=20.0)  # the others idle out
    assert twin.feed.followed == [
        {"BTCUSDT"}, {"BTCUSDT", "ETHUSDT"}, {"ETHUSDT", "DOTUSDT"}, {"DOTUSDT"},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def stores() -> tuple[MemoryStore, PerpTwin]:
    """A spot store and a twin store, both stepped through the 2021 recording; the twin's
    trades are the recording's moved 30 s later and mirrored (sides flipped) so the two
    lines differ and the anchor is the twin's first trade."""
    spot = MemoryStore()
    feed = RecordedFeed(spot, SPOT_2021, messages_per_step=200)
    for _ in range(20):
        feed.step()
    twin = PerpTwin()
    snapshot = spot.snapshot("BTCUSDT")
    t = snapshot.trades
    moved = TradeView(t.symbol, t.trade_id, t.time_ms + 30_000, t.price, t.qty, -t.side, t.kind)
    twin.store.publish(type(snapshot)(**{**_fields(snapshot), "trades": moved}))
    return spot, twin


def _fields(snapshot) -> dict:
    return {name: getattr(snapshot, name) for name in snapshot.__dataclass_fields__}


def test_flow_callback_and_api_draw_both_markets(stores):
    spot, twin = stores
    cache = DerivedCache()
    figure, state = render_flow(spot, cache, "BTCUSDT", "1m", None, None, None, twin)
    lines = {t["name"]: t for t in figure["data"] if t["type"] == "scatter"}
    pair = spot_perp_cvd(spot.snapshot("BTCUSDT").trades, twin.snapshot("BTCUSDT").trades,
                         max_points=len(lines["perp CVD"]["x"]) or 1, unit="quote")  # fmt: skip
    assert state["perp_seq"] == twin.snapshot("BTCUSDT").seq
    assert lines["perp CVD"]["x"][0] >= pair.anchor_ms
    assert lines["perp CVD"]["y"][-1] == pytest.approx(round(pair.perp.final, 2))
    assert lines["spot CVD"]["y"][-1] == pytest.approx(round(pair.spot.final, 2))
    alone, first = render_flow(spot, cache, "BTCUSDT", "1m", None, None, None, PerpTwin())
    assert [t["name"] for t in alone["data"] if t["type"] == "scatter"] == ["CVD"]
    patch, _ = render_flow(spot, cache, "BTCUSDT", "1m", first, None, None, twin)
    ops = {tuple(op["location"]): op["params"]["value"]
           for op in patch.to_plotly_json()["operations"]}  # fmt: skip
    assert ops[("layout", "showlegend")] is True, "the twin's line appears with its legend"
    assert [t["name"] for t in ops[("data",)] if t["type"] == "scatter"] == list(lines)
    client = create_app(spot, perp_twin=twin).server.test_client()
    body = client.get(URL.format("btcusdt") + "?unit=base&points=100").json
    base = spot_perp_cvd(spot.snapshot("BTCUSDT").trades, twin.snapshot("BTCUSDT").trades,
                         max_points=100, unit="base")  # fmt: skip
    assert body["anchor_ms"] == base.anchor_ms == int(twin.snapshot("BTCUSDT").trades.time_ms[0])
    assert body["spot"]["final"] == pytest.approx(base.spot.final)
    assert body["perp"]["final"] == pytest.approx(base.perp.final)
    assert body["perp"]["time_ms"] == base.perp.time_ms.tolist()
    assert body["gap"] == pytest.approx(base.gap) and body["unit"] == "base"
    filtered = client.get(URL.format("BTCUSDT") + "?min_notional=5000&unit=base").json
    assert filtered["filter"] == "≥ 5k"
    assert 0 < filtered["perp"]["trades"] < body["perp"]["trades"]
    none = client.get(URL.format("BTCUSDT") + "?min_notional=1e12").json
    assert none["anchor_ms"] is None and none["spot"] is None and none["filter"] == "≥ 1000B"
    for query, parameter in (("unit=lots", "unit"), ("points=1", "points"),
                             ("start=yesterday", "start")):  # fmt: skip
        response = client.get(URL.format("BTCUSDT") + "?" + query)
        assert response.status_code == 400 and response.json["parameter"] == parameter
    assert client.get(URL.format("ETHUSDT")).status_code == 503  # no perp trades yet
    twin.store.publish_symbols([twin.snapshot("BTCUSDT").info])  # USD-M's list: BTCUSDT only
    missing = client.get(URL.format("ETHUSDT"))
    assert missing.status_code == 404 and "no perpetual ETHUSDT" in missing.json["error"]
    assert client.get(URL.format("NOPE")).status_code == 404
    alone = create_app(spot).server.test_client().get(URL.format("BTCUSDT"))
    assert alone.status_code == 404 and "perp-twin" in alone.json["error"]
