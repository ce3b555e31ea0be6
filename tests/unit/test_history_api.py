"""The history over the JSON API: ranged trade endpoints run the same analytics over stored
trades, /candles and /history, cached past ranges (in-process and on a real Redis), and
4xx JSON for bad ranges and symbols without history."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.history_api import ranged_profile
from app.server import create_app
from services.analytics.profile import volume_profile
from services.analytics.trades import trade_stats
from services.history.book_grid import implied_tick
from services.history.reader import HistoryReader
from services.redis_connection import sync_client
from services.store import MemoryStore
from tests.redis_cluster import RedisCluster
from tests.redis_server import RedisServer

BASE = "/api/assets/crypto"
START, END = "2021-04-04T20:03:30Z", "1617566670000"
START_MS, END_MS = 1617566610000, 1617566670000
INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")


@pytest.fixture(scope="module")
def root(history_2021):
    return history_2021


@pytest.fixture
def client(root, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    return create_app(MemoryStore(), history_dir=root).server.test_client()


def test_ranged_trade_stats_are_the_analytics_over_the_stored_range(client, root):
    body = client.get(f"{BASE}/btcusdt/trade-stats?start={START}&end={END}").get_json()
    view = HistoryReader(root).trades("spot", "BTCUSDT", START_MS, END_MS)
    expected = trade_stats(view, now_ms=END_MS)
    assert body["source"] == "history" and body["market"] == "spot"
    assert body["count"] == len(view) == expected.count > 100
    assert body["stats"]["volume"] == pytest.approx(expected.volume)
    assert body["stats"]["vwap"] == pytest.approx(expected.vwap)
    assert START_MS <= body["stats"]["first_time_ms"] <= body["stats"]["last_time_ms"] <= END_MS


def test_ranged_endpoints_answer(client, root):
    trades = client.get(f"{BASE}/ETHUSDT/trades?start={START}&end={END}&limit=5").get_json()
    assert len(trades["trades"]) == 5
    times = [t["time_ms"] for t in trades["trades"]]
    assert times == sorted(times, reverse=True) and times[0] <= END_MS
    flow = client.get(f"{BASE}/ETHUSDT/trade-flow?start={START}&end={END}").get_json()["flow"]
    assert flow["count"] == trades["count"]
    profile = client.get(f"{BASE}/ETHUSDT/volume-profile?start={START}&end={END}&bins=50")
    rows = profile.get_json()["profile"]
    assert len(rows["volume"]) <= 51
    assert sum(rows["volume"]) == pytest.approx(flow["buy_volume"] + flow["sell_volume"])
    large = client.get(f"{BASE}/BTCUSDT/large-trades?start={START}&threshold=50000")
    assert large.status_code == 200
    assert all(t["quote_qty"] >= 50000 for t in large.get_json()["trades"])
    relative = client.get(f"{BASE}/BTCUSDT/large-trades?start={START}&end={END}&multiple=4")
    body = relative.get_json()
    stored = HistoryReader(root).trades("spot", "BTCUSDT", START_MS, END_MS)
    assert body["mean_qty"] == pytest.approx(float(stored.qty.mean()))
    expected = stored.trade_id[stored.qty >= 4 * stored.qty.mean()][::-1].tolist()
    assert [t["trade_id"] for t in body["trades"]] == expected != []
    bad = client.get(f"{BASE}/BTCUSDT/large-trades?start={START}&multiple=-1")
    assert bad.status_code == 400 and "multiple" in bad.get_json()["error"]


def test_candles_and_history(client):
    body = client.get(f"{BASE}/BTCUSDT/candles?interval=1m").get_json()
    assert [c["open_ms"] % 60_000 for c in body["candles"]] == [0, 0]
    assert sum(c["trades"] for c in body["candles"]) == 1227
    for bar in body["candles"]:
        assert bar["delta"] == pytest.approx(bar["buy_volume"] - bar["sell_volume"])
    assert len(client.get(f"{BASE}/BTCUSDT/candles?interval=1h").get_json()["candles"]) == 1
    coverage = client.get(f"{BASE}/DOTUSDT/history").get_json()["coverage"][0]
    assert coverage["trades"] == 177 and coverage["gaps"] == []
    every = client.get("/api/history").get_json()
    assert {s["symbol"] for s in every["symbols"]} == {"BTCUSDT", "ETHUSDT", "DOTUSDT"}


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        (f"BTCUSDT/trade-stats?start={END}&end={START}", 400, "end is before start"),
        ("BTCUSDT/trades?start=2021-01-01&end=2021-06-01", 400, "more than the limit"),
        ("BTCUSDT/trades?start=yesterday", 400, "ISO 8601"),
        ("XRPUSDT/trade-flow?start=2021-04-04", 404, "no history for XRPUSDT"),
        ("XRPUSDT/candles", 404, "no history for XRPUSDT"),
        ("BTCUSDT/candles?interval=2m", 400, "interval must be one of"),
        ("BTCUSDT/volume-profile?start=2021-04-04&bins=0", 400, "bins must be between"),
    ],
)
def test_bad_ranges_get_a_4xx_json_naming_the_problem(client, query, status, words):
    response = client.get(f"{BASE}/{query}")
    assert response.status_code == status
    assert words in response.get_json()["error"]


def test_past_ranges_are_cached(root, tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    copy = tmp_path / "h"
    shutil.copytree(root, copy)
    client = create_app(MemoryStore(), history_dir=copy).server.test_client()
    url = f"{BASE}/BTCUSDT/trade-stats?start={START}&end={END}"
    first = client.get(url).get_json()
    shutil.rmtree(copy / "spot" / "BTCUSDT")  # the files are gone; the past is cached
    assert client.get(url).get_json() == first
    assert client.get(f"{BASE}/BTCUSDT/trade-stats?start={START}").status_code == 404


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis", "cluster"])
def test_past_ranges_are_cached_in_redis_for_every_web_worker(root, tmp_path, monkeypatch, kind):
    """On one redis-server, and on a real 6-node Redis Cluster (where a plain Redis client
    was refused with MOVED for the keys of the other masters' slots)."""
    with RedisServer() if kind == "redis" else RedisCluster() as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        copy = tmp_path / "h"
        shutil.copytree(root, copy)
        urls = [f"{BASE}/ETHUSDT/candles?interval={i}&start={START}&end={END}" for i in INTERVALS]
        worker = create_app(MemoryStore(), history_dir=copy).server.test_client()
        first = [worker.get(url) for url in urls]
        assert all(answer.status_code == 200 for answer in first)
        client = sync_client(server.url)
        every_master = {"target_nodes": "primaries"} if kind == "cluster" else {}
        keys = client.keys("tapescope:history:*", **every_master)
        assert len(keys) == len(urls)
        shutil.rmtree(copy / "spot" / "ETHUSDT")
        other_worker = create_app(MemoryStore(), history_dir=copy).server.test_client()
        assert [other_worker.get(url).get_json() for url in urls] == [
            answer.get_json() for answer in first
        ]


@pytest.mark.redis
def test_past_ranges_are_answered_when_the_cache_cannot_be_reached(root, monkeypatch):
    """A cache whose Redis is down costs the request a bounded wait, never its answer."""
    with RedisServer() as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        app = create_app(MemoryStore(), history_dir=root)
        server.stop()
        url = f"{BASE}/BTCUSDT/trade-stats?start={START}&end={END}"
        answer = app.server.test_client().get(url)
        assert answer.status_code == 200 and answer.get_json()["count"] > 100


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "DOTUSDT"])
@pytest.mark.parametrize("bins", [7, 50])
def test_ranged_profile_from_price_sums_equals_the_profile_of_the_trades(root, symbol, bins):
    """The stored range's profile is computed from per-price sums (never loading the
    trades); row for row it is the analytics' profile of the trades themselves."""
    reader = HistoryReader(root)
    for start, end in ((None, None), (START_MS, END_MS)):
        view = reader.trades("spot", symbol, start, end)
        tick = implied_tick(np.unique(view.price)) or 0.01
        want = volume_profile(view, tick_size=tick, rows=bins, count_trades=True)
        levels = reader.price_levels("spot", symbol, start, end)
        got = ranged_profile(levels, tick, bins)["profile"]
        assert levels.trades == len(view)
        assert got["price"].tolist() == want.price.tolist() and got["bucket"] == want.bucket
        assert got["trades"].tolist() == want.trades.tolist()
        for key in ("volume", "buy_volume", "sell_volume", "delta"):
            assert got[key] == pytest.approx(getattr(want, key), rel=1e-9, abs=1e-12)
        for key in ("poc_index", "va_low_index", "va_high_index"):
            assert got[key] == getattr(want, key)
