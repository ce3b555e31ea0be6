"""``python -m app history import|info|stats|export``: the history store from the shell.

- ``import [FILE ...]``: import recordings (default: the bundled ones); idempotent.
- ``info``: per market and symbol, stored trades, id ranges, gaps, sizes, book and candle
  spans, and any foreign or corrupt file skipped.
- ``stats --symbol S [--start T] [--end T]``: one JSON line: trade count, volume, buy and
  sell volume (exact decimals), quote volume, VWAP, high, low, first and last trade id.
- ``export --symbol S [--start T] [--end T] --out FILE.csv|.parquet [--candles 1m]``:
  trades (or candles of an interval) of the range.

Times are ISO 8601 (UTC) or epoch milliseconds. ``--history-dir`` (or
``TAPESCOPE_HISTORY_DIR``) picks the store; default ``data/history``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from app import config
from services.history import schema
from services.history.importer import import_recording
from services.history.ranges import checked_range
from services.history.reader import HistoryError, HistoryReader
from services.history.writer import HistoryWriter
from services.replay.recording import SPOT_2021, SPOT_2024, USDM_2024

BUNDLED = (SPOT_2021, SPOT_2024, USDM_2024)
BAR_WIDTH = 30


class ProgressBar:
    """A one-line progress bar on stderr (``\\r``-redrawn; plain lines when not a tty)."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.total = total
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, done: int, detail: str = "") -> None:
        elapsed = time.monotonic() - self.started
        if self.total:
            filled = int(BAR_WIDTH * min(done / self.total, 1.0))
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            text = f"{self.label} [{bar}] {done}/{self.total} {detail} {elapsed:.1f}s"
        else:
            text = f"{self.label} {done:,} {detail} {elapsed:.1f}s"
        if self.tty:
            print("\r" + text, end="", file=sys.stderr, flush=True)

    def lines_and_trades(self, lines: int, trades: int) -> None:
        """The importer's progress callback."""
        self.update(lines, f"lines, {trades:,} trades")

    def done(self, detail: str) -> None:
        elapsed = time.monotonic() - self.started
        end = "\n"
        print(("\r" if self.tty else "") + f"{self.label} {detail} ({elapsed:.1f}s)", end=end,
              file=sys.stderr, flush=True)  # fmt: skip


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--history-dir", type=Path, help="history directory")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import recordings (default: the bundled ones)")
    imp.add_argument("files", nargs="*", type=Path)
    info = sub.add_parser("info", help="coverage and sizes")
    info.add_argument("--json", action="store_true", help="one JSON object per symbol")
    for name in ("stats", "export"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--symbol", required=True)
        cmd.add_argument("--market", help="spot or usdm (default: where the symbol is)")
        cmd.add_argument("--kind", choices=("aggTrade", "trade"))
        cmd.add_argument("--start")
        cmd.add_argument("--end")
        if name == "export":
            cmd.add_argument("--out", type=Path, required=True)
            cmd.add_argument("--candles", metavar="INTERVAL", help="export candles instead")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    root = args.history_dir or config.from_env().history_dir
    try:
        if args.command == "import":
            return import_files(root, args.files or list(BUNDLED))
        reader = HistoryReader(root)
        if args.command == "info":
            return info(reader, args.json)
        market = args.market or reader.market_of(args.symbol)
        if market is None:
            raise HistoryError(f"no history for {args.symbol.upper()} in {root}", 404)
        start, end = checked_range(args.start, args.end)
        if args.command == "stats":
            stats = reader.stats(market, args.symbol, start, end, args.kind)
            print(json.dumps({"market": market, **stats}))
            return 0
        return export(reader, market, args, start, end)
    except HistoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if exc.status == 404 else 2


def import_files(root: Path, files: list[Path]) -> int:
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    writer = HistoryWriter(root, flush_interval_s=5.0).start()
    try:
        for path in files:
            bar = ProgressBar(f"import {Path(path).name}")
            result = import_recording(path, writer, bar.lines_and_trades)
            added = sum(result.trades.values())
            skipped = sum(result.trades_skipped.values())
            books = ", ".join(s for s, done in result.book_imported.items() if done) or "none"
            bar.done(f"{added} trades added, {skipped} already stored; book: {books}")
    finally:
        writer.stop()
    stats = writer.stats()
    if stats.write_errors:
        print(f"error: {stats.write_errors} writes failed: {stats.last_error}", file=sys.stderr)
        return 1
    return 0


def info(reader: HistoryReader, as_json: bool) -> int:
    pairs = reader.symbols()
    if not pairs:
        print(f"no history in {reader.root}")
        return 0
    for market, symbol in pairs:
        for kind in reader.trade_kinds(market, symbol) or [None]:
            if kind is None:
                continue
            cov = reader.coverage(market, symbol, kind)
            record = {
                "market": market,
                "symbol": symbol,
                "kind": kind,
                "trades": cov.trades,
                "trade_bytes": cov.bytes,
                "bytes_per_trade": round(cov.bytes / cov.trades, 2) if cov.trades else None,
                "from": _iso(cov.ranges[0]["from_ms"]) if cov.ranges else None,
                "to": _iso(cov.ranges[-1]["to_ms"]) if cov.ranges else None,
                "ranges": len(cov.ranges),
                "gaps": [
                    {**g, "from": _iso(g["from_ms"]), "to": _iso(g["to_ms"])} for g in cov.gaps
                ],
                "book": [_iso(cov.book_from_ms), _iso(cov.book_to_ms)],
                "candles": [_iso(cov.candles_from_ms), _iso(cov.candles_to_ms)],
            }
            if as_json:
                print(json.dumps(record))
            else:
                print(f"{market}/{symbol} {kind}: {cov.trades:,} trades "
                      f"({record['bytes_per_trade']} B/trade) {record['from']} → {record['to']}"
                      f", {len(cov.gaps)} gaps; book {record['book'][0]} → {record['book'][1]};"
                      f" candles {record['candles'][0]} → {record['candles'][1]}")  # fmt: skip
                for gap in record["gaps"]:
                    print(
                        f"  gap ids {gap['first_id']}..{gap['last_id']} ({gap['trades']} "
                        f"trades) {gap['from']} → {gap['to']}: {gap['reason']}"
                    )
    for problem in reader.problems.values():
        print(f"skipped {problem.kind} file {problem.path}: {problem.detail}", file=sys.stderr)
    return 0


def export(
    reader: HistoryReader,
    market: str,
    args: argparse.Namespace,
    start: int | None,
    end: int | None,
) -> int:
    out: Path = args.out
    if out.suffix not in (".csv", ".parquet"):
        raise HistoryError("--out must end in .csv or .parquet", 400)
    bar = ProgressBar(f"export {args.symbol.upper()}")
    if args.candles:
        frame = reader.candles(market, args.symbol, args.candles, start, end)
    else:
        rows = reader.trade_frame(market, args.symbol, start, end, args.kind)
        bar.update(rows.height, "trades read")
        e8 = schema.SCALE
        frame = rows.select(
            "trade_id",
            "time_ms",
            (pl.col("price_e8") / e8).round(8).alias("price"),
            (pl.col("qty_e8") / e8).round(8).alias("qty"),
            pl.when(pl.col("buyer_maker")).then(pl.lit("sell")).otherwise(pl.lit("buy"))
            .alias("taker_side"),
        )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.write_csv(out)
    else:
        frame.write_parquet(out, compression="zstd")
    bar.done(f"{frame.height:,} rows → {out}")
    return 0
