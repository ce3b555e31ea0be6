"""Push vs polling, as a user sees it: event time → painted tape row in headless Chromium,
where the time goes on the way, and the server's CPU per open page.

One Tapescope process (``python -m app run``: local exchange replaying the bundled 2021
recording at speed 1, feed, dashboard and push streams on one port). Chromium opens the
page twice: ``/?push=off`` (the 500 ms polling tape) and ``/`` (the tape painted from the
trades stream). In each page a MutationObserver notes every tape row that appears (rows already
shown when it starts are not counted) and, at
the next animation frame (the paint), the exchange clock's time of day minus the row's
trade time (the time column, UTC ms) — the latency of that trade. The exchange clock is the
replay's (``bench.exchange_clock``: trade times are the recording's, played when the replay
clock reaches their receive time), so every figure includes the recording's own
exchange → recorder lag, printed first.

Where the time goes (pushed mode, same seconds): event → received by a Python client of the
trades stream (the server's part), and by a bare WebSocket in the page (adds the browser's
main thread being free to run ``onmessage``); painted minus received is the page's own work.
The share of the time the page's main thread spent in long tasks (≥ 50 ms, the page's
charts being redrawn, slower under load) is printed per mode, and what ran in them: the
scripts of Chromium's long animation frames (LoAF, ≥ 50 ms) by invoker and file — e.g.
``IdleRequestCallback @ push.js`` (the pushed depth and flow redraws), ``Response.json.then
@ dash_renderer.min.js`` (a server callback's answer rendered: its Plotly figure or HTML),
``setTimeout @ (no source)`` (a timer resolving a promise: by a CPU profile of the page,
mostly the Dash renderer's callback bookkeeping), ``DOMWebSocket.onmessage @ push.js`` (the
tape painted).

CPU per page: the server process's CPU seconds per wall second with N pages open, minus with
none just before, divided by N; for polling pages and for pushed pages. The server runs
without history (``--no-history``: its periodic compaction would land in one phase or
another).

With ``--charts`` every ``Plotly.*`` call of the measured pages is also timed by call and
chart (a wrapper around ``window.Plotly``: off by default, the page then runs unchanged).

Usage: ``python bench/bench_push_latency.py [--seconds 30] [--pages 10] [--charts]``. Ends with one
JSON line (latencies in ms, CPU in ms per s, the 1-minute load average of the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import websockets
from selenium import webdriver
from selenium.webdriver.chrome.options import Options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.exchange_clock import (  # noqa: E402
    ExchangeClock,
    exchange_rest,
    read_trade_lags,
    recorded_lag_ms,
)
from tests.redis_server import free_port  # noqa: E402

GOAL_MS = 100.0
SYMBOL = "BTCUSDT"
SEEN_JS = """
window.__latency = [];
window.__received = [];
window.__busy = 0;
window.__since = performance.now();
new PerformanceObserver(function (list) {
  for (const entry of list.getEntries()) { window.__busy += entry.duration; }
}).observe({entryTypes: ["longtask"]});
window.__frames = {};
if (PerformanceObserver.supportedEntryTypes.includes("long-animation-frame")) {
  new PerformanceObserver(function (list) {
    for (const frame of list.getEntries()) {
      for (const script of frame.scripts) {
        const file = (script.sourceURL || "").split("/").pop().split("?")[0]
          .replace(/\\.v[0-9_]+m[0-9]+/, "") || "(no source)";
        const key = script.invoker.replace("TimerHandler:", "") + " @ " + file;
        const seen = window.__frames[key] || (window.__frames[key] = {ms: 0, max: 0, n: 0});
        seen.ms += script.duration;
        seen.max = Math.max(seen.max, script.duration);
        seen.n += 1;
      }
    }
  }).observe({type: "long-animation-frame"});
}
window.__offset = arguments[1];
const target = document.getElementById(arguments[0]);
const seen = new Set(Array.from(target.querySelectorAll('.tape-row'), (row) => row.textContent));
const DAY = 86400000;
function parse(text) {
  const m = /^(\\d\\d):(\\d\\d):(\\d\\d)\\.(\\d\\d\\d)/.exec(text);
  return m ? ((+m[1] * 60 + +m[2]) * 60 + +m[3]) * 1000 + +m[4] : null;
}
new MutationObserver(function () {
  const fresh = [];
  for (const row of target.querySelectorAll('.tape-row')) {
    const text = row.textContent;
    if (!seen.has(text)) { seen.add(text); fresh.push(text); }
  }
  if (!fresh.length) { return; }
  requestAnimationFrame(function () {
    const now = ((Date.now() - window.__offset) % DAY + DAY) % DAY;
    for (const text of fresh) {
      const t = parse(text);
      if (t !== null) {
        let d = now - t;
        if (d < -DAY / 2) { d += DAY; }
        if (d > DAY / 2) { d -= DAY; }
        window.__latency.push(d);
      }
    }
  });
}).observe(target, {childList: true, subtree: true, characterData: true});
if (arguments[2]) {
  const probe = new WebSocket(arguments[2]);
  probe.onmessage = function (event) {
    const now = Date.now() - window.__offset;
    for (const t of JSON.parse(event.data).trades) { window.__received.push(now - t.time); }
  };
  window.__probe = probe;
}
"""


CHARTS_JS = """
window.__charts = {};
for (const name of ["react", "newPlot", "update", "restyle", "relayout", "extendTraces"]) {
  const call = window.Plotly[name];
  window.Plotly[name] = function (gd) {
    const started = performance.now();
    const answer = call.apply(this, arguments);
    const el = typeof gd === "string" ? document.getElementById(gd) : gd;
    const chart = (el && el.parentElement && el.parentElement.id) || "?";
    const took = performance.now() - started;
    const seen = window.__charts[name + " " + chart] ||
      (window.__charts[name + " " + chart] = {ms: 0, max: 0, n: 0});
    seen.ms += took;
    seen.max = Math.max(seen.max, took);
    seen.n += 1;
    return answer;
  };
}
"""
"""With ``--charts``: every ``Plotly.*`` call of the page timed (its synchronous part) by
call and chart (the graph's container id): which redraws the long frames were."""


def chrome() -> webdriver.Chrome:
    options = Options()
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows", "--window-size=1400,1000",
    ):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options)


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPESCOPE_")}
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "run", "--source", "replay", "--speed", "1",
         "--port", str(port), "--no-history"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                body = json.loads(r.read())
                if body.get("books", {}).get("BTCUSDT", {}).get("sync_state") == "LIVE":
                    return process
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the Tapescope server did not come up")


@dataclass
class Observed:
    """Latencies (ms) of one mode: rows painted, and — pushed mode — trades received by a
    bare WebSocket in the same page and by a Python client (the server's part)."""

    painted: list[float] = field(default_factory=list)
    page_received: list[float] = field(default_factory=list)
    client_received: list[float] = field(default_factory=list)
    busy_share: float = 0.0
    """Share of the time the page's main thread spent in long tasks (≥ 50 ms each)."""
    seconds: float = 0.0
    long_frames: dict[str, dict[str, float]] = field(default_factory=dict)
    """Scripts run in long animation frames (≥ 50 ms, Chromium's LoAF entries), by what
    invoked them and the script's file (``setTimeout @ push.js``, ``Response.json.then @
    dash_renderer...``): ``ms`` in total, ``max`` (the longest one), ``n`` (how many)."""
    chart_calls: dict[str, dict[str, float]] = field(default_factory=dict)
    """With ``--charts``: ``Plotly.*`` calls by call and chart (``update depth-chart``),
    their synchronous main-thread time: ``ms`` in total, ``max``, ``n``."""


def python_client(url: str, clock: ExchangeClock, seconds: float, out: list[float]) -> None:
    """Read the trades stream for ``seconds``; event → received latency per trade."""

    async def run() -> None:
        async with websockets.connect(url) as ws:
            await read_trade_lags(ws, clock, seconds, out)

    asyncio.run(run())


def latencies(
    driver: webdriver.Chrome,
    url: str,
    element: str,
    seconds: float,
    clock: ExchangeClock,
    stream_url: str | None,
    charts: bool = False,
) -> Observed:
    """Open ``url`` and note event → painted of every new row of ``#element`` for
    ``seconds``; with ``stream_url``, also event → received in the page and in Python."""
    driver.get(url)
    deadline = time.monotonic() + 30
    while not driver.execute_script(
        f"return document.querySelectorAll('#{element} .tape-row').length"
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no tape rows in #{element} at {url}")
        time.sleep(0.2)
    time.sleep(2.0)  # past the first full paint (rows that were already in the window)
    observed = Observed()
    client = None
    if stream_url is not None:
        client = threading.Thread(
            target=python_client, args=(stream_url, clock, seconds, observed.client_received)
        )
        client.start()
    driver.execute_script(SEEN_JS, element, clock.offset, stream_url)
    if charts:
        driver.execute_script(CHARTS_JS)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.5)
        driver.execute_script("window.__offset = arguments[0]", clock.offset)
    observed.painted = [float(x) for x in driver.execute_script("return window.__latency")]
    observed.busy_share = float(
        driver.execute_script("return window.__busy / (performance.now() - window.__since)")
    )
    observed.seconds = seconds
    observed.long_frames = driver.execute_script("return window.__frames")
    if charts:
        observed.chart_calls = driver.execute_script("return window.__charts")
    observed.page_received = [
        float(x)
        for x in driver.execute_script(
            "if (window.__probe) { window.__probe.close(); } return window.__received"
        )
    ]
    if client is not None:
        client.join()
    return observed


def cpu_per_s(process: psutil.Process, seconds: float) -> float:
    before = process.cpu_times()
    started = time.monotonic()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return used / (time.monotonic() - started)


def open_pages(driver: webdriver.Chrome, url: str, pages: int) -> None:
    driver.get(url)
    for _ in range(pages - 1):
        driver.switch_to.new_window("tab")
        driver.get(url)


def close_pages(driver: webdriver.Chrome) -> None:
    handles = driver.window_handles
    for handle in handles[1:]:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(handles[0])
    driver.get("about:blank")


def most_time(
    frames: dict[str, dict[str, float]], count: int
) -> list[tuple[str, dict[str, float]]]:
    """The ``count`` entries (script sources or chart calls) that took most time."""
    return sorted(frames.items(), key=lambda item: -item[1]["ms"])[:count]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_per_page(
    driver: webdriver.Chrome, proc: psutil.Process, url: str, pages: int, idle: float, s: float
) -> float:
    """Server CPU ms per wall second per open page of ``url`` (``pages`` tabs, minus idle)."""
    open_pages(driver, url, pages)
    time.sleep(5)
    used = cpu_per_s(proc, s)
    close_pages(driver)
    return (used - idle) / pages * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument(
        "--charts", action="store_true", help="time every Plotly call of the pages, by chart"
    )
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}/"
    health = json.loads(urllib.request.urlopen(base + "healthz", timeout=5).read())
    recorded = recorded_lag_ms(ROOT / "data" / "recordings" / health["feed"]["recording"], SYMBOL)
    clock = ExchangeClock(exchange_rest(base + "healthz"))
    stream = f"ws://127.0.0.1:{port}/ws/asset/{SYMBOL}/trades/"
    load_before = os.getloadavg()[0]
    driver = chrome()
    try:
        proc = psutil.Process(server.pid)
        polled = latencies(
            driver, base + "?push=off", "trade-tape", args.seconds, clock, None, args.charts
        )
        pushed = latencies(driver, base, "pushed-tape", args.seconds, clock, stream, args.charts)
        load_during = os.getloadavg()[0]
        driver.get("about:blank")
        idle = cpu_per_s(proc, args.seconds / 2)
        poll_cpu = cpu_per_page(
            driver, proc, base + "?push=off", args.pages, idle, args.seconds / 2
        )
        push_cpu = cpu_per_page(driver, proc, base, args.pages, idle, args.seconds / 2)
    finally:
        clock.stop()
        driver.quit()
        server.terminate()
        server.wait(timeout=15)
    figures = {
        "recorded_lag_ms_median": median(recorded),
        "recorded_lag_ms_p95": p95(recorded),
        "polling_latency_ms_median": median(polled.painted),
        "polling_latency_ms_p95": p95(polled.painted),
        "push_client_received_ms_median": median(pushed.client_received),
        "push_client_received_ms_p95": p95(pushed.client_received),
        "push_page_received_ms_median": median(pushed.page_received),
        "push_page_received_ms_p95": p95(pushed.page_received),
        "push_latency_ms_median": median(pushed.painted),
        "push_latency_ms_p95": p95(pushed.painted),
    }
    rows = [
        ("recording's own lag (exchange → recorder), median", "recorded_lag_ms_median"),
        ("recording's own lag, p95", "recorded_lag_ms_p95"),
        ("polling 500 ms: event → painted, median", "polling_latency_ms_median"),
        ("polling 500 ms: event → painted, p95", "polling_latency_ms_p95"),
        ("push: event → received by a Python client, median", "push_client_received_ms_median"),
        ("push: event → received by a Python client, p95", "push_client_received_ms_p95"),
        ("push: event → received in the page, median", "push_page_received_ms_median"),
        ("push: event → received in the page, p95", "push_page_received_ms_p95"),
        ("push: event → painted, median", "push_latency_ms_median"),
        (f"push: event → painted, p95 (goal ≤ {GOAL_MS:g})", "push_latency_ms_p95"),
    ]
    print(
        f"push vs polling: {SYMBOL}, replay speed 1, {args.seconds:g} s per mode, headless "
        f"Chromium; load average {load_before:.1f} before, {load_during:.1f} after the pages"
    )
    for name, key in rows:
        print(f"  {name:<62} {figures[key]:>9,.1f} ms")
    for mode, seen in (("polling", polled), ("push", pushed)):
        label = f"{mode}: page main thread in long tasks (share of the time)"
        print(f"  {label:<62} {seen.busy_share * 100:>9.1f} %")
    for mode, seen in (("polling", polled), ("push", pushed)):
        print(f"  {mode}: scripts in long frames, ms per s (longest, count)")
        for key, frame in most_time(seen.long_frames, 6):
            label = f"    {key}"[:62]
            print(
                f"  {label:<62} {frame['ms'] / seen.seconds:>9.1f} ms/s "
                f"({frame['max']:.0f} ms, {frame['n']:.0f})"
            )
        if seen.chart_calls:
            print(f"  {mode}: Plotly calls by chart, ms per s (longest, count)")
            for key, call in most_time(seen.chart_calls, 8):
                print(
                    f"  {'    ' + key:<62} {call['ms'] / seen.seconds:>9.1f} ms/s "
                    f"({call['max']:.0f} ms, {call['n']:.0f})"
                )
    ratio = figures["push_latency_ms_p95"] / figures["polling_latency_ms_p95"]
    print(f"  {'push p95 / polling p95':<62} {ratio:>9.3f}")
    print(f"  {'server CPU idle':<62} {idle * 1000:>9,.1f} ms/s")
    print(f"  {f'server CPU per polling page, {args.pages} open':<62} {poll_cpu:>9,.2f} ms/s")
    print(f"  {f'server CPU per pushed page, {args.pages} open':<62} {push_cpu:>9,.2f} ms/s")
    print(
        json.dumps(
            {k: round(v, 1) for k, v in figures.items()}
            | {
                "goal_latency_ms_p95": GOAL_MS,
                "trades_painted_polling": len(polled.painted),
                "trades_painted_push": len(pushed.painted),
                "polling_page_long_task_share": round(polled.busy_share, 3),
                "push_page_long_task_share": round(pushed.busy_share, 3),
                "push_long_frame_scripts_ms_per_s": {
                    key: round(frame["ms"] / pushed.seconds, 1)
                    for key, frame in most_time(pushed.long_frames, 6)
                },
                "server_cpu_idle_ms_per_s": round(idle * 1000, 1),
                "server_cpu_per_polling_page_ms_per_s": round(poll_cpu, 2),
                "server_cpu_per_pushed_page_ms_per_s": round(push_cpu, 2),
                "pages": args.pages,
                "load_average_1m": round(load_during, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
