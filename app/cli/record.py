"""``python -m app record --symbols btcusdt,ethusdt --minutes 10 --out FILE``: capture a
session (WebSocket frames and the REST snapshots fetched) in the replay format."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from app import config, market_source
from services.replay.recorder import record


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m app record", description=__doc__)
    parser.add_argument("--symbols", required=True, help="comma-separated, e.g. btcusdt,ethusdt")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to record")
    parser.add_argument("--out", type=Path, required=True, help="output .jsonl.gz file")
    parser.add_argument("--preset", default="spot", help="spot, spot-data, us or usdm")
    parser.add_argument("--ws-url", default="", help="WebSocket base URL (overrides the preset)")
    parser.add_argument("--rest-url", default="", help="REST base URL (overrides the preset)")
    args = parser.parse_args(argv)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    if not symbols or args.minutes <= 0:
        print("error: give at least one symbol and a positive duration", file=sys.stderr)
        return 2
    settings = config.Settings(preset=args.preset, ws_url=args.ws_url, rest_url=args.rest_url)
    endpoints = market_source.live_endpoints(settings)
    summary = asyncio.run(record(endpoints, symbols, args.minutes * 60.0, args.out))
    print(
        f"recorded {summary.frames} frames ({summary.bytes} bytes) and "
        f"{summary.snapshots} snapshots into {summary.path}; reconnects: {summary.reconnects}"
    )
    return 0 if summary.frames else 1
