"""Screenshot of the running dashboard into a PNG (headless Chromium).

``python scripts/screenshot.py docs/dashboard.png [--url http://127.0.0.1:8050/BTCUSDT]``.
Without ``--url`` it runs the dashboard itself (``python -m app run --source replay``: the
local exchange replaying the bundled recording, the real feed) on a free loopback port,
and stops it afterwards.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PANEL_SELECTORS = (
    "#heatmap-chart canvas.heatmap-layer",
    "#depth-chart .js-plotly-plot .scatterlayer .trace",
    "#trade-tape .tape-row, #pushed-tape .tape-row",
    "#flow-meter .js-plotly-plot .barlayer",
    "#volume-profile .js-plotly-plot .barlayer .point",
    "#liquidity-score .score-value",
    "#status-bar .status-item, #pushed-status .status-item",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_replay(symbol: str, timeout_s: float) -> tuple[str, Callable[[], None]]:
    """Run ``python -m app run --source replay`` on a free loopback port until it is
    healthy; returns (url, stop)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "run", "--source", "replay", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dashboard exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return f"http://127.0.0.1:{port}/{symbol}", stop
        except OSError:
            pass
        time.sleep(0.5)
    stop()
    raise RuntimeError("the dashboard did not become healthy in time")


def take_screenshot(url: str, output: Path, settle_s: float, timeout_s: float) -> None:
    """Open ``url`` in headless Chromium, wait for every panel, save a PNG."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1600,1150",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, timeout_s)
        for selector in PANEL_SELECTORS:
            wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))
        time.sleep(settle_s)
        output.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(output))
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default=str(ROOT / "docs" / "dashboard.png"))
    parser.add_argument("--url", help="a running dashboard (default: serve a replay here)")
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after render")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    stop = None
    url = args.url
    if url is None:
        url, stop = serve_replay(args.symbol, args.timeout)
    try:
        take_screenshot(url, Path(args.output), args.settle, args.timeout)
    finally:
        if stop is not None:
            stop()
    print(f"saved {args.output} from {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
