"""Recordings made by other recorders: the same real messages in other valid orders.

Every shape here is built from the bundled recordings by moving, dropping or re-labelling
lines, never by inventing market data: a snapshot recorded before the symbol's first diff,
a recording that starts later in the diff stream (so the snapshot bridges its first diff
exactly), a USD-M symbol whose first line is a trade, a REST URL that names no market. The
book must come out exactly as from the original order.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli.check import check_messages, check_recording
from services.binance.messages import DepthUpdate, decode_depth_snapshot, decode_frame
from services.market.book_sync import BookSync
from services.replay.recording import (
    SPOT_2021,
    SPOT_2024,
    USDM_2024,
    RecordedMessage,
    format_line,
    read_recording,
    recording_market,
)
from services.replay.session import load_session

BOOK_FIELDS = ("status", "bids_top5", "asks_top5", "levels", "last_update_id")
TRADE_FIELDS = ("trades", "trade_qty_sum", "buyer_maker_count", "trade_gaps", "trade_duplicates")

# prefixes long enough to hold the snapshot, its bridging diff and a few hundred diffs after
PREFIX = {"spot_2021": (SPOT_2021, 4719), "spot_2024": (SPOT_2024, 3000), "usdm": (USDM_2024, 3000)}


@cache
def messages(name: str) -> tuple[RecordedMessage, ...]:
    path, lines = PREFIX[name]
    out = []
    for message in read_recording(path):
        if message.line > lines:
            break
        out.append(message)
    return tuple(out)


def market_of(name: str) -> str:
    return "usdm" if name == "usdm" else "spot"


def run(name: str, shaped: list[RecordedMessage], market: str | None = None) -> dict:
    results = check_messages(name, shaped, market or market_of(name))
    return {r["symbol"]: r for r in results}


def book_and_trades(result: dict) -> dict:
    return {k: result[k] for k in BOOK_FIELDS + TRADE_FIELDS}


@cache
def clean(name: str) -> dict:
    got = run(name, list(messages(name)))
    assert all(r["status"] == "ok" for r in got.values())
    return got


def diff_of(message: RecordedMessage) -> DepthUpdate | None:
    if message.src != "ws" or b'"depthUpdate"' not in message.raw[:120]:
        return None
    return decode_frame(message.raw).event


def is_snapshot(message: RecordedMessage, symbol: str) -> bool:
    return message.src == "rest" and message.rest_target()[0] == symbol


def write(path: Path, shaped: list[RecordedMessage]) -> Path:
    with gzip.open(path, "wb") as fh:
        for m in shaped:
            fh.write(format_line(m.ts_ns, m.src, m.raw, m.url))
    return path


# --- a snapshot recorded before the symbol's first diff -----------------------------------


@pytest.mark.parametrize("name", ["spot_2021", "spot_2024", "usdm"])
def test_snapshot_recorded_before_the_first_diff_gives_the_same_book(name):
    original = list(messages(name))
    rest = [m for m in original if m.src == "rest"]
    shaped = rest + [m for m in original if m.src != "rest"]
    got = run(name, shaped)
    for symbol, expected in clean(name).items():
        assert book_and_trades(got[symbol]) == book_and_trades(expected)
        assert got[symbol]["resyncs"] == 0


# --- a recording whose stream starts later: the snapshot bridges its first diff exactly -----


@cache
def reference_books(name: str, symbol: str) -> tuple[list[DepthUpdate], dict[int, tuple]]:
    """The symbol's diffs in order, and the exact book (bids, asks) after each applied one,
    keyed by the diff's index."""
    diffs = [d for m in messages(name) if (d := diff_of(m)) is not None and d.s == symbol]
    books: dict[int, tuple] = {}
    sync = BookSync(symbol, market_of(name))
    index = {d.u: i for i, d in enumerate(diffs)}

    def remember(diff: DepthUpdate) -> None:
        books[index[diff.u]] = (sync.book.bids(), sync.book.asks())

    sync._on_applied = remember
    for message in messages(name):
        if is_snapshot(message, symbol):
            sync.on_snapshot(decode_depth_snapshot(message.raw))
        elif (diff := diff_of(message)) is not None and diff.s == symbol:
            sync.on_diff(diff)
    return diffs, books


def snapshot_line(name: str, symbol: str, k: int) -> RecordedMessage:
    """A REST depth line holding the exact book just before diff ``k`` at the id Binance's
    rule bridges with diff ``k``: ``U - 1`` on spot, ``U`` on USD-M (nothing of the symbol
    changes between the two diffs' ids, and diff ``k`` carries every level it changes)."""
    diffs, books = reference_books(name, symbol)
    bids, asks = books[k - 1]
    original = next(m for m in messages(name) if is_snapshot(m, symbol))
    body = json.loads(original.raw)
    price_places = len(body["bids"][0][0].partition(".")[2])
    qty_places = len(body["bids"][0][1].partition(".")[2])

    def levels(side: dict[float, float], reverse: bool) -> list[list[str]]:
        return [
            [f"{p:.{price_places}f}", f"{side[p]:.{qty_places}f}"]
            for p in sorted(side, reverse=reverse)
        ]

    lid = diffs[k].U if name == "usdm" else diffs[k].U - 1
    raw = json.dumps(
        {"lastUpdateId": lid, "bids": levels(bids, True), "asks": levels(asks, False)},
        separators=(",", ":"),
    ).encode()
    return replace(original, raw=raw)


def interleave(name: str, symbol: str, k: int, start: int, at: int) -> list[RecordedMessage]:
    """The recording with the symbol's diffs before ``start`` gone (its stream started
    there), its snapshot replaced by the book just before diff ``k`` and moved just before
    diff ``at`` (``at == start``: before the first diff; past the last: at the end)."""
    diffs, _ = reference_books(name, symbol)
    index = {d.u: i for i, d in enumerate(diffs)}
    snapshot = snapshot_line(name, symbol, k)
    shaped: list[RecordedMessage] = []
    placed = False
    for message in messages(name):
        if is_snapshot(message, symbol):
            continue
        diff = diff_of(message)
        if diff is not None and diff.s == symbol:
            i = index[diff.u]
            if i < start:
                continue
            if i == at and not placed:
                shaped.append(snapshot)
                placed = True
        shaped.append(message)
    if not placed:
        shaped.append(snapshot)
    return shaped


def first_applied(name: str, symbol: str) -> int:
    _, books = reference_books(name, symbol)
    return min(books)


@pytest.mark.parametrize(("name", "symbol"), [("spot_2021", "BTCUSDT"), ("spot_2024", "BTCUSDT")])
def test_spot_snapshot_one_below_the_first_diff_is_used(name, symbol, tmp_path):
    """A spot snapshot at exactly ``U - 1`` of the first diff received is bridged by that
    diff (``U <= lastUpdateId + 1 <= u``); it used to be refused as "older than the first
    U", and with no other snapshot in the file the diffs piled up unsynced."""
    k = first_applied(name, symbol) + 5
    shaped = interleave(name, symbol, k, start=k, at=k + 3)
    path = write(tmp_path / "late_start.jsonl.gz", shaped)
    got = {r["symbol"]: r for r in check_recording(path)}
    assert book_and_trades(got[symbol]) == book_and_trades(clean(name)[symbol])
    assert got[symbol]["resyncs"] == 0 and got[symbol]["snapshots_requested"] == 1


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.sampled_from([("spot_2021", "DOTUSDT"), ("spot_2024", "BTCUSDT"), ("usdm", "BTCUSDT")]),
    st.data(),
)
def test_any_interleaving_binance_accepts_ends_with_the_same_book(case, data):
    """For any snapshot point ``k``, stream start ``start <= k`` and position of the snapshot
    among the diffs, the check ends with the book of the original recording."""
    name, symbol = case
    first = first_applied(name, symbol)
    k = data.draw(st.integers(first + 1, first + 25), label="k")
    start = data.draw(st.integers(0, k), label="start")
    at = data.draw(st.integers(start, k + 25), label="at")
    got = run(name, interleave(name, symbol, k, start, at))
    for sym, expected in clean(name).items():
        assert book_and_trades(got[sym]) == book_and_trades(expected)
    assert got[symbol]["resyncs"] == 0


# --- the market comes from what the recording says ------------------------------------------


def usdm_trade_first() -> list[RecordedMessage]:
    """USD-M with a trade as the symbol's first line and a REST URL that names no market
    (a recorder logging its own proxy's path)."""
    original = list(messages("usdm"))
    trade = next(m for m in original if b'"e":"trade"' in m.raw[:80])
    rest = [
        replace(m, url="http://127.0.0.1:9000/depth?symbol=BTCUSDT&limit=1000")
        if m.src == "rest"
        else m
        for m in original
        if m is not trade
    ]
    return [trade, *rest]


def test_usdm_market_is_read_from_the_diffs_not_from_the_first_line(tmp_path):
    path = write(tmp_path / "usdm_trade_first.jsonl.gz", usdm_trade_first())
    assert recording_market(read_recording(path)) == "usdm"
    got = check_recording(path)[0]
    expected = clean("usdm")["BTCUSDT"]
    assert got["market"] == "usdm"
    assert got["gaps"] == 0
    assert book_and_trades(got) == book_and_trades(expected)


def test_usdm_market_without_rest_lines_or_0ms_streams_is_usdm(tmp_path):
    """The replay session reads the market from the diffs' ``pu`` (a USD-M recording of
    ``@depth@100ms`` with no REST line used to be replayed as spot)."""
    shaped = [
        replace(m, raw=m.raw.replace(b"@depth@0ms", b"@depth@100ms"))
        for m in messages("usdm")
        if m.src != "rest"
    ]
    path = write(tmp_path / "usdm_100ms_no_rest.jsonl.gz", shaped)
    assert load_session([path]).market == "usdm"
    assert check_recording(path)[0]["market"] == "usdm"


def test_market_evidence_of_each_kind_of_line():
    usdm, spot = messages("usdm"), messages("spot_2021")
    assert {m.market for m in usdm if m.src == "rest"} == {"usdm"}
    assert {m.market for m in spot if m.src == "rest"} == {"spot"}
    assert {m.market for m in usdm if diff_of(m)} == {"usdm"}
    assert {m.market for m in spot if diff_of(m)} == {"spot"}
    assert {m.market for m in spot if b"aggTrade" in m.raw[:60]} == {""}
    assert recording_market(messages("spot_2024")) == "spot"
