"""The snapshot plan: light first syncs while many symbols wait, deepening watched books
first and unwatched ones only while the budget has room."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.market.snapshot_desk import (
    BACKGROUND_RESERVE,
    FULL_LIMIT,
    LIGHT_BACKLOG,
    LIGHT_LIMIT,
    RETRY_S,
    BookDepth,
    budget_share,
    deep_limit,
    next_deepening,
    sync_limit,
)


def test_sync_snapshots_are_light_only_while_many_symbols_wait() -> None:
    assert sync_limit(1) == FULL_LIMIT
    assert sync_limit(LIGHT_BACKLOG) == FULL_LIMIT
    assert sync_limit(LIGHT_BACKLOG + 1) == LIGHT_LIMIT
    assert sync_limit(500, fixed=1000) == 1000


def test_deepest_snapshot_per_market() -> None:
    assert deep_limit("spot") == 5000
    assert deep_limit("usdm") == 1000  # /fapi/v1/depth allows no more


def test_watched_symbols_are_deepened_first_to_the_market_maximum() -> None:
    books = {
        "AAAUSDT": BookDepth(True, LIGHT_LIMIT),
        "BTCUSDT": BookDepth(True, LIGHT_LIMIT),
        "ETHUSDT": BookDepth(True, FULL_LIMIT),
    }
    assert next_deepening(books, ["ETHUSDT", "BTCUSDT"], "spot", 1.0, 0.0) == ("ETHUSDT", 5000)
    assert next_deepening(books, ["BTCUSDT"], "usdm", 1.0, 0.0) == ("BTCUSDT", 1000)


def test_background_deepening_waits_for_budget_room() -> None:
    books = {"AAAUSDT": BookDepth(True, LIGHT_LIMIT)}
    assert next_deepening(books, [], "spot", BACKGROUND_RESERVE - 0.01, 0.0) is None
    assert next_deepening(books, [], "spot", BACKGROUND_RESERVE, 0.0) == ("AAAUSDT", FULL_LIMIT)


def test_a_failed_deepening_is_retried_only_after_a_while() -> None:
    books = {"BTCUSDT": BookDepth(True, LIGHT_LIMIT, failed_at=100.0)}
    assert next_deepening(books, ["BTCUSDT"], "spot", 0.0, 100.0 + RETRY_S - 1) is None
    assert next_deepening(books, ["BTCUSDT"], "spot", 0.0, 100.0 + RETRY_S) == ("BTCUSDT", 5000)


SYMBOLS = st.sampled_from(["AUSDT", "BUSDT", "CUSDT", "DUSDT", "EUSDT"])
DEPTHS = st.builds(
    BookDepth,
    st.booleans(),
    st.sampled_from([0, LIGHT_LIMIT, FULL_LIMIT, 5000]),
    st.one_of(st.none(), st.floats(0, 100)),
)


@given(
    books=st.dictionaries(SYMBOLS, DEPTHS),
    watched=st.lists(SYMBOLS, unique=True),
    market=st.sampled_from(["spot", "usdm"]),
    share=st.floats(0, 1),
    now=st.floats(0, 200),
)
def test_the_plan_only_ever_deepens_a_live_shallower_book(books, watched, market, share, now):
    plan = next_deepening(books, watched, market, share, now)
    if plan is None:
        return
    symbol, limit = plan
    book = books[symbol]
    assert book.live and book.limit < limit
    assert book.failed_at is None or now - book.failed_at >= RETRY_S
    if symbol not in watched:
        assert share >= BACKGROUND_RESERVE and limit == FULL_LIMIT
        # every watched book that could be deepened would have come first
        assert next_deepening(books, watched, market, 0.0, now) is None


def test_background_deepening_counts_the_ips_window_not_only_the_local_bucket():
    assert budget_share(600.0, 1200, None, 4800) == 0.5
    assert budget_share(1200.0, 1200, 4000, 4800) == pytest.approx(800 / 4800)
    assert budget_share(1200.0, 1200, 6000, 4800) == 0.0  # other workers filled it
    assert (
        next_deepening(
            {"A": BookDepth(True, 100)}, [], "spot", budget_share(1200.0, 1200, 4000, 4800), 0.0
        )
        is None
    )
