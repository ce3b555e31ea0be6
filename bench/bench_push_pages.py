"""Server CPU per open page, pushed vs polling, with many pages (50 by default): light clients
that make a real page's own requests, not browser tabs.

50 headless Chromium tabs on a shared 2-core machine measure the machine (their renderers
starve the server, which then serves fewer requests and looks cheaper), so the pages are
imitated. First one real page per mode is opened in headless Chromium for ``--capture``
seconds and its Dash callback requests (``POST /_dash-update-component``: which callback,
its body, how often) are read from Chromium's network log: ``/?push=off`` (the 500 ms
polling page) and ``/`` (the pushed page: slower intervals, the server skipping the pushed
panels). Then ``--pages`` light pages per mode run in one asyncio process (aiohttp): each
repeats every captured callback at the rate the real page made it (random phase), with the
interval counters counting on and the ``State`` values it sends updated from the server's
answers (as the Dash renderer does: the server sees a page whose panels are on screen); a
pushed page also holds the page's four sockets (trades, prices, book with 200 levels,
status) and reads every message.

Metrics: server CPU ms per wall second per page = (process CPU over ``--seconds`` with the
pages open − idle CPU over the same time just before) / pages; requests per second
answered per page, and the share of the rate the real page made that the server kept up
with (below 1: the server was saturated, so its CPU per page is a floor); WebSocket
messages per second per page. One server (``python -m app run``, replay at speed 1,
``--no-history``) for both modes.

Usage: ``python bench/bench_push_pages.py [--pages 50] [--seconds 20] [--capture 15]``. Ends
with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
from selenium import webdriver
from selenium.webdriver.chrome.options import Options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_push_latency import cpu_per_s, start_server  # noqa: E402
from tests.redis_server import free_port  # noqa: E402

SYMBOL = "BTCUSDT"
UPDATE = "/_dash-update-component"
SOCKETS = ("trades/", "prices/", "book/?levels=200", "status/")


@dataclass
class Callback:
    """One server callback as a real page made it: its last body and its rate (per s)."""

    body: dict
    per_s: float


@dataclass
class Tally:
    """What the light pages of one mode got from ``measure_from`` (monotonic s) on."""

    measure_from: float = 0.0
    answered: int = 0
    failed: int = 0
    messages: int = 0


def capture(base: str, query: str, seconds: float) -> dict[str, Callback]:
    """The callback requests one real page at ``base + query`` makes in steady state."""
    driver = _logging_chrome()
    try:
        driver.get(base + query)
        time.sleep(8)  # past the page's first load (its one-off callbacks)
        driver.get_log("performance")
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        bodies: dict[str, list[dict]] = {}
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") != "Network.requestWillBeSent":
                continue
            request = message["params"]["request"]
            if request.get("method") == "POST" and UPDATE in request["url"]:
                body = json.loads(request.get("postData") or "{}")
                if body:
                    bodies.setdefault(body["output"], []).append(body)
    finally:
        driver.quit()
    return {out: Callback(seen[-1], len(seen) / elapsed) for out, seen in bodies.items()}


def _logging_chrome() -> webdriver.Chrome:
    options = Options()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(options=options)


def _count_on(body: dict, step: int) -> dict:
    """The body with its interval counters moved on by ``step`` ticks."""
    for entry in body.get("inputs", []):
        if entry.get("property") == "n_intervals" and isinstance(entry.get("value"), int):
            entry["value"] += step
    return body


def _take_answer(body: dict, answer: dict) -> None:
    """Update the ``State`` values of ``body`` from the server's answer (what the page now
    holds)."""
    response = answer.get("response", {})
    for entry in body.get("state", []):
        props = response.get(entry.get("id"))
        if isinstance(props, dict) and entry.get("property") in props:
            entry["value"] = props[entry["property"]]


async def _callback_loop(
    http: aiohttp.ClientSession, url: str, callback: Callback, until: float, tally: Tally
) -> None:
    body = json.loads(json.dumps(callback.body))
    period = 1.0 / callback.per_s
    await asyncio.sleep(random.uniform(0, period))
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            async with http.post(url, json=_count_on(body, 1)) as answer:
                if answer.status == 200:
                    _take_answer(body, await answer.json(content_type=None))
                counted = time.monotonic() >= tally.measure_from
                if answer.status in (200, 204):  # 204: the callback prevented an update
                    tally.answered += counted
                else:
                    tally.failed += counted
        except (TimeoutError, aiohttp.ClientError):
            tally.failed += 1
        await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))


async def _socket_loop(http: aiohttp.ClientSession, url: str, until: float, tally: Tally) -> None:
    async with http.ws_connect(url) as ws:
        while time.monotonic() < until:
            try:
                message = await asyncio.wait_for(ws.receive(), max(0.1, until - time.monotonic()))
            except TimeoutError:
                break
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            tally.messages += time.monotonic() >= tally.measure_from


async def _pages(
    base: str, ws_base: str, callbacks: dict[str, Callback], pages: int, pushed: bool,
    seconds: float, warmup: float,
) -> Tally:  # fmt: skip
    tally = Tally(measure_from=time.monotonic() + warmup)
    until = tally.measure_from + seconds
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        tasks = [
            _callback_loop(http, base + UPDATE.lstrip("/"), cb, until, tally)
            for _ in range(pages)
            for cb in callbacks.values()
        ]
        if pushed:
            tasks += [
                _socket_loop(http, f"{ws_base}/ws/asset/{SYMBOL}/{path}", until, tally)
                for _ in range(pages)
                for path in SOCKETS
            ]
        await asyncio.gather(*tasks)
    return tally


def run_mode(
    proc: psutil.Process, base: str, ws_base: str, callbacks: dict[str, Callback],
    pages: int, pushed: bool, seconds: float,
) -> tuple[float, Tally]:  # fmt: skip
    """CPU seconds per wall second of the server while ``pages`` light pages run (after a
    5 s warm-up), and what they got."""
    warmup = 5.0
    result: dict[str, float] = {}

    def measure() -> None:
        time.sleep(warmup)
        result["cpu"] = cpu_per_s(proc, seconds)

    meter = threading.Thread(target=measure)
    meter.start()
    tally = asyncio.run(_pages(base, ws_base, callbacks, pages, pushed, seconds, warmup))
    meter.join()
    return result["cpu"], tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--capture", type=float, default=15.0)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    base, ws_base = f"http://127.0.0.1:{port}/", f"ws://127.0.0.1:{port}"
    try:
        proc = psutil.Process(server.pid)
        polled_cbs = capture(base, "?push=off", args.capture)
        pushed_cbs = capture(base, "", args.capture)
        load_before = os.getloadavg()[0]
        figures: dict[str, float] = {}
        for mode, cbs, pushed in (("polling", polled_cbs, False), ("push", pushed_cbs, True)):
            time.sleep(3)
            idle = cpu_per_s(proc, args.seconds / 2)
            cpu, tally = run_mode(proc, base, ws_base, cbs, args.pages, pushed, args.seconds)
            wanted = sum(cb.per_s for cb in cbs.values())
            got = tally.answered / args.seconds / args.pages
            figures |= {
                f"{mode}_idle_cpu_ms_per_s": idle * 1000,
                f"{mode}_cpu_per_page_ms_per_s": (cpu - idle) / args.pages * 1000,
                f"{mode}_requests_per_page_per_s": got,
                f"{mode}_requests_wanted_per_page_per_s": wanted,
                f"{mode}_kept_up_share": got / wanted if wanted else 1.0,
                f"{mode}_failed_requests": tally.failed,
                f"{mode}_ws_messages_per_page_per_s": tally.messages / args.seconds / args.pages,
            }
            print(f"{mode}: callbacks per page per s, as the real page made them:")
            for output, cb in sorted(cbs.items(), key=lambda kv: -kv[1].per_s):
                print(f"    {cb.per_s:5.2f}  {output[:90]}")
        load_after = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(
        f"server CPU per page, {args.pages} light pages per mode, {args.seconds:g} s each, "
        f"replay speed 1; load average {load_before:.1f} before, {load_after:.1f} after"
    )
    rows = [
        ("server CPU idle before polling pages", "polling_idle_cpu_ms_per_s", "ms/s"),
        ("server CPU per polling page", "polling_cpu_per_page_ms_per_s", "ms/s"),
        ("  requests answered per polling page", "polling_requests_per_page_per_s", "/s"),
        ("  share of the real page's request rate kept", "polling_kept_up_share", ""),
        ("server CPU idle before pushed pages", "push_idle_cpu_ms_per_s", "ms/s"),
        ("server CPU per pushed page", "push_cpu_per_page_ms_per_s", "ms/s"),
        ("  requests answered per pushed page", "push_requests_per_page_per_s", "/s"),
        ("  share of the real page's request rate kept", "push_kept_up_share", ""),
        ("  WebSocket messages per pushed page", "push_ws_messages_per_page_per_s", "/s"),
    ]
    for name, key, unit in rows:
        print(f"  {name:<50} {figures[key]:>9.2f} {unit}")
    ratio = figures["push_cpu_per_page_ms_per_s"] / figures["polling_cpu_per_page_ms_per_s"]
    print(f"  {'pushed / polling CPU per page':<50} {ratio:>9.3f}")
    print(
        json.dumps(
            {k: round(v, 3) for k, v in figures.items()}
            | {
                "push_over_polling_cpu_ratio": round(ratio, 3),
                "pages": args.pages,
                "load_average_1m": round(load_after, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
