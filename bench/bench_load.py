"""Load on the dashboard: simulated browser sessions against gunicorn, Redis and the ingest
worker, then the single-process memory store for comparison (loopback only).

Each session behaves as the Dash renderer does: it reads the layout and the callback graph
(``/_dash-layout``, ``/_dash-dependencies``) and, at ``--rate`` Hz, POSTs every callback
the fast interval triggers to ``/_dash-update-component`` (the slow-interval callbacks at
the layout's slow/fast ratio), feeding the returned ``*-rendered`` stores back as state.
Requests of one tick go out one after another on a keep-alive connection; a session that
falls behind skips ticks (counted as late).

Setups: ``redis`` is gunicorn with ``--workers`` gthread workers reading Redis, with
``python -m app worker`` replaying the bundled recording in real time; ``memory`` is one
gunicorn worker with the embedded feed. Goal: 50 sessions at 1 Hz, 0 errors, p95 < 150 ms.
Prints a table and ends with one JSON line. Stops by itself after the run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer, free_port  # noqa: E402

PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
WARMUP_S = 5.0
SYMBOLS = ("BTCUSDT", "ETHUSDT", "DOTUSDT")


@dataclass(slots=True)
class Results:
    """Latencies (s) and failures of the measured part of a run."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    late_ticks: int = 0
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, latency: float, error: str) -> None:
        with self.lock:
            if error:
                self.errors += 1
                if len(self.error_samples) < 5:
                    self.error_samples.append(error)
            else:
                self.latencies.append(latency)


def walk(node: Any, props: dict[tuple[str, str], Any]) -> None:
    """Collect (id, prop) -> value of every component with an id in a layout tree."""
    if isinstance(node, list):
        for child in node:
            walk(child, props)
        return
    if not isinstance(node, dict) or "props" not in node:
        return
    component_props = node["props"]
    if isinstance(component_props.get("id"), str):
        for name, value in component_props.items():
            props[(component_props["id"], name)] = value
    for value in component_props.values():
        if isinstance(value, (dict, list)):
            walk(value, props)


def outputs_of(dep: dict[str, Any]) -> list[dict[str, str]]:
    spec = dep["output"]
    parts = spec.strip(".").split("...") if spec.startswith("..") else [spec]
    out = []
    for part in parts:
        cid, _, prop = part.rpartition(".")
        out.append({"id": cid, "property": prop})
    return out


class Session:
    """One simulated browser tab."""

    def __init__(self, port: int, deps: list[dict], props: dict, symbol: str) -> None:
        self.port = port
        self.props = dict(props)
        self.props[("symbol-dropdown", "value")] = symbol
        self.fast = [d for d in deps if _triggered_by(d, "fast-interval")]
        self.slow = [d for d in deps if _triggered_by(d, "slow-interval")]
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def payload(self, dep: dict[str, Any], trigger: str) -> bytes:
        outputs = outputs_of(dep)
        return orjson.dumps(
            {
                "output": dep["output"],
                "outputs": outputs if len(outputs) > 1 else outputs[0],
                "inputs": [
                    {**i, "value": self.props.get((i["id"], i["property"]))} for i in dep["inputs"]
                ],
                "state": [
                    {**s, "value": self.props.get((s["id"], s["property"]))} for s in dep["state"]
                ],
                "changedPropIds": [f"{trigger}.n_intervals"],
            }
        )

    def call(self, dep: dict[str, Any], trigger: str) -> tuple[float, str]:
        body = self.payload(dep, trigger)
        start = time.perf_counter()
        try:
            self.conn.request(
                "POST",
                "/_dash-update-component",
                body=body,
                headers={"Content-Type": "application/json"},
            )
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            return time.perf_counter() - start, f"{type(exc).__name__}: {exc}"
        latency = time.perf_counter() - start
        if response.status == 204:
            return latency, ""
        if response.status != 200:
            return latency, f"HTTP {response.status}: {data[:200]!r}"
        for cid, values in orjson.loads(data).get("response", {}).items():
            for prop, value in values.items():
                if cid.endswith("-rendered"):
                    self.props[(cid, prop)] = value
        return latency, ""

    def run(self, rate: float, slow_every: int, start: float, stop: float, res: Results) -> None:
        period = 1.0 / rate
        tick = 0
        while True:
            due = start + tick * period
            if due >= stop:
                break
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            elif now - due > period and due > start + WARMUP_S:
                res.late_ticks += 1
                tick += 1
                continue
            self.props[("fast-interval", "n_intervals")] = tick
            work = [(d, "fast-interval") for d in self.fast]
            if tick % slow_every == 0:
                self.props[("slow-interval", "n_intervals")] = tick // slow_every
                work += [(d, "slow-interval") for d in self.slow]
            for dep, trigger in work:
                latency, error = self.call(dep, trigger)
                if time.monotonic() - start >= WARMUP_S:
                    res.record(latency, error)
            tick += 1
        self.conn.close()


def _triggered_by(dep: dict[str, Any], interval: str) -> bool:
    return any(i["id"] == interval for i in dep["inputs"])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def wait_healthy(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code, body = get(f"http://127.0.0.1:{port}/healthz")
        if code == 200:
            books = json.loads(body).get("books", {})
            if books and all(b["sync_state"] == "LIVE" for b in books.values()):
                return
        time.sleep(0.5)
    raise RuntimeError(f"the dashboard on port {port} did not become healthy")


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPESCOPE_")}
    env.pop("REDIS_URL", None)
    env.update(
        TAPESCOPE_SOURCE="replay",
        TAPESCOPE_SPEED="1",
        TAPESCOPE_REFRESH_MS="1000",
        TAPESCOPE_SLOW_REFRESH_MS="4000",
    )
    return env


@contextmanager
def deployment(mode: str, workers: int) -> Iterator[int]:
    """Start the ``mode`` setup; yield the web port; stop every process it started."""
    port = free_port()
    env = base_env()
    processes: list[subprocess.Popen[bytes]] = []
    redis_server = None
    try:
        if mode == "redis":
            redis_server = RedisServer()
            redis_server.start()
            env["REDIS_URL"] = redis_server.url
            processes.append(spawn([PYTHON, "-m", "app", "worker"], env))
        count = workers if mode == "redis" else 1
        web = [GUNICORN, "app:server", "--workers", str(count), "--worker-class", "gthread"]
        web += ["--threads", "8", "--bind", f"127.0.0.1:{port}", "--timeout", "60"]
        processes.append(spawn(web, env))
        wait_healthy(port, 120)
        yield port
    finally:
        for process in reversed(processes):
            stop(process)
        if redis_server is not None:
            redis_server.close()


def measure(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    with deployment(mode, args.workers) as port:
        _, layout = get(f"http://127.0.0.1:{port}/_dash-layout")
        _, deps_raw = get(f"http://127.0.0.1:{port}/_dash-dependencies")
        props: dict[tuple[str, str], Any] = {}
        walk(orjson.loads(layout), props)
        deps = orjson.loads(deps_raw)
        fast = props.get(("fast-interval", "interval"), 1000)
        slow = props.get(("slow-interval", "interval"), 4000)
        slow_every = max(1, round(slow / fast))
        sessions = [
            Session(port, deps, props, SYMBOLS[i % len(SYMBOLS)]) for i in range(args.sessions)
        ]
        res = Results()
        start = time.monotonic() + 0.5
        stop_at = start + args.duration
        threads = []
        for i, session in enumerate(sessions):
            phase = (i / len(sessions)) / args.rate
            thread = threading.Thread(
                target=session.run,
                args=(args.rate, slow_every, start + phase, stop_at, res),
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(timeout=args.duration + 30)
    lat = np.array(res.latencies) * 1000 if res.latencies else np.zeros(1)
    measured_s = args.duration - WARMUP_S
    return {
        "mode": mode,
        "web_workers": args.workers if mode == "redis" else 1,
        "sessions": args.sessions,
        "requests": len(res.latencies) + res.errors,
        "throughput_rps": round((len(res.latencies) + res.errors) / measured_s, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "errors": res.errors,
        "late_ticks": res.late_ticks,
        "error_samples": res.error_samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per setup")
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1.0, help="refreshes per second")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers with Redis")
    parser.add_argument("--modes", default="redis,memory", help="comma-separated setups")
    args = parser.parse_args()
    if args.duration <= WARMUP_S:
        parser.error(f"--duration must exceed the {WARMUP_S:g} s warm-up")
    rows = [measure(mode, args) for mode in args.modes.split(",")]
    print(
        f"{'setup':<8} {'workers':>7} {'sessions':>8} {'req/s':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'late':>5}"
    )
    for r in rows:
        print(
            f"{r['mode']:<8} {r['web_workers']:>7} {r['sessions']:>8} {r['throughput_rps']:>7} "
            f"{r['p50_ms']:>7} {r['p95_ms']:>7} {r['p99_ms']:>7} {r['errors']:>6} "
            f"{r['late_ticks']:>5}"
        )
        for sample in r["error_samples"]:
            print(f"  {r['mode']} error: {sample}")
    goal = {"sessions": 50, "rate_hz": 1.0, "errors": 0, "p95_ms": 150}
    redis_row = next((r for r in rows if r["mode"] == "redis"), None)
    met = (
        redis_row is not None
        and args.sessions >= 50
        and args.rate >= 1.0
        and redis_row["errors"] == 0
        and redis_row["p95_ms"] < 150
    )
    summary = {
        "bench": "load",
        "duration_s": args.duration,
        "rate_hz": args.rate,
        "goal": goal,
        "goal_met": met,
        "results": [{k: v for k, v in r.items() if k != "error_samples"} for r in rows],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
