"""PublishedTrades: a publication's trade window from the trades added since the last one
equals the log's own copy, and windows handed out never change."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.market import published_trades
from services.market.published_trades import PublishedTrades
from services.market.trade_log import TradeLog

_step = st.one_of(
    st.tuples(st.just("trades"), st.integers(0, 40), st.integers(1, 3)),  # n, id step
    st.tuples(st.just("backfill"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("abandon"), st.just(0), st.just(0)),
    st.tuples(st.just("warm_up"), st.integers(1, 30), st.just(0)),
    st.tuples(st.just("view"), st.just(0), st.just(0)),
)


def _columns(view) -> list[list[float]]:  # type: ignore[no-untyped-def]
    return [c.tolist() for c in (view.trade_id, view.time_ms, view.price, view.qty, view.side)]


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(_step, max_size=60), capacity=st.integers(1, 90))
def test_published_windows_equal_the_logs_view_and_never_change(steps, capacity) -> None:
    """Across trades (with gaps), backfills, abandoned gaps, warm-ups that rebuild the ring
    and a window that overflows its capacity: every view equals ``TradeLog.view()``, in
    values and dtypes, and each view handed out keeps its values."""
    log = TradeLog(
        "BTCUSDT", capacity=capacity, kind="aggTrade", backfill_gaps=True, initial_rows=4
    )
    published = PublishedTrades()
    handed: list[tuple[object, list[list[float]]]] = []
    next_id = 1000
    for kind, n, step in [*steps, ("view", 0, 0)]:
        if kind == "trades":
            for _ in range(n):
                log.add(
                    next_id, next_id * 10, 100.0 + next_id % 7, 0.5 + next_id % 3, next_id % 2 == 0
                )
                next_id += step
        elif kind == "backfill" and log.open_gap is not None:
            gap = log.open_gap
            ids = range(gap.first_id, min(gap.first_id + n, gap.last_id + 1))
            log.backfill([(i, i * 10, 99.0, 1.0, False) for i in ids])
        elif kind == "abandon":
            log.abandon_backfill()
        elif kind == "warm_up":
            first = max(0, (int(log.view().trade_id[0]) if len(log) else next_id) - n)
            log.warm_up([(i, i * 10, 98.0, 2.0, True) for i in range(first, first + n)])
        view = published.view(log)
        want = log.view()
        assert _columns(view) == _columns(want)
        for got, expected in zip(_columns(view), _columns(want), strict=True):
            assert len(got) == len(expected)
        assert [
            c.dtype for c in (view.trade_id, view.time_ms, view.price, view.qty, view.side)
        ] == [np.int64, np.int64, np.float64, np.float64, np.float64]
        assert view.kind == "aggTrade" and view.symbol == "BTCUSDT"
        handed.append((view, _columns(view)))
    for view, values in handed:
        assert _columns(view) == values


def test_windows_kept_append_only_from_any_size_equal_the_logs_view() -> None:
    """The same with every window kept append-only (no small window copied whole)."""
    with mock.patch.object(published_trades, "COPY_UP_TO", 0):
        test_published_windows_equal_the_logs_view_and_never_change()


def test_a_full_window_is_published_from_the_new_trades_only() -> None:
    """Once the window is full, a publication copies the new trades, not the window."""
    log = TradeLog("ETHUSDT", capacity=10_000, kind="aggTrade")
    for i in range(25_000):
        log.add(i, i, 1.0, 1.0, False)
    published = PublishedTrades()
    published.view(log)
    for i in range(25_000, 25_005):
        log.add(i, i, 1.0, 1.0, False)
    calls = []
    released_after = log.released_after
    log_view = log.view

    class Spy:
        def __len__(self) -> int:
            return len(log)

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(log, name)

        def released_after(self, trade_id):  # type: ignore[no-untyped-def]
            calls.append(("released_after", trade_id))
            return released_after(trade_id)

        def view(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(("view", args))
            return log_view(*args, **kwargs)

    view = published.view(Spy())  # type: ignore[arg-type]
    assert calls == [("released_after", 24_999)]
    assert view.trade_id.tolist() == list(range(15_005, 25_005))
