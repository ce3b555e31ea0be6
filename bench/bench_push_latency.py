"""Push vs polling, as a user sees it: event time → painted tape row in headless Chromium,
and the server's CPU per open page.

One Tapescope process (``python -m app run``: local exchange replaying the bundled 2021
recording at speed 1, feed, dashboard and push streams on one port). Chromium opens the
page twice: ``/?push=off`` (the 500 ms polling tape) and ``/`` (the tape painted from the
trades stream). In each page a MutationObserver notes every tape row that appears and, at
the next animation frame (the paint), ``Date.now()`` minus the row's trade time (the time
column, UTC ms; the replay shifts trade times to the wall clock) — the latency of that trade.

CPU per page: the server process's CPU seconds per wall second with N pages open, minus with
none, divided by N; for polling pages and for pushed pages.

Usage: ``python bench/bench_push_latency.py [--seconds 30] [--pages 10]``. Ends with one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from selenium import webdriver
from selenium.webdriver.chrome.options import Options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import free_port  # noqa: E402

GOAL_MS = 100.0
SEEN_JS = """
window.__latency = [];
const seen = new Set();
const target = document.getElementById(arguments[0]);
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
    const now = Date.now() % 86400000;
    for (const text of fresh) {
      const t = parse(text);
      if (t !== null) {
        let d = now - t;
        if (d < -43200000) { d += 86400000; }
        window.__latency.push(d);
      }
    }
  });
}).observe(target, {childList: true, subtree: true, characterData: true});
"""


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
         "--port", str(port)],
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


def latencies(driver: webdriver.Chrome, url: str, element: str, seconds: float) -> list[float]:
    driver.get(url)
    deadline = time.monotonic() + 30
    while not driver.execute_script(
        f"return document.querySelectorAll('#{element} .tape-row').length"
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no tape rows in #{element} at {url}")
        time.sleep(0.2)
    time.sleep(2.0)  # past the first full paint (rows that were already in the window)
    driver.execute_script(SEEN_JS, element)
    time.sleep(seconds)
    return [float(x) for x in driver.execute_script("return window.__latency")]


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


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}/"
    driver = chrome()
    try:
        proc = psutil.Process(server.pid)
        polled = latencies(driver, base + "?push=off", "trade-tape", args.seconds)
        pushed = latencies(driver, base, "pushed-tape", args.seconds)
        driver.get("about:blank")
        idle = cpu_per_s(proc, args.seconds / 2)
        open_pages(driver, base + "?push=off", args.pages)
        time.sleep(5)
        polling_cpu = cpu_per_s(proc, args.seconds / 2)
        close_pages(driver)
        open_pages(driver, base, args.pages)
        time.sleep(5)
        push_cpu = cpu_per_s(proc, args.seconds / 2)
        close_pages(driver)
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=15)
    per_page_poll = (polling_cpu - idle) / args.pages * 1000
    per_page_push = (push_cpu - idle) / args.pages * 1000
    rows = [
        ("polling 500 ms: trades painted", len(polled), ""),
        ("polling: event → painted median (ms)", statistics.median(polled), ""),
        ("polling: event → painted p95 (ms)", p95(polled), ""),
        ("push: trades painted", len(pushed), ""),
        ("push: event → painted median (ms)", statistics.median(pushed), ""),
        ("push: event → painted p95 (ms)", p95(pushed), f"goal ≤ {GOAL_MS:g}"),
        ("push p95 / polling p95", p95(pushed) / p95(polled), ""),
        ("server CPU idle (ms per s)", idle * 1000, ""),
        (f"server CPU per polling page, {args.pages} open (ms per s)", per_page_poll, ""),
        (f"server CPU per pushed page, {args.pages} open (ms per s)", per_page_push, ""),
    ]
    print(f"push vs polling: replay speed 1, {args.seconds:g} s per mode, headless Chromium")
    for name, value, note in rows:
        print(f"  {name:<58} {value:>10,.1f}  {note}")
    print(
        json.dumps(
            {
                "polling_latency_ms_median": round(statistics.median(polled), 1),
                "polling_latency_ms_p95": round(p95(polled), 1),
                "push_latency_ms_median": round(statistics.median(pushed), 1),
                "push_latency_ms_p95": round(p95(pushed), 1),
                "goal_latency_ms_p95": GOAL_MS,
                "trades_painted_polling": len(polled),
                "trades_painted_push": len(pushed),
                "server_cpu_idle_ms_per_s": round(idle * 1000, 1),
                "server_cpu_per_polling_page_ms_per_s": round(per_page_poll, 2),
                "server_cpu_per_pushed_page_ms_per_s": round(per_page_push, 2),
                "pages": args.pages,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
