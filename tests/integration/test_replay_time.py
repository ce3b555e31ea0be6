"""Replay time over real sockets: the exchange plays the recording at its own time, loop
passes move whole days with klines aligned, and the dashboard feed measures lag against the
replay clock at any speed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import aiohttp
import orjson
import pytest
import websockets

from app import market_source
from app.callbacks.derived import DerivedCache
from app.callbacks.export import render_export
from app.config import Settings
from app.server import create_app
from services.market.feed import Feed
from services.replay.exchange import LocalExchange
from services.replay.player import DAY_MS
from services.store import MemoryStore

pytestmark = pytest.mark.timeout(90)

RECORDED_FROM, RECORDED_TO = 1_617_566_580_000, 1_617_566_700_000  # 2021-04-04 20:03-20:05 UTC


async def test_loop_passes_move_whole_days_with_klines_aligned(recordings):
    streams = "btcusdt@kline_1m/btcusdt@kline_5m/btcusdt@aggTrade"
    klines: list[dict] = []
    trades: list[dict] = []
    async with LocalExchange(recordings["spot_2021"], speed=60, loop=True) as ex:
        async with websockets.connect(f"{ex.ws_url}/stream?streams={streams}", max_size=None) as ws:
            while not trades or trades[-1]["T"] < RECORDED_FROM + DAY_MS:
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                data = frame["data"]
                (trades if data["e"] == "aggTrade" else klines).append(data)
        async with aiohttp.ClientSession() as http:
            url = f"{ex.rest_url}/api/v3/klines?symbol=BTCUSDT&interval=1m"
            async with http.get(url) as response:
                rest_rows = await response.json()
    first_pass = [t["T"] for t in trades if t["T"] < RECORDED_FROM + DAY_MS]
    assert min(first_pass) >= RECORDED_FROM and max(first_pass) <= RECORDED_TO
    second_pass = [t["T"] - DAY_MS for t in trades if t["T"] >= RECORDED_FROM + DAY_MS]
    assert RECORDED_FROM <= min(second_pass) <= RECORDED_TO
    assert all(b["a"] == a["a"] + 1 and b["T"] >= a["T"] for a, b in itertools.pairwise(trades))
    for bar in klines:
        size = {"1m": 60_000, "5m": 300_000}[bar["k"]["i"]]
        assert bar["k"]["t"] % size == 0 and bar["k"]["T"] == bar["k"]["t"] + size - 1
    assert {bar["k"]["i"] for bar in klines} == {"1m", "5m"}
    assert rest_rows and all(row[0] % 60_000 == 0 for row in rest_rows)


async def test_replay_clock_runs_at_the_replay_speed(recordings):
    async with (
        LocalExchange(recordings["spot_2021"], speed=4) as ex,
        aiohttp.ClientSession() as http,
    ):

        async def server_time() -> int:
            async with http.get(f"{ex.rest_url}/api/v3/time") as response:
                return (await response.json())["serverTime"]

        wall, first = time.monotonic(), await server_time()
        await asyncio.sleep(1.0)
        second, elapsed = await server_time(), time.monotonic() - wall
    assert RECORDED_FROM <= first < second <= RECORDED_TO
    assert 3.0 * elapsed * 1000 <= second - first <= 4.5 * elapsed * 1000


async def test_replay_clock_is_never_behind_the_events_it_played(recordings):
    """The 2024 recorder's clock ran ~1.27 s behind Binance's: replayed on its receive times
    alone, /api/v3/time answered before the trades it had just sent (a negative lag)."""
    async with (
        LocalExchange(recordings["spot_2024"], speed=1) as ex,
        aiohttp.ClientSession() as http,
        websockets.connect(f"{ex.ws_url}/ws/btcusdt@trade", max_size=None) as ws,
    ):
        for _ in range(3):
            seen = [orjson.loads(await asyncio.wait_for(ws.recv(), 10))["E"] for _ in range(20)]
            async with http.get(f"{ex.rest_url}/api/v3/time") as response:
                server_time = (await response.json())["serverTime"]
            assert max(seen) <= server_time < max(seen) + 5_000


def test_dashboard_feed_shows_recorded_times_and_lag_against_the_replay_clock(recordings):
    settings = Settings(
        source="replay", recording=recordings["spot_2021"], speed="4", loop=False, history=False
    )
    source = market_source.start_replay(settings)
    store = MemoryStore()
    feed = Feed(market_source.feed_config(settings, source), store)
    try:
        feed.start_in_thread()
        deadline = time.monotonic() + 30
        status, snapshot = None, None
        while time.monotonic() < deadline:
            status, snapshot = store.status(), store.snapshot("BTCUSDT")
            if (
                status
                and status.event_lag_ms is not None
                and snapshot
                and len(snapshot.trades.time_ms)
            ):
                break
            time.sleep(0.1)
        assert status is not None and snapshot is not None
        assert status.source == "REPLAY" and status.recording_date == "2021-04-04T20:03:11Z"
        times = snapshot.trades.time_ms
        assert int(times.min()) >= RECORDED_FROM and int(times.max()) <= RECORDED_TO
        # at 4x the wall-clock lag would be minus minutes; against the replay clock it is
        # the recorded network latency plus the local delay (times four)
        assert 0 <= status.event_lag_ms < 3000
        # the JSON API and the CSV export carry the same original times
        api = create_app(store).server.test_client()
        body = api.get("/api/assets/crypto/BTCUSDT/trades?limit=50").get_json()
        assert RECORDED_FROM <= body["market_time_ms"] <= RECORDED_TO
        csv = render_export(store, DerivedCache(), "BTCUSDT", "0.001")
        assert csv is not None
        stamps = [line.split(",")[0] for line in csv["content"].splitlines()[1:]]
        assert stamps and all(s.startswith("2021-04-04T20:0") for s in stamps)
    finally:
        with contextlib.suppress(Exception):
            feed.stop()
        source.close()
