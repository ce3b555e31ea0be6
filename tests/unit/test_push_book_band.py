"""The book stream's band: a ``book`` message with ``band_bps`` carries exactly the levels a
plain loop keeps — those within ±band of the mid, at most ``levels`` a side, best first —
and nothing unless the book is LIVE and not crossed."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from services.market.views import BookView, SyncState
from services.push.messages import book_message

prices = st.lists(st.integers(1, 4000), min_size=0, max_size=60, unique=True)


def _book(bids: list[int], asks: list[int], state: SyncState = SyncState.LIVE) -> BookView:
    bid = np.array(sorted((p / 4 for p in bids), reverse=True), dtype=np.float64)
    ask = np.array(sorted(1000.25 + p / 4 for p in asks), dtype=np.float64)
    return BookView("BTCUSDT", bid, np.ones_like(bid), ask, np.full_like(ask, 2.0), 7, state, 1, "")


def _plain(book: BookView, levels: int, band_bps: int | None) -> tuple[list, list]:
    bids, asks = book.bid_prices.tolist(), book.ask_prices.tolist()
    if bids and asks:
        low_centre = high_centre = (bids[0] + asks[0]) / 2
    else:
        low_centre = bids[0] if bids else 0.0
        high_centre = asks[0] if asks else 0.0
    frac = (band_bps or 0) / 10_000
    kept_bids = [p for p in bids if band_bps is None or p >= low_centre * (1 - frac)]
    kept_asks = [p for p in asks if band_bps is None or p <= high_centre * (1 + frac)]
    return kept_bids[:levels], kept_asks[:levels]


@given(prices, prices, st.integers(1, 80), st.one_of(st.none(), st.integers(1, 10_000)))
def test_a_banded_message_holds_the_levels_within_the_band_best_first(bids, asks, levels, band_bps):
    book = _book(bids, asks)
    message = orjson.loads(book_message(book, levels, band_bps))
    want_bids, want_asks = _plain(book, levels, band_bps)
    assert [p for p, _ in message["bids"]] == want_bids
    assert [p for p, _ in message["asks"]] == want_asks
    assert all(q == 1.0 for _, q in message["bids"]) and all(q == 2.0 for _, q in message["asks"])


def test_an_unsynced_or_crossed_book_sends_no_levels_whatever_the_band():
    for book in (
        _book([4000], [0], SyncState.RESYNCING),
        BookView(
            "BTCUSDT", np.array([10.0]), np.array([1.0]), np.array([9.0]), np.array([1.0]),
            7, SyncState.LIVE, 1, "",
        ),
    ):  # fmt: skip
        message = orjson.loads(book_message(book, 100, 50))
        assert message["bids"] == [] and message["asks"] == []


def test_a_band_of_fifty_bps_keeps_the_half_percent_around_the_mid():
    bid = np.arange(1000.0, 980.0, -0.5)
    ask = np.arange(1000.5, 1020.0, 0.5)
    book = BookView("X", bid, np.ones_like(bid), ask, np.ones_like(ask), 1, SyncState.LIVE, 1, "")
    message = orjson.loads(book_message(book, 1000, 50))
    mid = 1000.25
    assert message["bids"][-1][0] >= mid * 0.995 > message["bids"][-1][0] - 0.5
    assert message["asks"][-1][0] <= mid * 1.005 < message["asks"][-1][0] + 0.5
