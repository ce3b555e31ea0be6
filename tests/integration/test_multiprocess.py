"""Tapescope as several processes: Redis, the ingest worker replaying the bundled recording,
gunicorn with two web workers reading the store, and a reader in the test process. Also
the restart of the ingest worker, and the guards against misconfiguration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from services.market.views import SyncState
from services.redis_store import RedisStore
from services.store import SymbolSnapshot
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
SYMBOLS = ("BTCUSDT", "ETHUSDT", "DOTUSDT")
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def env_with(redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPESCOPE_")}
    env["TAPESCOPE_HISTORY"] = "0"  # these tests are about the store, not the history
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def start_worker(redis_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PYTHON, "-m", "app", "worker", "--source", "replay", "--speed", "5"],
        cwd=ROOT,
        env=env_with(redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_gunicorn(redis_url: str, port: int, threads: int) -> subprocess.Popen[bytes]:
    """``app:server`` under gunicorn: 2 gthread workers of ``threads`` threads on ``port``."""
    return subprocess.Popen(
        [GUNICORN, "app:server", "--workers", "2", "--worker-class", "gthread", "--threads",
         str(threads), "--bind", f"127.0.0.1:{port}", "--timeout", "60"],
        cwd=ROOT,
        env=env_with(redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except OSError:
        return 0, None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def live_books(store: RedisStore) -> dict[str, SymbolSnapshot] | None:
    snaps = {s: store.snapshot(s) for s in SYMBOLS}
    if all(snap is not None and snap.book.is_live for snap in snaps.values()):
        return snaps  # type: ignore[return-value]
    return None


def test_worker_gunicorn_and_worker_restart(redis_server: RedisServer) -> None:
    url = redis_server.url
    reader = RedisStore(url, poll_s=0)
    worker = start_worker(url)
    web: subprocess.Popen[bytes] | None = None
    try:
        first = wait_for(lambda: live_books(reader), 60, "LIVE books from the worker")
        btc = first["BTCUSDT"]
        assert len(btc.book.bid_prices) > 0 and len(btc.book.ask_prices) > 0
        assert btc.book.bid_prices[0] < btc.book.ask_prices[0]
        grown = wait_for(
            lambda: (s := reader.snapshot("BTCUSDT")) and len(s.trades) > len(btc.trades) and s,
            30,
            "the BTCUSDT trade window to grow",
        )
        assert grown.seq > btc.seq and grown.published_at > btc.published_at
        ids = grown.trades.trade_id
        assert (ids[1:] > ids[:-1]).all(), "trade window is ordered and has no duplicates"
        assert reader.status().connection_state == "CONNECTED"  # type: ignore[union-attr]

        port = free_port()
        web = start_gunicorn(url, port, threads=4)
        base = f"http://127.0.0.1:{port}"
        health = wait_for(
            lambda: (r := get_json(f"{base}/healthz"))[0] == 200 and r[1], 90, "gunicorn /healthz"
        )
        assert health["status"] == "ok"
        assert set(SYMBOLS) <= set(health["books"])
        for _ in range(12):
            code, body = get_json(f"{base}/api/assets/crypto/BTCUSDT/orderbook?levels=5")
            assert code == 200, body
            assert body["sync_state"] == "LIVE" and len(body["bids"]) == 5
            code, body = get_json(f"{base}/api/assets/crypto/ETHUSDT/trades?limit=20")
            assert code == 200 and len(body["trades"]) > 0

        before = reader.snapshot("BTCUSDT")
        assert before is not None
        stop(worker, signal.SIGKILL)
        stale = wait_for(
            lambda: (s := reader.snapshot("BTCUSDT")) and not s.book.is_live and s,
            20,
            "the dead worker's book to turn STALE",
        )
        assert stale.book.sync_state is SyncState.STALE and stale.seq == before.seq

        worker = start_worker(url)
        fresh = wait_for(
            lambda: (s := reader.snapshot("BTCUSDT")) and s.book.is_live and s,
            60,
            "LIVE books from the restarted worker",
        )
        assert fresh.seq > before.seq, "seq keeps increasing across worker restarts"
        code, body = get_json(f"{base}/api/assets/crypto/BTCUSDT/orderbook?levels=1")
        assert code == 200 and body["seq"] >= fresh.seq
    finally:
        stop(worker)
        if web is not None:
            stop(web)


def test_worker_refuses_to_start_without_redis() -> None:
    result = subprocess.run(
        [PYTHON, "-m", "app", "worker", "--source", "replay"],
        cwd=ROOT,
        env=env_with(None),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr


def test_gunicorn_refuses_several_workers_without_redis() -> None:
    result = subprocess.run(
        [GUNICORN, "app:server", "--workers", "3", "--bind", f"127.0.0.1:{free_port()}"],
        cwd=ROOT,
        env=env_with(None),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "3 web workers need REDIS_URL" in result.stderr
