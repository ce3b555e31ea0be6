"""The Python API (``tapescope``) against the bundled replay: an in-process session gives
the same numbers as the JSON API of a server reading the same store, through the thin
client; the seed's meanings hold (flow over the last N trades, large = N × mean size)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import tomllib

import numpy as np
import pytest
from werkzeug.serving import make_server

import tapescope
from app.server import create_app
from services.history.reader import HistoryError, HistoryReader
from services.store import MemoryStore
from tapescope import Client, Session
from tapescope.session import NotStreaming
from tests.integration.test_multiprocess import ROOT
from tests.push_server import web_server
from tests.redis_server import free_port

FILE = "spot_BTCUSDT-ETHUSDT-DOTUSDT_20210404T2003Z_cryptofeed.jsonl.gz"


@pytest.mark.timeout(90)
async def test_session_and_client_give_the_json_api_numbers(manifest, recordings):
    facts = manifest[FILE]["symbols"]["BTCUSDT"]["aggTrade"]
    session = Session()
    symbols = await session.start(
        ["BTCUSDT", "ETHUSDT"], source="replay", recording=recordings["spot_2021"],
        speed="max", loop=False,
    )  # fmt: skip
    try:
        assert symbols == ["BTCUSDT", "ETHUSDT"]
        store = session.store
        # The recording played to its end: the state is frozen, so answers can be compared.
        for _ in range(200):
            snap = store.snapshot("BTCUSDT")
            if snap is not None and snap.trades.trade_id[-1] == facts["last_id"]:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        with web_server(store, session.push) as served:
            async with Client(served.http) as client:
                for method, args in (
                    ("order_book", {"levels": 10}),
                    ("trade_stats", {"window": "5m"}),
                    ("trade_flow", {"window": 100}),
                    ("trade_flow", {"window": "1m"}),
                    ("large_trades", {"threshold": 10.0}),
                    ("volume_profile", {"bins": 40}),
                ):
                    mine = await getattr(session, method)("BTCUSDT", **args)
                    theirs = await getattr(client, method)("BTCUSDT", **args)
                    # Same snapshot (seq); an unchanged one is republished as a heartbeat
                    # with a fresh published_at, so that one field may differ.
                    del mine["published_at"], theirs["published_at"]
                    assert mine == theirs, method
                assert (await session.health())["books"].keys() == (await client.health())[
                    "books"
                ].keys()
                streamed = [t["id"] async for t in _first(client.trades("ETHUSDT", 291477090), 50)]
                assert streamed == list(range(291477091, 291477141))
        flow = await session.trade_flow("BTCUSDT", window=100)
        trades = store.snapshot("BTCUSDT").trades
        last = trades.side[-100:] * trades.qty[-100:]
        assert flow["flow"]["count"] == 100
        assert flow["flow"]["delta"] == pytest.approx(float(last.sum()))
        large = await session.large_trades("BTCUSDT", threshold=10.0)
        mean = float(trades.qty.mean())
        assert large["threshold_qty"] == pytest.approx(10 * mean)
        expected = sorted(trades.trade_id[trades.qty >= 10 * mean].tolist(), reverse=True)
        assert [row["trade_id"] for row in large["trades"]] == expected
        book = await session.order_book("BTCUSDT", levels=10)
        assert len(book["bids"]) == 10 and book["bids"][0][0] < book["asks"][0][0]
        stats = await session.websocket_stats()
        assert stats["connections"] and stats["counters"]["tap_errors"] == 0
        first = facts["first_id"]
        got = [t["id"] async for t in _first(session.trades("BTCUSDT", first - 1), 20)]
        assert got == list(range(first, first + 20))
        assert stats["connections"][0]["messages"] > 0
    finally:
        await session.stop()
    with pytest.raises(tapescope.NotStreaming):
        await session.order_book("BTCUSDT")


async def _first(stream, n: int):
    count = 0
    async for item in stream:
        yield item
        count += 1
        if count == n:
            await stream.aclose()
            return


def test_the_distribution_has_one_top_level_package_and_finds_its_repository(tmp_path):
    """pyproject packages ``tapescope`` alone; a ``tapescope`` reached from elsewhere (as an
    editable install maps it) makes the project importable by itself, and only then."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"] == ["tapescope"]
    (tmp_path / "tapescope").symlink_to(ROOT / "tapescope")
    code = (
        "import importlib.util as u; assert u.find_spec('services') is None; "
        "import tapescope, services.market.feed as f; print(f.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(ROOT))


@pytest.mark.timeout(60)
async def test_stored_ranges_give_the_json_api_numbers(history_2021, manifest):
    """Trade stats, flow and the volume profile over a stored range (real Parquet from the
    history writer): the in-process session and the client of a running Tapescope with the
    same history answer the same, which is the JSON API's range answer."""
    facts = manifest[FILE]["symbols"]["BTCUSDT"]["aggTrade"]
    start, end = facts["T_first"] + 10_000, facts["T_first"] + 40_000
    store = MemoryStore()
    dash_app = create_app(store, history_dir=history_2021)
    port = free_port()
    server = make_server("127.0.0.1", port, dash_app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    session = Session(history_dir=history_2021)
    try:
        async with Client(f"http://127.0.0.1:{port}") as client:
            asked = (("volume_profile", {"bins": 40}), ("trade_stats", {}), ("trade_flow", {}))
            for method, args in asked:
                mine = await getattr(session, method)("btcusdt", start=start, end=end, **args)
                theirs = await getattr(client, method)("BTCUSDT", start=start, end=end, **args)
                assert mine == theirs
                assert mine["source"] == "history" and mine["count"] > 0
                assert (mine["start_ms"], mine["end_ms"]) == (start, end)
            large = await session.large_trades("BTCUSDT", threshold=3.0, start=start, end=end)
            assert large == await client.large_trades("BTCUSDT", 3.0, start=start, end=end)
            stored = HistoryReader(history_2021).trades("spot", "BTCUSDT", start, end)
            mean = float(np.mean(stored.qty))
            big = np.flatnonzero(stored.qty >= 3.0 * mean)[::-1]
            assert large["mean_qty"] == pytest.approx(mean)
            assert [t["trade_id"] for t in large["trades"]] == stored.trade_id[big].tolist()
            assert large["count"] == len(stored) and large["trades"]
            iso = await session.volume_profile(
                "BTCUSDT", bins=40, start="2021-04-04T20:03:00Z", end=end
            )
            assert iso["count"] >= mine["count"]
            with pytest.raises(HistoryError):
                await session.trade_stats("NOSUCHUSDT", start=start)
            with pytest.raises(NotStreaming):
                await Session().volume_profile("BTCUSDT", start=start)
    finally:
        server.shutdown()
        thread.join(timeout=10)
