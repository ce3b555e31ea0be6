"""Retention: history older than ``max_days`` and, beyond ``max_bytes`` in total, the oldest
segments are deleted — oldest first by the time of their last row, whatever the dataset or
symbol — and what was deleted is reported. The per-minute and per-price aggregates of a
trade segment (``aggregates``: same name, sibling datasets) count in the total like any
file and go with their segment: they sort right after it (same times) and are deleted
whenever it is, never left behind as orphans."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from services.history.aggregates import aggregate_datasets
from services.history.compaction import DATASETS
from services.history.segments import (
    DAY_MS,
    TRADES_PREFIX,
    Segment,
    list_segments,
    symbols_in,
)
from services.history.writer import columns_of

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RetentionReport:
    """deleted: segments removed (oldest first); bytes_freed; bytes_kept: what remains;
    oldest_kept_ms: time of the oldest row still stored (None when nothing is)."""

    deleted: list[Path] = field(default_factory=list)
    bytes_freed: int = 0
    bytes_kept: int = 0
    oldest_kept_ms: int | None = None


def all_segments(root: Path) -> list[Segment]:
    """Every valid segment under ``root`` (aggregates included), oldest last row first, a
    trade segment's aggregates right after it."""
    aggregates = aggregate_datasets()
    segments: list[tuple[Segment, bool]] = []
    for market, symbol in symbols_in(root):
        for dataset in DATASETS:
            listing = list_segments(root, market, symbol, dataset, columns_of(dataset))
            segments += [(s, False) for s in listing.segments]
        for dataset, (_, columns) in aggregates.items():
            listing = list_segments(root, market, symbol, dataset, columns)
            segments += [(s, True) for s in listing.segments]
    segments.sort(key=lambda item: (item[0].t1, item[0].t0, item[1]))
    return [s for s, _ in segments]


def apply_retention(
    root: Path, now_ms: int | None, max_days: float | None = None, max_bytes: int | None = None
) -> RetentionReport:
    """Delete segments whose last row is older than ``max_days`` before ``now_ms``, then the
    oldest until the total is at most ``max_bytes``. ``now_ms`` None: the time of the newest
    stored trade (of any row when no trades are stored) — the market's time: the wall
    clock's for a live feed, the recording's for a replay or an import (a replay plays at
    the recording's own time, so age against the wall clock would delete what it just
    recorded)."""
    report = RetentionReport()
    segments = all_segments(root)
    if now_ms is None:
        trades = [s.t1 for s in segments if s.path.parent.parent.name.startswith(TRADES_PREFIX)]
        now_ms = max(trades or [s.t1 for s in segments] or [0])
    sizes = {s.path: s.bytes for s in segments}
    total = sum(sizes.values())
    cutoff = now_ms - int(max_days * DAY_MS) if max_days is not None else None
    aggregates = aggregate_datasets()
    gone: set[tuple[Path, str, str]] = set()  # deleted trade segments: (symbol dir, dataset, name)
    kept = []
    for segment in segments:
        path = segment.path
        dataset = path.parent.parent.name
        owner = aggregates.get(dataset)
        orphan = owner is not None and (path.parents[2], owner[0], path.name) in gone
        too_old = cutoff is not None and segment.t1 < cutoff
        too_big = max_bytes is not None and total > max_bytes
        if too_old or too_big or orphan:
            if dataset.startswith(TRADES_PREFIX):
                gone.add((path.parents[2], dataset, path.name))
            segment.path.unlink(missing_ok=True)
            report.deleted.append(segment.path)
            report.bytes_freed += sizes[segment.path]
            total -= sizes[segment.path]
            _remove_empty_parents(segment.path.parent, root)
        else:
            kept.append(segment)
    report.bytes_kept = total
    report.oldest_kept_ms = min((s.t0 for s in kept), default=None)
    if report.deleted:
        log.info("history retention: deleted %d segments (%d bytes), %d bytes kept",
                 len(report.deleted), report.bytes_freed, total)  # fmt: skip
    return report


def _remove_empty_parents(directory: Path, root: Path) -> None:
    while directory != root and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
