"""The market board when several workers share the market: each worker publishes the whole
board (every TRADING symbol's ticker figures, from the all-market stream), but only it has
the book columns — spread, liquidity score, sync state — of the symbols whose shards it
holds. The boards are kept per worker and merged on read.

Writer side (one worker), ``stamp_rows``:

- the book columns of symbols the worker does not own are cleared, so a worker still
  streaming a shard it just lost (``keep_s``) never shows as its owner;
- a row's ``version`` becomes the wall time (µs) of the publication in which its content
  last changed (the market board's own version of the row, or whether the worker owns the
  symbol, moved), so rows of different workers' boards compare on one clock and a reader
  needs no state of its own.

Reader side: ``merge_boards`` takes every board published within ``stale_s``; per symbol
the row of a worker that has its book columns wins — the most recently changed one when
several do (a worker that gains a shard stamps its rows then; the previous owner's board
may still claim them until it publishes again) — else the most recently changed row. The
choice depends on versions only, never on which board was published last, so it changes
only with a version. A merged row's version is the newest version of that symbol
on any board, and at least ``dropped_us`` — when a silent worker's board was last removed
— so a row whose owner vanished is sent again. The merged board's version is the newest
row version less ``SKEW_US``: a board written up to that late (stamped before a reader saw
another worker's newer one, or from a host whose clock is behind) loses no change; rows
changed in that margin are sent once more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace

import orjson

from services.market.market_board import WatchlistRow, WatchlistRows

SKEW_US = 1_000_000
ROW_FIELDS = tuple(f.name for f in fields(WatchlistRow))


@dataclass(frozen=True, slots=True)
class PublishedBoard:
    """One worker's board as stored: rows with stamped versions, and when (wall s)."""

    published_at: float
    board: WatchlistRows


@dataclass(frozen=True, slots=True)
class StampedRow:
    """A published row and what it was made from: the market board's version of the row
    and whether the worker owned the symbol then."""

    source_version: int
    owned: bool
    row: WatchlistRow


def stamp_rows(
    previous: Mapping[str, StampedRow],
    board: WatchlistRows,
    owns: Callable[[str], bool],
    stamp_us: int,
) -> dict[str, StampedRow]:
    """The rows to publish (see the module docstring), keyed by symbol: a row unchanged
    since ``previous`` keeps its published version, a changed one gets ``stamp_us``."""
    stamped: dict[str, StampedRow] = {}
    for row in board.rows:
        owned = owns(row.symbol)
        before = previous.get(row.symbol)
        if before is not None and before.source_version == row.version and before.owned == owned:
            stamped[row.symbol] = before
            continue
        if owned or not row.sync_state:
            published = replace(row, version=stamp_us)
        else:
            published = replace(
                row, spread_bps=None, liquidity=None, sync_state="", version=stamp_us
            )
        stamped[row.symbol] = StampedRow(row.version, owned, published)
    return stamped


def encode_board(published: PublishedBoard) -> bytes:
    """A worker's stored board as JSON, each row as a list of its fields in order."""
    board = published.board
    rows = [[getattr(row, name) for name in ROW_FIELDS] for row in board.rows]
    return orjson.dumps(
        {"published_at": published.published_at, "version": board.version, "rows": rows}
    )


def decode_board(data: bytes) -> PublishedBoard:
    """The inverse of ``encode_board``."""
    body = orjson.loads(data)
    rows = tuple(WatchlistRow(*row) for row in body["rows"])
    return PublishedBoard(float(body["published_at"]), WatchlistRows(rows, int(body["version"])))


def merge_boards(
    boards: Sequence[PublishedBoard], now: float, stale_s: float, dropped_us: int = 0
) -> WatchlistRows:
    """One board from every worker's (see the module docstring)."""
    fresh = sorted((b for b in boards if now - b.published_at <= stale_s), key=_published_at)
    chosen: dict[str, WatchlistRow] = {}
    newest: dict[str, int] = {}
    for published in fresh:  # oldest first: on an equal rank a newer board's row wins
        for row in published.board.rows:
            current = chosen.get(row.symbol)
            if current is None or _rank(row) >= _rank(current):
                chosen[row.symbol] = row
            newest[row.symbol] = max(newest.get(row.symbol, 0), row.version, dropped_us)
    rows = tuple(
        row if (row := chosen[s]).version == newest[s] else replace(row, version=newest[s])
        for s in sorted(chosen)
    )
    top = max((row.version for row in rows), default=0)
    return WatchlistRows(rows, max(0, top - SKEW_US))


def _published_at(board: PublishedBoard) -> float:
    return board.published_at


def _rank(row: WatchlistRow) -> tuple[bool, int]:
    """Rows with book columns first, then the most recently changed."""
    return bool(row.sync_state), row.version
