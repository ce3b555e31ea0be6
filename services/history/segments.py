"""Segments: the immutable Parquet files the history store is made of, and where they live.

Layout under the history root (one directory per thing a range query needs, so a query for
one symbol and a few days reads only those days' files)::

    {root}/{market}/{SYMBOL}/{dataset}/{YYYY-MM-DD}/{t0}_{t1}_{lo}_{hi}_{writer}.parquet

- ``market``: ``spot`` or ``usdm``; ``dataset``: ``trades-aggTrade``, ``trades-trade``,
  ``book-grid``, ``book-top``, ``candles-1m`` or ``gaps``;
- the date directory is the UTC day of the segment's first row;
- ``t0``/``t1``: first and last row time (ms) — a reader prunes files outside its range by
  name alone; ``lo``/``hi``: first and last trade id (0 for datasets without ids);
- ``writer``: the writing process's id plus a per-writer sequence number, so several
  ingest processes (or a compactor) never write the same file name.

A segment is written to ``.<name>.tmp`` beside its final place, flushed to disk and renamed
(an atomic step on POSIX): a reader sees a whole file or none; a kill -9 leaves at most a
``.tmp`` file that readers ignore and the next writer removes. Anything else in the tree (a
name that does not parse, a file whose Parquet footer cannot be read or whose columns are
not the dataset's) is reported as foreign or corrupt and skipped, never read.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

TRADES_PREFIX = "trades-"
BOOK_GRID = "book-grid"
BOOK_TOP = "book-top"
CANDLES_1M = "candles-1m"
GAPS = "gaps"
ALERT_EVENTS = "alert-events"  # written by services.alerts.archive; lo/hi: event ids

_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)_([A-Za-z0-9.-]+)\.parquet$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DAY_MS = 86_400_000


def trades_dataset(kind: str) -> str:
    """The dataset name of trades of ``kind`` (``aggTrade`` or ``trade``): their ids are
    different sequences, so they never share files."""
    if kind not in ("aggTrade", "trade"):
        raise ValueError(f"trade kind must be aggTrade or trade, not {kind!r}")
    return TRADES_PREFIX + kind


@dataclass(frozen=True, slots=True, order=True)
class Segment:
    """One segment file, described by its name (no I/O)."""

    t0: int
    t1: int
    lo: int
    hi: int
    writer: str
    path: Path

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size


def segment_name(t0: int, t1: int, lo: int, hi: int, writer: str) -> str:
    return f"{t0}_{t1}_{lo}_{hi}_{writer}.parquet"


def parse_segment(path: Path) -> Segment | None:
    """The segment a file name describes, or None for a name that is not one."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    t0, t1, lo, hi = (int(match.group(i)) for i in range(1, 5))
    if t1 < t0 or hi < lo:
        return None
    return Segment(t0, t1, lo, hi, match.group(5), path)


def day_of(time_ms: int) -> str:
    """The UTC date (``YYYY-MM-DD``) of a time in ms."""
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def day_start_ms(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)


class WriterId:
    """A process-unique writer id (``{prefix}{host}-{pid}-{n}``) with a sequence number per
    segment. The compactor's ids start with ``c``, an ingest writer's with ``w``."""

    def __init__(self, prefix: str = "w") -> None:
        host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:12] or "host"
        self.base = f"{prefix}{host}-{os.getpid()}-{os.urandom(2).hex()}"
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            return f"{self.base}.{next(self._seq)}"


def dataset_dir(root: Path, market: str, symbol: str, dataset: str) -> Path:
    return root / market / symbol.upper() / dataset


def write_segment(
    root: Path,
    market: str,
    symbol: str,
    dataset: str,
    frame: pl.DataFrame,
    *,
    t0: int,
    t1: int,
    lo: int,
    hi: int,
    writer: str,
) -> Segment:
    """Write ``frame`` as one segment, atomically (temp file, fsync, rename)."""
    directory = dataset_dir(root, market, symbol, dataset) / day_of(t0)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / segment_name(t0, t1, lo, hi, writer)
    temp = directory / f".{final.name}.tmp"
    frame.write_parquet(temp, compression="zstd", compression_level=9, statistics=True)
    with open(temp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(temp, final)
    _fsync_dir(directory)
    return Segment(t0, t1, lo, hi, writer, final)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Problem:
    """A file the store skipped: ``foreign`` (not a segment name) or ``corrupt``."""

    path: Path
    kind: str
    detail: str


@dataclass
class Listing:
    """Segments of one dataset (sorted by ``t0``, ``lo``) and the files skipped."""

    segments: list[Segment]
    problems: list[Problem]


_VALID: dict[tuple[Path, int, int], bool] = {}
_VALID_LOCK = threading.Lock()
_VALID_MAX = 50_000
"""Footers remembered at most: entries of compacted or deleted segments are never asked
again, so the memo is emptied when full (re-checking costs one footer read per segment)."""


def _schema_problem(path: Path, columns: dict[str, pl.DataType]) -> str:
    """'' when ``path``'s footer reads and has ``columns`` with their types, else why not.
    The answer is remembered per (path, size, mtime): a segment never changes."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "vanished"
    key = (path, stat.st_size, stat.st_mtime_ns)
    with _VALID_LOCK:
        if _VALID.get(key):
            return ""
    try:
        schema = pl.read_parquet_schema(path)
    except FileNotFoundError:
        return "vanished"
    except Exception as exc:  # any unreadable footer is corrupt, whatever polars raises
        return f"unreadable Parquet: {type(exc).__name__}: {exc}"[:300]
    for name, dtype in columns.items():
        if schema.get(name) != dtype:
            return f"column {name} is {schema.get(name)}, expected {dtype}"
    with _VALID_LOCK:
        if len(_VALID) >= _VALID_MAX:
            _VALID.clear()
        _VALID[key] = True
    return ""


def list_segments(
    root: Path,
    market: str,
    symbol: str,
    dataset: str,
    columns: dict[str, pl.DataType],
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Listing:
    """The dataset's valid segments overlapping ``[start_ms, end_ms]`` (all without bounds),
    and the foreign or corrupt files met on the way. Only the date directories that can
    hold rows of the range are opened."""
    base = dataset_dir(root, market, symbol, dataset)
    segments: list[Segment] = []
    problems: list[Problem] = []
    for day_dir in _day_dirs(base, start_ms, end_ms, problems):
        for path in sorted(day_dir.iterdir()):
            if path.name.startswith("."):
                continue  # a segment being written (or left by a crash)
            segment = parse_segment(path)
            if segment is None:
                problems.append(Problem(path, "foreign", "not a segment file name"))
                continue
            if not path.is_file():
                if path.exists():
                    problems.append(Problem(path, "foreign", "not a file"))
                continue  # else compacted away since the directory was read
            if start_ms is not None and segment.t1 < start_ms:
                continue
            if end_ms is not None and segment.t0 > end_ms:
                continue
            why = _schema_problem(path, columns)
            if why == "vanished":
                continue  # compacted away since the directory was read
            if why:
                problems.append(Problem(path, "corrupt", why))
                continue
            segments.append(segment)
    segments.sort(key=lambda s: (s.t0, s.lo, s.writer))
    return Listing(segments, problems)


def _day_dirs(
    base: Path, start_ms: int | None, end_ms: int | None, problems: list[Problem]
) -> Iterator[Path]:
    if not base.is_dir():
        return
    for entry in sorted(base.iterdir()):
        if entry.name.startswith("."):
            continue
        if not (_DATE.match(entry.name) and entry.is_dir()):
            problems.append(Problem(entry, "foreign", "not a date directory"))
            continue
        day0 = day_start_ms(entry.name)
        # A segment lives under its first row's day but may run past midnight.
        if end_ms is not None and day0 > end_ms:
            continue
        if start_ms is not None and day0 + 2 * DAY_MS <= start_ms:
            continue
        yield entry


def symbols_in(root: Path) -> list[tuple[str, str]]:
    """(market, symbol) pairs that have a directory under ``root``."""
    if not root.is_dir():
        return []
    found = []
    for market_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if market_dir.name.startswith("."):
            continue
        for symbol_dir in sorted(p for p in market_dir.iterdir() if p.is_dir()):
            found.append((market_dir.name, symbol_dir.name))
    return found


def remove_temp_files(root: Path) -> int:
    """Delete ``.tmp`` files a crashed writer left; returns how many."""
    removed = 0
    if root.is_dir():
        for path in root.rglob(".*.tmp"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
