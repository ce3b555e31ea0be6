"""The local exchange's clock as seen from a benchmark, and the recording's own lag.

The replay keeps the recording's event times (time base ``recording``: a 2021 recording
shows 2021) and plays each frame when the *replay clock* — the recorder's receive time of the
frame, what ``GET /api/v3/time`` answers — reaches it. So "event time → seen" is measured
against that clock, not the wall clock: ``offset_ms`` = wall ms − exchange ms (taken at the
midpoint of a REST round trip); an observation at wall time ``w`` of a trade with event time
``T`` has latency ``w − offset_ms − T``. The offset changes when a loop pass starts (a whole
number of days plus the pause between passes) or the replay stalls, so it is refreshed.

``recorded_lag_ms``: receive time − trade time of the recording's own trades (the network
and the recorder in the recording): every latency measured on the replay includes it.
``read_trade_lags``: the trades-stream read loop the push benchmarks share.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

DAY_MS = 86_400_000


def exchange_rest(health_url: str) -> str:
    """The local exchange's REST base (``http://host:port``) from the app's ``/healthz``."""
    with urllib.request.urlopen(health_url, timeout=5) as r:
        endpoint = json.loads(r.read())["feed"]["endpoint"]
    return endpoint.replace("ws://", "http://").replace("wss://", "https://").rstrip("/")


def offset_ms(rest: str) -> float:
    """Wall ms − exchange ms now (see the module docstring), from the fastest of 3 reads."""
    best: tuple[float, float] | None = None
    for _ in range(3):
        before = time.time() * 1000
        with urllib.request.urlopen(f"{rest}/api/v3/time", timeout=5) as r:
            server = json.loads(r.read())["serverTime"]
        after = time.time() * 1000
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) / 2 - server)
    assert best is not None
    return best[1]


class ExchangeClock:
    """``offset_ms`` of the exchange at ``rest``, refreshed every ``every_s`` in a thread."""

    def __init__(self, rest: str, every_s: float = 0.5) -> None:
        self.rest = rest
        self.offset = offset_ms(rest)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)
        self._thread.start()

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self.offset = offset_ms(self.rest)
            except OSError:
                continue

    def lag_ms(self, event_ms: int, wall_ms: float | None = None) -> float:
        """Latency of an observation (default: now) of an event stamped ``event_ms``."""
        wall = time.time() * 1000 if wall_ms is None else wall_ms
        return wall - self.offset - event_ms

    def stop(self) -> None:
        self._stop.set()


def recorded_lag_ms(recording: Path, symbol: str) -> list[float]:
    """Receive time − trade time (ms) of ``symbol``'s trades in a recording."""
    lags: list[float] = []
    with gzip.open(recording, "rb") as f:
        for line in f:
            row = orjson.loads(line)
            if row.get("src") != "ws":
                continue
            msg = row["msg"]
            msg = orjson.loads(msg) if isinstance(msg, str) else msg
            data = msg.get("data", msg) if isinstance(msg, dict) else None
            if (
                isinstance(data, dict)
                and data.get("e") in ("trade", "aggTrade")
                and data.get("s") == symbol
            ):
                lags.append(row["ts"] / 1e6 - data["T"])
    return lags


async def read_trade_lags(ws: Any, clock: ExchangeClock, seconds: float, lags: list[float]) -> int:
    """Read the trades stream ``ws`` for ``seconds``, appending each trade's event → received
    latency to ``lags``; the number of messages read."""
    messages = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            raw = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        now = time.time() * 1000
        lags.extend(clock.lag_ms(trade["time"], now) for trade in json.loads(raw)["trades"])
        messages += 1
    return messages
