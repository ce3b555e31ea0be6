"""Benchmark: restart time with history — from ``python -m app --source replay`` being
started to its API answering the last hour's trades and 1-minute candles from the stored
history.

A first run fills a fresh history directory (the offline replay imports its recording on
first run, then records its feed); it is stopped (SIGINT, as Ctrl-C). The last hour is the
hour up to the newest stored trade. Then the app is started again ``RUNS`` times, each
timed from ``Popen`` to the server's first answer (``/healthz``: mostly importing Dash,
Plotly, polars and aiohttp) and to the moment ``/trades?start=…`` counts every stored trade
of that hour and ``/candles?interval=1m&start=…`` returns its minutes (polled every 20 ms),
and the CPU time the app's process had used by then (user + system, all its threads, from
``/proc``): on a machine shared with other work the wall time is this CPU time stretched by
the load, so both are printed with the load average. The app runs as a user's install
does, with Python's bytecode cache (``PYTHONDONTWRITEBYTECODE`` is dropped from its
environment: the first run writes the cache, a restart reads it). Medians; one JSON line.
Target ≤ 3 s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.history.reader import HistoryReader  # noqa: E402

RUNS = 3
SYMBOL = "BTCUSDT"
LIMIT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(history: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TAPESCOPE_HISTORY_DIR": str(history)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "app", "--source", "replay", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _until(check, limit_s: float = LIMIT_S) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        if check():
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise TimeoutError("the app did not answer in time")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    history = tmp / "history"
    try:
        port = _free_port()
        first = _start(history, port)
        base = f"http://127.0.0.1:{port}/api/assets/crypto/{SYMBOL}"
        _until(lambda: bool((_get(f"{base}/history") or {}).get("coverage")), 120.0)
        time.sleep(3.0)  # let the first run record some of its own feed
        _stop(first)
        reader = HistoryReader(history)
        market = reader.market_of(SYMBOL)
        assert market is not None, "the first run stored no history"
        last_ms = int(reader.stats(market, SYMBOL)["last_time_ms"])  # type: ignore[call-overload]
        start = last_ms - 3_600_000
        stored = len(reader.trades(market, SYMBOL, start))
        minutes = reader.candles(market, SYMBOL, "1m", start).height
        times: list[float] = []
        up: list[float] = []
        cpu: list[float] = []
        loads: list[float] = []
        for _ in range(RUNS):
            port = _free_port()
            base = f"http://127.0.0.1:{port}/api/assets/crypto/{SYMBOL}"
            t0 = time.perf_counter()
            process = _start(history, port)

            def shows_last_hour(base: str = base) -> bool:
                trades = _get(f"{base}/trades?start={start}")
                candles = _get(f"{base}/candles?interval=1m&start={start}")
                return bool(
                    trades and candles and trades.get("count", 0) >= stored
                    and len(candles.get("candles", ())) >= minutes
                )  # fmt: skip

            try:
                _until(lambda port=port: _get(f"http://127.0.0.1:{port}/healthz") is not None)
                up.append(time.perf_counter() - t0)
                _until(shows_last_hour)
                times.append(time.perf_counter() - t0)
                cpu.append(_cpu_s(process.pid))
                loads.append(os.getloadavg()[0])
            finally:
                _stop(process)
        median = statistics.median(times)
        print(f"history: {stored} trades and {minutes} 1m candles in the last stored hour")
        print("restart → server answers /healthz: " + ", ".join(f"{t:.2f} s" for t in up)
              + f"; median {statistics.median(up):.2f} s")  # fmt: skip
        print("restart → API shows them: " + ", ".join(f"{t:.2f} s" for t in times)
              + f"; median {median:.2f} s (target ≤ 3 s)")  # fmt: skip
        print("  app CPU by then: " + ", ".join(f"{t:.2f} s" for t in cpu)
              + f"; median {statistics.median(cpu):.2f} s; load average (1 min) "
              + ", ".join(f"{x:.1f}" for x in loads) + f" on {os.cpu_count()} cores")  # fmt: skip
        print(json.dumps({"restart_to_last_hour_s": round(median, 3),
                          "restart_runs_s": [round(t, 3) for t in times],
                          "restart_to_healthz_s": round(statistics.median(up), 3),
                          "restart_cpu_s": round(statistics.median(cpu), 3),
                          "load_average_1m": round(statistics.median(loads), 1),
                          "last_hour_trades": stored, "last_hour_candles": minutes}))  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
