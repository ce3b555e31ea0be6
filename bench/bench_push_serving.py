"""How to serve the push streams: flask-sock (one thread per connection) under the dev
server (werkzeug, threaded: ``python -m app run``) and under gunicorn ``gthread`` (one worker,
the embedded feed: ``gunicorn app:server``), with the same replay and the same clients.

N real WebSocket clients (the ``websockets`` library, one asyncio loop in this process) each
read BTCUSDT's trades and prices streams for a while. Figures: trade latency at the clients
(receive time − trade time on the replay's exchange clock, ``bench.exchange_clock``: it
includes the recording's own exchange → recorder lag, 19 ms median), messages received, and
the server process's CPU per wall second.

Usage: ``python bench/bench_push_serving.py [--clients 50] [--seconds 15]``. Ends with one
JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.exchange_clock import ExchangeClock, exchange_rest, read_trade_lags  # noqa: E402
from tests.redis_server import free_port  # noqa: E402

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def command(server: str, port: int, threads: int) -> list[str]:
    if server == "werkzeug":
        return [sys.executable, "-m", "app", "run", "--source", "replay", "--speed", "1",
                "--port", str(port)]  # fmt: skip
    return [GUNICORN, "app:server", "--workers", "1", "--worker-class", "gthread",
            "--threads", str(threads), "--bind", f"127.0.0.1:{port}"]  # fmt: skip


def start(server: str, port: int, threads: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPESCOPE_")}
    env.pop("REDIS_URL", None)
    env.update(TAPESCOPE_SOURCE="replay", TAPESCOPE_SPEED="1")
    process = subprocess.Popen(
        command(server, port, threads), cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r,
        ):
            books = json.loads(r.read()).get("books", {})
            if books.get("BTCUSDT", {}).get("sync_state") == "LIVE":
                return process
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"{server} did not come up")


async def client(
    base: str, seconds: float, clock: ExchangeClock, lags: list[float], counts: list[int]
) -> None:
    async with (
        websockets.connect(f"{base}/ws/asset/BTCUSDT/trades/") as trades,
        websockets.connect(f"{base}/ws/asset/BTCUSDT/prices/") as prices,
    ):

        async def read_prices() -> None:
            async for _ in prices:
                counts[1] += 1

        reader = asyncio.create_task(read_prices())
        counts[0] += await read_trade_lags(trades, clock, seconds, lags)
        reader.cancel()


def measure(server: str, clients: int, seconds: float) -> dict:
    port = free_port()
    process = start(server, port, threads=2 * clients + 16)
    try:
        procs = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
        lags: list[float] = []
        counts = [0, 0]
        clock = ExchangeClock(exchange_rest(f"http://127.0.0.1:{port}/healthz"))
        cpu0 = _cpu(procs)
        started = time.monotonic()
        asyncio.run(_all(f"ws://127.0.0.1:{port}", clients, seconds, clock, lags, counts))
        cpu1 = _cpu(procs)
        wall = time.monotonic() - started
        clock.stop()
    finally:
        process.terminate()
        process.wait(timeout=15)
    ordered = sorted(lags)
    return {
        "latency_ms_median": round(statistics.median(ordered), 1) if ordered else None,
        "latency_ms_p95": round(ordered[int(0.95 * len(ordered))], 1) if ordered else None,
        "trade_messages": counts[0],
        "price_messages": counts[1],
        "cpu_ms_per_s": round((cpu1 - cpu0) / wall * 1000, 1),
    }


def _cpu(procs: list[psutil.Process]) -> float:
    """CPU seconds (user + system) of the server's processes (gunicorn: master and worker)."""
    return sum(p.cpu_times().user + p.cpu_times().system for p in procs)


async def _all(
    base: str, clients: int, seconds: float, clock: ExchangeClock, lags: list, counts: list
) -> None:
    await asyncio.gather(*(client(base, seconds, clock, lags, counts) for _ in range(clients)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    results = {
        server: measure(server, args.clients, args.seconds) for server in ("werkzeug", "gunicorn")
    }
    print(f"push serving: {args.clients} clients × (trades + prices), replay speed 1, "
          f"{args.seconds:g} s")  # fmt: skip
    print(f"  {'server':<10} {'median ms':>10} {'p95 ms':>10} {'trade msgs':>11} "
          f"{'price msgs':>11} {'CPU ms/s':>9}")  # fmt: skip
    for server, r in results.items():
        print(
            f"  {server:<10} {r['latency_ms_median']:>10} {r['latency_ms_p95']:>10} "
            f"{r['trade_messages']:>11} {r['price_messages']:>11} {r['cpu_ms_per_s']:>9}"
        )
    print(json.dumps({f"{s}_{k}": v for s, r in results.items() for k, v in r.items()}
                     | {"clients": args.clients}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
