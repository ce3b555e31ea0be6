"""Compaction: the writer's small segments (one per dataset per second) merged into one per
hour, so a day of a symbol is a few dozen files instead of tens of thousands.

Per dataset and date directory, segments whose first row falls in the same UTC hour are
merged — for trades only runs of segments whose id ranges touch or overlap (a segment's
name claims every id from ``lo`` to ``hi``, so a merge never spans a hole). The merged
segment is written first (atomically, writer id ``c…``), then its sources are deleted: a
reader that listed the sources either still reads them, or finds one gone and lists again,
or sees the merged file beside them and de-duplicates by trade id (``reader`` module).
Then settled trade segments get their aggregates (``services.history.aggregates``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import polars as pl

from services.history.aggregates import aggregate_segments
from services.history.book_pyramid import BOOK_GRID_1M
from services.history.segments import (
    ALERT_EVENTS,
    BOOK_GRID,
    BOOK_TOP,
    CANDLES_1M,
    GAPS,
    TRADES_PREFIX,
    Segment,
    WriterId,
    list_segments,
    symbols_in,
    trades_dataset,
    write_segment,
)
from services.history.writer import columns_of

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DATASETS = (trades_dataset("aggTrade"), trades_dataset("trade"), BOOK_GRID, BOOK_TOP, CANDLES_1M,
            GAPS, BOOK_GRID_1M, ALERT_EVENTS)  # fmt: skip


@dataclass(slots=True)
class CompactionReport:
    """merged: segments merged away; written: merged segments written; bytes_before/after:
    sizes of the sources and of what replaced them; aggregated: trade segments given their
    per-minute and per-price aggregates (``services.history.aggregates``)."""

    merged: int = 0
    written: int = 0
    aggregated: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def mergeable_runs(segments: list[Segment], trades: bool) -> list[list[Segment]]:
    """Groups of ≥ 2 segments to merge: same UTC hour of ``t0``; for trades, also a chain
    of touching or overlapping id ranges."""
    runs: list[list[Segment]] = []
    for _, group in groupby(
        sorted(segments, key=lambda s: s.t0 // HOUR_MS), lambda s: s.t0 // HOUR_MS
    ):
        members = list(group)
        if not trades:
            runs.append(members)
            continue
        members.sort(key=lambda s: (s.lo, s.hi))
        chain: list[Segment] = []
        hi = 0  # the chain's highest id
        for segment in members:
            if chain and segment.lo > hi + 1:
                runs.append(chain)
                chain = []
            hi = max(hi, segment.hi) if chain else segment.hi
            chain.append(segment)
        runs.append(chain)
    return [run for run in runs if len(run) > 1]


def compact(root: Path, writer_id: WriterId | None = None) -> CompactionReport:
    """Merge the small segments of every dataset under ``root`` (see module doc)."""
    writer_id = writer_id or WriterId("c")
    report = CompactionReport()
    for market, symbol in symbols_in(root):
        for dataset in DATASETS:
            columns = columns_of(dataset)
            listing = list_segments(root, market, symbol, dataset, columns)
            trades = dataset.startswith(TRADES_PREFIX)
            for run in mergeable_runs(listing.segments, trades):
                try:
                    _merge(root, market, symbol, dataset, run, columns, trades, writer_id, report)
                except FileNotFoundError:
                    continue  # another compactor got there first
        for kind in ("aggTrade", "trade"):
            report.aggregated += aggregate_segments(root, market, symbol, kind)
    if report.merged:
        log.info("history compaction: %d segments into %d (%d → %d bytes)", report.merged,
                 report.written, report.bytes_before, report.bytes_after)  # fmt: skip
    return report


def _merge(
    root: Path,
    market: str,
    symbol: str,
    dataset: str,
    run: list[Segment],
    columns: dict[str, pl.DataType],
    trades: bool,
    writer_id: WriterId,
    report: CompactionReport,
) -> None:
    before = sum(s.bytes for s in run)
    frame = pl.read_parquet([s.path for s in run], schema=columns)
    if trades:
        frame = frame.unique(subset="trade_id", keep="first").sort("trade_id")
        lo, hi = int(frame["trade_id"][0]), int(frame["trade_id"][-1])
    else:
        frame = frame.sort(next(iter(columns)), maintain_order=True)
        lo = hi = 0
    segment = write_segment(
        root, market, symbol, dataset, frame,
        t0=min(s.t0 for s in run), t1=max(s.t1 for s in run), lo=lo, hi=hi,
        writer=writer_id.next(),
    )  # fmt: skip
    for source in run:
        source.path.unlink(missing_ok=True)
    report.merged += len(run)
    report.written += 1
    report.bytes_before += before
    report.bytes_after += segment.bytes
