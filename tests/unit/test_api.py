"""JSON API over a store filled from the bundled 2021 three-symbol recording."""

from __future__ import annotations

import dataclasses
import time

import pytest

from app.server import create_app
from services.store import MemoryStore
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed

BASE = "/api/assets/crypto"


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    store = MemoryStore()
    feed = RecordedFeed(store, SPOT_2021, messages_per_step=200)
    for _ in range(30):
        feed.step()
    return store


@pytest.fixture(scope="module")
def client(store):
    return create_app(store).server.test_client()


def check_envelope(body: dict, symbol: str = "BTCUSDT") -> None:
    assert body["symbol"] == symbol
    assert body["sync_state"] == "LIVE"
    assert body["time"].endswith("Z") and body["published_at"].endswith("Z")
    assert body["seq"] >= 1


def test_orderbook(client, store):
    response = client.get(f"{BASE}/BTCUSDT/orderbook?levels=5")
    assert response.status_code == 200
    body = response.get_json()
    check_envelope(body)
    view = store.snapshot("BTCUSDT").book
    assert body["bids"] == [
        [p, q] for p, q in zip(view.bid_prices[:5], view.bid_qtys[:5], strict=True)
    ]
    assert len(body["asks"]) == 5
    assert body["bids"][0][0] < body["asks"][0][0]
    assert body["summary"]["best_bid"] == body["bids"][0][0]
    assert 57_000 < body["summary"]["mid"] < 59_000


def test_trades_newest_first(client, store):
    body = client.get(f"{BASE}/ethusdt/trades?limit=7").get_json()
    check_envelope(body, "ETHUSDT")
    trades = body["trades"]
    assert len(trades) == 7
    assert trades[0]["trade_id"] == int(store.snapshot("ETHUSDT").trades.trade_id[-1])
    assert [t["time_ms"] for t in trades] == sorted((t["time_ms"] for t in trades), reverse=True)
    assert {t["side"] for t in trades} <= {"buy", "sell"}


def test_trade_stats_and_flow_agree(client):
    stats = client.get(f"{BASE}/BTCUSDT/trade-stats?window=1h").get_json()
    flow = client.get(f"{BASE}/BTCUSDT/trade-flow?window=1h").get_json()
    check_envelope(stats)
    assert stats["window"] == "1h" and stats["stats"]["count"] > 100
    assert flow["flow"]["buy_volume"] == pytest.approx(stats["stats"]["buy_volume"])
    assert flow["flow"]["direction"] in ("strong_buy", "buy", "neutral", "sell", "strong_sell")


def test_large_trades_threshold(client):
    body = client.get(f"{BASE}/BTCUSDT/large-trades?threshold=5000").get_json()
    check_envelope(body)
    assert body["trades"]
    assert all(t["quote_qty"] >= 5000 for t in body["trades"])


def test_volume_profile_bins(client):
    body = client.get(f"{BASE}/BTCUSDT/volume-profile?bins=20").get_json()
    profile = body["profile"]
    assert len(profile["price"]) <= 21
    assert profile["val"] <= profile["point_of_control"] <= profile["vah"]
    assert len(profile["trades"]) == len(profile["price"]) and sum(profile["trades"]) > 0


def test_unknown_symbol_404_names_valid_symbols(client):
    response = client.get(f"{BASE}/BTCUSTD/trades")
    assert response.status_code == 404
    body = response.get_json()
    assert body["close_matches"][0] == "BTCUSDT"
    assert "ETHUSDT" in body["valid_symbols"] and "LUNAUSDT" not in body["valid_symbols"]


def test_symbol_without_data_is_requested(client, store):
    response = client.get(f"{BASE}/BNBUSDT/orderbook")
    assert response.status_code == 503
    assert "BNBUSDT" in store.requested_symbols()


@pytest.mark.parametrize(
    "query",
    [
        "orderbook?levels=5001",
        "orderbook?levels=0",
        "orderbook?levels=abc",
        "trades?limit=1001",
        "trade-stats?window=2m",
        "trade-flow?window=",
        "large-trades?threshold=-1",
        "large-trades?threshold=nan",
        "volume-profile?bins=501",
    ],
)
def test_bad_parameters_400(client, query):
    response = client.get(f"{BASE}/BTCUSDT/{query}")
    assert response.status_code == 400
    assert "error" in response.get_json()


def test_healthz(client, store):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["feed"]["source"] == "REPLAY"
    assert body["books"]["BTCUSDT"]["sync_state"] == "LIVE"


def test_healthz_503_without_a_publishing_feed(store):
    quiet = MemoryStore()
    assert create_app(quiet).server.test_client().get("/healthz").status_code == 503
    old = dataclasses.replace(store.status(), published_at=time.time() - 60)
    quiet.publish_status(old)
    response = create_app(quiet).server.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
