"""The market board when several workers share the market: each worker publishes the whole
board (every TRADING symbol's ticker figures, from the all-market stream), but only it has
the book columns — spread, liquidity score, sync state — of the symbols whose shards it
holds. The boards are kept per worker and merged on read.

Writer side (one worker):

- ``owned_rows``: the book columns of symbols the worker does not own are cleared, so a
  worker still streaming a shard it just lost (``keep_s``) never shows as its owner;
- ``stamp_rows``: a row's ``version`` is the wall time (µs) of the publication in which its
  content last changed (strictly increasing per worker), so rows of different workers'
  boards compare on one clock and a reader needs no state of its own.

Reader side: ``merge_boards`` takes every board published within ``stale_s``; per symbol
the row of a worker that has its book columns wins (the newest board's when several do),
else the newest board's row. A merged row's version is the newest version of that symbol
on any board, and at least ``dropped_us`` — when a silent worker's board was last removed
— so a row whose owner vanished is sent again. The merged board's version is the newest
row version less ``SKEW_US``: a board written up to that late (stamped before a reader saw
another worker's newer one, or from a host whose clock is behind) loses no change; rows
changed in that margin are sent once more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import orjson

from services.market.market_board import WatchlistRow, WatchlistRows

SKEW_US = 1_000_000


@dataclass(frozen=True, slots=True)
class PublishedBoard:
    """One worker's board as stored: rows with stamped versions, and when (wall s)."""

    published_at: float
    board: WatchlistRows


def owned_rows(board: WatchlistRows, owns: Callable[[str], bool]) -> tuple[WatchlistRow, ...]:
    """The board's rows, with the book columns cleared where ``owns(symbol)`` is False."""
    return tuple(
        row
        if owns(row.symbol) or not row.sync_state
        else replace(row, spread_bps=None, liquidity=None, sync_state="")
        for row in board.rows
    )


def stamp_rows(
    previous: Mapping[str, WatchlistRow], rows: Sequence[WatchlistRow], stamp_us: int
) -> dict[str, WatchlistRow]:
    """``rows`` keyed by symbol, each with ``version`` = its version in ``previous`` when
    its content did not change since, else ``stamp_us``."""
    stamped: dict[str, WatchlistRow] = {}
    for row in rows:
        before = previous.get(row.symbol)
        if before is not None and replace(before, version=0) == replace(row, version=0):
            stamped[row.symbol] = before
        else:
            stamped[row.symbol] = replace(row, version=stamp_us)
    return stamped


def encode_board(published: PublishedBoard) -> bytes:
    """A worker's stored board as JSON."""
    board = published.board
    return orjson.dumps(
        {"published_at": published.published_at, "version": board.version, "rows": board.rows}
    )


def decode_board(data: bytes) -> PublishedBoard:
    """The inverse of ``encode_board``."""
    body = orjson.loads(data)
    rows = tuple(WatchlistRow(**row) for row in body["rows"])
    return PublishedBoard(float(body["published_at"]), WatchlistRows(rows, int(body["version"])))


def merge_boards(
    boards: Sequence[PublishedBoard], now: float, stale_s: float, dropped_us: int = 0
) -> WatchlistRows:
    """One board from every worker's (see the module docstring)."""
    fresh = sorted((b for b in boards if now - b.published_at <= stale_s), key=_published_at)
    chosen: dict[str, WatchlistRow] = {}
    newest: dict[str, int] = {}
    for published in fresh:  # oldest first: a newer board's row replaces an equal one
        for row in published.board.rows:
            current = chosen.get(row.symbol)
            if current is None or row.sync_state or not current.sync_state:
                chosen[row.symbol] = row
            newest[row.symbol] = max(newest.get(row.symbol, 0), row.version, dropped_us)
    rows = tuple(replace(chosen[s], version=newest[s]) for s in sorted(chosen))
    top = max((row.version for row in rows), default=0)
    return WatchlistRows(rows, max(0, top - SKEW_US))


def _published_at(board: PublishedBoard) -> float:
    return board.published_at
