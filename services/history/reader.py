"""The history query layer: polars lazy scans over one symbol's segments, returning the same
column views the live window gives (``TradeView``), so every analytics function runs over a
past range with the same definitions.

Ranges are ``start_ms <= time <= end_ms`` (either bound may be None: open). Only the date
directories and segments whose names overlap the range are opened. A segment that vanishes
between listing and reading (the compactor replaced it) makes the read start over from a
fresh listing; a foreign or corrupt file is recorded in ``problems`` and skipped. Because
the compactor writes the merged segment *before* deleting its sources, a reader sees either
the sources, or the merged file, or both — the latter is caught by overlapping id ranges and
the rows are de-duplicated by trade id — so it always reads one consistent set of trades.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl

from services.history import aggregates, schema
from services.history.segments import (
    BOOK_GRID,
    BOOK_TOP,
    CANDLES_1M,
    GAPS,
    TRADES_PREFIX,
    Listing,
    Problem,
    Segment,
    dataset_dir,
    list_segments,
    symbols_in,
    trades_dataset,
)
from services.market.trade_log import TradeRow, trade_rows
from services.market.views import TradeView

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_ROWS = 10_000_000
READ_ATTEMPTS = 50
RETRY_S = 0.01

CANDLE_INTERVALS_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}


class HistoryError(ValueError):
    """A history query that cannot be answered; ``status`` is the HTTP status to give."""

    def __init__(self, message: str, status: int = 400, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Coverage:
    """What is stored of one symbol's trades: ``ranges`` of continuous ids and the ``gaps``
    between them (id range, the times around it and why it is missing), plus the time span
    of the recorded book and of the candles."""

    market: str
    symbol: str
    kind: str
    ranges: tuple[dict, ...]
    gaps: tuple[dict, ...]
    trades: int
    bytes: int
    book_from_ms: int | None
    book_to_ms: int | None
    candles_from_ms: int | None
    candles_to_ms: int | None


class HistoryReader:
    """Range queries over the history under ``root``."""

    def __init__(
        self, root: Path, max_rows: int = DEFAULT_MAX_ROWS, use_aggregates: bool = True
    ) -> None:
        self.root = Path(root)
        self.max_rows = max_rows
        self.use_aggregates = use_aggregates  # False: always reduce the trade rows
        self.problems: dict[Path, Problem] = {}
        self._lock = threading.Lock()

    # -- what is there --------------------------------------------------------------------

    def symbols(self) -> list[tuple[str, str]]:
        """(market, symbol) pairs with any history."""
        return symbols_in(self.root)

    def market_of(self, symbol: str, prefer: str = "spot") -> str | None:
        """The market whose history holds ``symbol`` (``prefer`` when several do)."""
        markets = [m for m, s in self.symbols() if s == symbol.upper()]
        if not markets:
            return None
        return prefer if prefer in markets else markets[0]

    def trade_kinds(self, market: str, symbol: str) -> list[str]:
        """Trade kinds stored for the symbol, ``aggTrade`` first."""
        base = dataset_dir(self.root, market, symbol, "x").parent
        if not base.is_dir():
            return []
        kinds = [p.name.removeprefix(TRADES_PREFIX) for p in base.iterdir() if p.is_dir()
                 and p.name.startswith(TRADES_PREFIX)]  # fmt: skip
        return sorted(k for k in kinds if k in ("aggTrade", "trade"))

    def _listing(
        self,
        market: str,
        symbol: str,
        dataset: str,
        columns: dict[str, pl.DataType],
        start_ms: int | None,
        end_ms: int | None,
    ) -> Listing:
        listing = list_segments(self.root, market, symbol, dataset, columns, start_ms, end_ms)
        if listing.problems:
            with self._lock:
                for problem in listing.problems:
                    if problem.path not in self.problems:
                        log.warning("history: skipped %s file %s (%s)", problem.kind,
                                    problem.path, problem.detail)  # fmt: skip
                    self.problems[problem.path] = problem
        return listing

    def newest_trades(self, kind: str = "aggTrade") -> dict[tuple[str, str], tuple[int, int]]:
        """Per (market, symbol): the newest stored trade's id and the time (ms) of its
        segment's last row, from segment names alone (no file is read)."""
        newest: dict[tuple[str, str], tuple[int, int]] = {}
        for market, symbol in self.symbols():
            if kind not in self.trade_kinds(market, symbol):
                continue
            listing = self._listing(market, symbol, trades_dataset(kind), schema.TRADES, None, None)
            if listing.segments:
                last = max(listing.segments, key=lambda s: s.hi)
                newest[(market, symbol)] = (last.hi, last.t1)
        return newest

    # -- trades ---------------------------------------------------------------------------

    def resolve_kind(self, market: str, symbol: str, kind: str | None) -> str:
        kinds = self.trade_kinds(market, symbol)
        if kind is not None:
            if kind not in kinds:
                raise HistoryError(f"no {kind} history for {symbol}", 404, kinds=kinds)
            return kind
        if not kinds:
            raise HistoryError(f"no trade history for {symbol}", 404)
        return kinds[0]

    def _query(
        self,
        market: str,
        symbol: str,
        start_ms: int | None,
        end_ms: int | None,
        kind: str | None,
        answer: Callable[[str, pl.LazyFrame], T],
    ) -> T:
        """``answer(kind, scan)`` over the range's trades (``kind`` resolved once), listed
        and answered again when a listed segment vanished meanwhile (see ``retrying``)."""
        kind = self.resolve_kind(market, symbol, kind)
        dataset = trades_dataset(kind)

        def read() -> T:
            listing = self._listing(market, symbol, dataset, schema.TRADES, start_ms, end_ms)
            return answer(kind, self._trade_scan(listing.segments, start_ms, end_ms))

        return retrying(read)

    def trade_frame(
        self,
        market: str,
        symbol: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        kind: str | None = None,
    ) -> pl.DataFrame:
        """Trades in the range in id order, one row per id (``schema.TRADES`` columns).
        Raises ``HistoryError`` (413) when the range holds more than ``max_rows``."""
        return self._query(market, symbol, start_ms, end_ms, kind, lambda _, scan: scan.collect())

    def _trade_scan(
        self, segments: list[Segment], start_ms: int | None, end_ms: int | None
    ) -> pl.LazyFrame:
        """A lazy scan of the segments' trades in the range, id order, one row per id."""
        if not segments:
            return pl.LazyFrame(schema=dict(schema.TRADES.items()))
        segments = sorted(segments, key=lambda s: (s.lo, s.hi))
        upper_bound = sum(s.hi - s.lo + 1 for s in segments)
        overlap = any(b.lo <= a.hi for a, b in itertools.pairwise(segments))
        scan = pl.scan_parquet([s.path for s in segments], schema=schema.TRADES)
        scan = _time_filter(scan, "time_ms", start_ms, end_ms, 1)
        if upper_bound > self.max_rows:
            count = scan.select(pl.len()).collect().item()
            if count > self.max_rows:
                raise HistoryError(
                    f"the range holds {count} trades, more than the limit of {self.max_rows}; "
                    "ask for a shorter range",
                    413,
                    limit=self.max_rows,
                    trades=count,
                )
        if overlap:
            scan = scan.unique(subset="trade_id", keep="first").sort("trade_id")
        return scan

    def trade_scan(
        self,
        market: str,
        symbol: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        kind: str | None = None,
    ) -> pl.LazyFrame:
        """The range's trades as a lazy frame, for aggregations that need not load them."""
        return self._query(market, symbol, start_ms, end_ms, kind, lambda _, scan: scan)

    def trades(
        self,
        market: str,
        symbol: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        kind: str | None = None,
    ) -> TradeView:
        """The range as a ``TradeView`` (what the analytics take)."""
        name = symbol.upper()
        return self._query(market, symbol, start_ms, end_ms, kind,
                           lambda kind, scan: trade_view(name, kind, scan.collect()))  # fmt: skip

    def stats(
        self,
        market: str,
        symbol: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        kind: str | None = None,
    ) -> dict[str, object]:
        """Exact figures of the range: trade count, volume, buy and sell volume (decimal
        strings, summed in fixed point), quote volume and VWAP (floats: Σ price·qty and
        quote volume / volume), high, low, first and last trade id and time."""
        kind, minutes = self._partials(market, symbol, start_ms, end_ms, kind, aggregates.MINUTES)
        return stats_of(symbol.upper(), kind, minutes)

    def price_levels(
        self,
        market: str,
        symbol: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        kind: str | None = None,
    ) -> PriceLevels:
        """The range's trades summed per (price, taker side): see ``price_levels_of``."""
        kind, levels = self._partials(market, symbol, start_ms, end_ms, kind, aggregates.PRICES)
        return price_levels_of(symbol.upper(), kind, levels)

    def _partials(
        self,
        market: str,
        symbol: str,
        start_ms: int | None,
        end_ms: int | None,
        kind: str | None,
        which: aggregates.Partials,
    ) -> tuple[str, pl.DataFrame]:
        """The range's trades as combined ``which`` partials (``aggregates.MINUTES`` or
        ``PRICES``): the stored aggregates of the segments wholly inside the range, the
        rows of the others reduced alike (see ``services.history.aggregates``). Minute
        partials of a segment the range cuts come from its aggregate too, for the minutes
        wholly inside the range: only the rows of the (at most two) edge minutes are read."""
        kind = self.resolve_kind(market, symbol, kind)
        dataset, columns = which.dataset(kind), which.columns
        reduce, combine = which.reduce, which.combine
        by_minute = which is aggregates.MINUTES

        def read() -> pl.DataFrame:
            segments = self._listing(
                market, symbol, trades_dataset(kind), schema.TRADES, start_ms, end_ms
            ).segments
            stored = self._aggregated(market, symbol, dataset, columns, segments, start_ms,
                                      end_ms, by_minute)  # fmt: skip
            inside = {s.path.name for s in segments if _within(s, start_ms, end_ms)}
            whole = [p for name, p in stored.items() if name in inside]
            cut = [s for s in segments if s.path.name in stored and s.path.name not in inside]
            rest = [s for s in segments if s.path.name not in stored]
            parts = [reduce(self._trade_scan(rest, start_ms, end_ms))] if rest else []
            if whole:
                parts.append(pl.scan_parquet(whole, schema=columns))
            if cut:
                parts += self._cut_minutes(cut, stored, start_ms, end_ms)
            if not parts:
                return pl.DataFrame(schema=columns)
            return combine(pl.concat(parts)).collect(engine="streaming")

        return kind, retrying(read)

    def _aggregated(
        self,
        market: str,
        symbol: str,
        dataset: str,
        columns: dict[str, pl.DataType],
        segments: list[Segment],
        start_ms: int | None,
        end_ms: int | None,
        cut_too: bool = False,
    ) -> dict[str, Path]:
        """Segment file name → its aggregate file, for the segments wholly inside the range
        (``cut_too``: every listed segment) that have one; none when segments overlap (a
        compaction in progress)."""
        if not self.use_aggregates or not segments:
            return {}
        ordered = sorted(segments, key=lambda s: (s.lo, s.hi))
        if any(b.lo <= a.hi for a, b in itertools.pairwise(ordered)):
            return {}
        wanted = {s.path.name for s in segments if cut_too or _within(s, start_ms, end_ms)}
        if not wanted:
            return {}
        listing = self._listing(market, symbol, dataset, columns, start_ms, end_ms)
        return {a.path.name: a.path for a in listing.segments if a.path.name in wanted}

    def _cut_minutes(
        self,
        cut: list[Segment],
        stored: dict[str, Path],
        start_ms: int | None,
        end_ms: int | None,
    ) -> list[pl.LazyFrame]:
        """Minute partials of segments the range cuts: their aggregates' rows of the
        minutes wholly inside [``start_ms``, ``end_ms``], and their trade rows of the edge
        minutes (each edge one time range, so Parquet row-group statistics skip the rest)
        reduced alike."""
        minute = aggregates.MINUTE_MS
        first = -(-start_ms // minute) * minute if start_ms is not None else None
        stop = (end_ms + 1) // minute * minute if end_ms is not None else None
        agg = pl.scan_parquet([stored[s.path.name] for s in cut],
                              schema=aggregates.MINUTE_COLUMNS)  # fmt: skip
        if first is not None:
            agg = agg.filter(pl.col("open_ms") >= first)
        if stop is not None:
            agg = agg.filter(pl.col("open_ms") < stop)
        if first is not None and stop is not None and first >= stop:
            edges = [(start_ms, end_ms)]  # no whole minute inside: every row is an edge's
        else:
            edges = []
            if start_ms is not None and first is not None and first > start_ms:
                edges.append((start_ms, first - 1))
            if end_ms is not None and stop is not None and stop <= end_ms:
                edges.append((stop, end_ms))
        parts = [agg]
        for lo, hi in edges:
            parts.append(aggregates.minute_partials(self._trade_scan(cut, lo, hi)))
        return parts

    # -- candles --------------------------------------------------------------------------

    def candles(
        self,
        market: str,
        symbol: str,
        interval: str = "1m",
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> pl.DataFrame:
        """Candles of ``interval``: ``open_ms``, open/high/low/close, ``volume``,
        ``buy_volume`` (taker buys), ``sell_volume``, ``delta`` = buy − sell and ``trades``.

        Built from the stored trades wherever there are any (exact, with counts); minutes
        without stored trades come from stored 1-minute klines (stream or REST backfill;
        their delta is 2·taker-buy − volume, their count −1 when unknown)."""
        if interval not in CANDLE_INTERVALS_MS:
            raise HistoryError(
                f"interval must be one of {', '.join(CANDLE_INTERVALS_MS)}", 400,
                parameter="interval",
            )  # fmt: skip
        step = CANDLE_INTERVALS_MS[interval]
        minute = 60_000
        parts = []
        if self.trade_kinds(market, symbol):
            _, minutes = self._partials(market, symbol, start_ms, end_ms, None, aggregates.MINUTES)
            bars = minute_bars(minutes)
            if bars.height:
                parts.append(bars)
        klines = retrying(lambda: self.kline_frame(market, symbol, start_ms, end_ms))
        if klines.height:
            parts.append(klines)
        if not parts:
            return _empty_candles()
        bars = pl.concat(parts, how="vertical")
        bars = bars.unique(subset="open_ms", keep="first", maintain_order=True)
        bars = bars.sort("open_ms")
        if step != minute:
            bars = (
                bars.with_columns((pl.col("open_ms") // step * step).alias("open_ms"))
                .group_by("open_ms", maintain_order=True)
                .agg(
                    pl.col("open").first(),
                    pl.col("high").max(),
                    pl.col("low").min(),
                    pl.col("close").last(),
                    pl.col("volume").sum(),
                    pl.col("buy_volume").sum(),
                    pl.col("trades").sum(),
                )
            )
        return bars.with_columns(
            (pl.col("volume") - pl.col("buy_volume")).alias("sell_volume"),
            (2 * pl.col("buy_volume") - pl.col("volume")).alias("delta"),
        ).select(
            "open_ms", "open", "high", "low", "close", "volume", "buy_volume",
            "sell_volume", "delta", "trades",
        )  # fmt: skip

    def kline_frame(
        self, market: str, symbol: str, start_ms: int | None, end_ms: int | None
    ) -> pl.DataFrame:
        """Stored 1-minute klines as minute bars (latest row per minute, closed first)."""
        listing = self._listing(market, symbol, CANDLES_1M, schema.CANDLES, start_ms, end_ms)
        if not listing.segments:
            return _empty_candles()
        scan = pl.scan_parquet([s.path for s in listing.segments], schema=schema.CANDLES)
        scan = scan.with_columns((pl.col("open_ms") // 60_000 * 60_000).alias("open_ms"))
        if start_ms is not None:
            scan = scan.filter(pl.col("open_ms") >= start_ms // 60_000 * 60_000)
        if end_ms is not None:
            scan = scan.filter(pl.col("open_ms") <= end_ms)
        e8 = schema.SCALE
        frame = (
            scan.with_row_index("row")
            .sort(["open_ms", "closed", "row"], descending=[False, True, True])
            .unique(subset="open_ms", keep="first", maintain_order=True)
            .select(
                "open_ms",
                (pl.col("open_e8") / e8).round(8).alias("open"),
                (pl.col("high_e8") / e8).round(8).alias("high"),
                (pl.col("low_e8") / e8).round(8).alias("low"),
                (pl.col("close_e8") / e8).round(8).alias("close"),
                (pl.col("volume_e8") / e8).round(8).alias("volume"),
                (pl.col("taker_buy_e8") / e8).round(8).alias("buy_volume"),
                pl.col("trades"),
            )
            .collect()
        )
        return frame

    # -- book ------------------------------------------------------------------------------

    def book_top(
        self, market: str, symbol: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> pl.DataFrame:
        """Best bid/ask changes and LIVE-state changes in the range, time order."""
        return retrying(lambda: self._book_top(market, symbol, start_ms, end_ms))

    def _book_top(
        self, market: str, symbol: str, start_ms: int | None, end_ms: int | None
    ) -> pl.DataFrame:
        listing = self._listing(market, symbol, BOOK_TOP, schema.BOOK_TOP, start_ms, end_ms)
        if not listing.segments:
            return pl.DataFrame(schema=schema.BOOK_TOP)
        scan = pl.scan_parquet([s.path for s in listing.segments], schema=schema.BOOK_TOP)
        return _time_filter(scan, "time_ms", start_ms, end_ms, 1).sort("time_ms").collect()

    def book_grid(
        self, market: str, symbol: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> pl.DataFrame:
        """Recorded heatmap cells in the range: ``time_s``, ``side``, ``price`` (bucket's
        lower price), ``bucket_size`` and ``max_qty`` (floats), one row per cell."""
        return retrying(lambda: self._book_grid(market, symbol, start_ms, end_ms))

    def _book_grid(
        self, market: str, symbol: str, start_ms: int | None, end_ms: int | None
    ) -> pl.DataFrame:
        listing = self._listing(market, symbol, BOOK_GRID, schema.BOOK_GRID, start_ms, end_ms)
        if not listing.segments:
            return pl.DataFrame(
                schema={
                    "time_s": pl.Int64,
                    "side": pl.Int8,
                    "price": pl.Float64,
                    "bucket_size": pl.Float64,
                    "max_qty": pl.Float64,
                }
            )
        scan = pl.scan_parquet([s.path for s in listing.segments], schema=schema.BOOK_GRID)
        e8 = schema.SCALE
        return (
            _time_filter(scan, "time_s", start_ms, end_ms, 1000)
            .group_by(["time_s", "side", "bucket", "bucket_e8"])
            .agg(pl.col("max_qty_e8").max())
            .sort(["time_s", "side", "bucket"])
            .select(
                "time_s",
                "side",
                (pl.col("bucket") * pl.col("bucket_e8") / e8).round(8).alias("price"),
                (pl.col("bucket_e8") / e8).round(8).alias("bucket_size"),
                (pl.col("max_qty_e8") / e8).round(8).alias("max_qty"),
            )
            .collect()
        )

    # -- coverage -------------------------------------------------------------------------

    def coverage(self, market: str, symbol: str, kind: str | None = None) -> Coverage:
        """Stored id ranges, gaps between them and the book/candle spans of a symbol."""
        kind = self.resolve_kind(market, symbol, kind)
        listing = self._listing(market, symbol, trades_dataset(kind), schema.TRADES, None, None)
        ranges = merged_ranges(listing.segments)
        recorded = self.recorded_gaps(market, symbol)
        gaps = []
        for before, after in itertools.pairwise(ranges):
            first, last = before["last_id"] + 1, after["first_id"] - 1
            reason = next(
                (g["reason"] for g in recorded if g["first_id"] <= first and g["last_id"] >= last),
                "not backfilled (yet)",
            )
            gaps.append({"first_id": first, "last_id": last, "from_ms": before["to_ms"],
                         "to_ms": after["from_ms"], "trades": last - first + 1,
                         "reason": reason})  # fmt: skip
        book = self._listing(market, symbol, BOOK_TOP, schema.BOOK_TOP, None, None).segments
        candles = self._listing(market, symbol, CANDLES_1M, schema.CANDLES, None, None).segments
        return Coverage(
            market=market,
            symbol=symbol.upper(),
            kind=kind,
            ranges=tuple(ranges),
            gaps=tuple(gaps),
            trades=sum(r["trades"] for r in ranges),
            bytes=sum(s.bytes for s in listing.segments),
            book_from_ms=min((s.t0 for s in book), default=None),
            book_to_ms=max((s.t1 for s in book), default=None),
            candles_from_ms=min((s.t0 for s in candles), default=None),
            candles_to_ms=max((s.t1 for s in candles), default=None),
        )

    def recorded_gaps(self, market: str, symbol: str) -> list[dict]:
        """Gap records (id ranges the backfill could not fill, and why)."""

        def read() -> list[dict]:
            listing = self._listing(market, symbol, GAPS, schema.GAPS, None, None)
            if not listing.segments:
                return []
            return pl.read_parquet([s.path for s in listing.segments]).to_dicts()

        return retrying(read)


def recent_trade_rows(
    reader: HistoryReader, market: str, symbol: str, kind: str, since_ms: int
) -> list[TradeRow]:
    """Stored trades at or after ``since_ms`` as trade-log rows (id, time, price, qty,
    buyer is maker); empty when the symbol has no history of that kind."""
    if kind not in reader.trade_kinds(market, symbol):
        return []
    return trade_rows(reader.trades(market, symbol, since_ms, None, kind))


def retrying(read: Callable[[], T]) -> T:
    """``read()``, listed and read again when a listed segment vanished meanwhile (the
    compactor swapped it for the merged one), up to ``READ_ATTEMPTS`` times."""
    for attempt in range(READ_ATTEMPTS):
        try:
            return read()
        except FileNotFoundError:
            if attempt == READ_ATTEMPTS - 1:
                raise
            time.sleep(RETRY_S)
    raise AssertionError("unreachable")


def merged_ranges(segments: list[Segment]) -> list[dict]:
    """Segments' id ranges merged where they touch or overlap: continuous stored ids."""
    ranges: list[dict] = []
    for s in sorted(segments, key=lambda s: (s.lo, s.hi)):
        if ranges and s.lo <= ranges[-1]["last_id"] + 1:
            last = ranges[-1]
            if s.hi > last["last_id"]:
                last["last_id"] = s.hi
                last["to_ms"] = max(last["to_ms"], s.t1)
            last["from_ms"] = min(last["from_ms"], s.t0)
        else:
            ranges.append({"first_id": s.lo, "last_id": s.hi, "from_ms": s.t0, "to_ms": s.t1})
    for r in ranges:
        r["trades"] = r["last_id"] - r["first_id"] + 1
    return ranges


@dataclass(frozen=True, slots=True)
class PriceLevels:
    """A range's trades summed per (price, taker side), in a streaming pass that never
    materialises the trades: ``volume`` is a ``TradeView`` with one row per level (qty = the
    level's summed quantity, side ±1, time 0) and ``counts`` the same rows with qty = the
    number of trades at that level. Every analytic that only adds quantities by price
    (the volume profile) gives the same rows over ``volume`` as over the trades; run over
    ``counts`` it gives trades per row. ``trades``: the number of trades in the range."""

    volume: TradeView
    counts: TradeView
    trades: int


def price_levels_of(symbol: str, kind: str, levels: pl.DataFrame) -> PriceLevels:
    """``PriceLevels`` of combined price partials (``key`` = price_e8 · 2 + buyer is maker,
    ``qty_e8``, ``trades``; see ``services.history.aggregates``)."""
    n = levels.height
    key = levels["key"].to_numpy()
    price = schema.from_e8(key // 2)
    side = np.where(key % 2 == 1, -1.0, 1.0)
    counts = levels["trades"].to_numpy().astype(np.float64)

    def view(qty: np.ndarray) -> TradeView:
        return TradeView(symbol=symbol, trade_id=np.arange(n, dtype=np.int64),
                         time_ms=np.zeros(n, np.int64), price=price, qty=qty, side=side,
                         kind=kind)  # fmt: skip

    return PriceLevels(
        volume=view(schema.from_e8(levels["qty_e8"].to_numpy())),
        counts=view(counts),
        trades=int(counts.sum()),
    )


def trade_view(symbol: str, kind: str, frame: pl.DataFrame) -> TradeView:
    """Stored trade rows as a ``TradeView`` (side +1 taker buy, −1 taker sell)."""
    maker = frame["buyer_maker"].to_numpy()
    return TradeView(
        symbol=symbol,
        trade_id=frame["trade_id"].to_numpy(),
        time_ms=frame["time_ms"].to_numpy(),
        price=schema.from_e8(frame["price_e8"].to_numpy()),
        qty=schema.from_e8(frame["qty_e8"].to_numpy()),
        side=np.where(maker, -1.0, 1.0),
        kind=kind,
    )


def stats_of(symbol: str, kind: str, minutes: pl.DataFrame) -> dict[str, object]:
    """``history stats`` figures from combined minute partials (see ``HistoryReader.stats``
    and ``services.history.aggregates``)."""
    if not minutes.height or not int(minutes["trades"].sum()):
        return {"symbol": symbol, "kind": kind, "trades": 0}
    volume, buy = int(minutes["volume_e8"].sum()), int(minutes["buy_e8"].sum())
    quote = float(minutes["quote"].sum()) / schema.SCALE / schema.SCALE
    return {
        "symbol": symbol,
        "kind": kind,
        "trades": int(minutes["trades"].sum()),
        "volume": schema.e8_text(volume),
        "buy_volume": schema.e8_text(buy),
        "sell_volume": schema.e8_text(volume - buy),
        "quote_volume": quote,
        "vwap": quote / (volume / schema.SCALE) if volume else None,
        "high": schema.e8_text(int(minutes["high_e8"].max())),  # type: ignore[arg-type]
        "low": schema.e8_text(int(minutes["low_e8"].min())),  # type: ignore[arg-type]
        "first_trade_id": int(minutes["first_id"][0]),
        "last_trade_id": int(minutes["last_id"][-1]),
        "first_time_ms": int(minutes["first_ms"][0]),
        "last_time_ms": int(minutes["last_ms"][-1]),
        "buyer_maker_count": int(minutes["maker_trades"].sum()),
    }


def minute_bars(minutes: pl.DataFrame) -> pl.DataFrame:
    """1-minute bars of combined minute partials: OHLC, volume, taker-buy volume, count."""
    e8 = schema.SCALE
    return minutes.select(
        "open_ms",
        *((pl.col(f"{name}_e8") / e8).round(8).alias(name) for name in ("open", "high", "low",
                                                                        "close", "volume")),
        (pl.col("buy_e8") / e8).round(8).alias("buy_volume"),
        pl.col("trades"),
    )  # fmt: skip


def _empty_candles() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "open_ms": pl.Int64,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
            "buy_volume": pl.Float64,
            "trades": pl.Int64,
        }
    )


def _within(segment: Segment, start_ms: int | None, end_ms: int | None) -> bool:
    """Whether every row of the segment lies in [``start_ms``, ``end_ms``]."""
    return (start_ms is None or segment.t0 >= start_ms) and (end_ms is None or segment.t1 <= end_ms)


def _time_filter(
    scan: pl.LazyFrame, column: str, start_ms: int | None, end_ms: int | None, unit_ms: int
) -> pl.LazyFrame:
    if start_ms is not None:
        scan = scan.filter(pl.col(column) >= start_ms // unit_ms)
    if end_ms is not None:
        scan = scan.filter(pl.col(column) <= end_ms // unit_ms)
    return scan
