"""The alert thread's inputs equal the feed's, on the 2021 recording through a real ``Feed``:

- a trade released alone reaches a tap's ``on_trade_row`` with exactly the row the feed's
  ``TradeView`` would have held, and trades released otherwise (after a gap) still come as
  a view, in id order, none twice;
- the ``AlertThread``'s mirror of each ruled book equals the feed's book once its queue is
  handled, through rules added and removed mid-stream and a disconnect followed by a
  resume (the equivalence of the firings themselves is
  ``test_alerts_recorded_equivalence``)."""

from __future__ import annotations

from services.alerts.alert_thread import AlertThread
from services.alerts.rules import Rule, validate
from services.alerts.tap import AlertTap
from services.market.order_book import OrderBook
from services.market.views import SyncState, TradeView
from tests.unit.test_alerts_book_incremental import Collected
from tests.unit.test_alerts_recorded_equivalence import RECORDED, messages


class RowsAndViews:
    """Keeps every trade as (id, time, price, qty, side), and how it came."""

    def __init__(self, rows: bool) -> None:
        self.trades: list[tuple[str, int, int, float, float, float]] = []
        self.alone = self.batches = 0
        if rows:
            self.on_trade_row = self._on_trade_row

    def _on_trade_row(self, symbol, kind, row) -> None:
        self.alone += 1
        trade_id, time_ms, price, qty, buyer_maker = row
        self.trades.append((symbol, trade_id, time_ms, price, qty, -1.0 if buyer_maker else 1.0))

    def on_trades(self, symbol: str, trades: TradeView) -> None:
        self.batches += 1
        columns = (trades.trade_id, trades.time_ms, trades.price, trades.qty, trades.side)
        self.trades += [(symbol, *row) for row in zip(*(c.tolist() for c in columns), strict=True)]

    def on_book(self, symbol: str, book: object) -> None:
        return

    def on_candle(self, symbol: str, candle: object) -> None:
        return


def replay(feed, skip_trade=lambda i: False, at=None) -> None:
    """Every recorded frame (the i-th trade frame dropped when ``skip_trade(i)``), with
    ``at(n)`` called before the n-th frame."""
    trade_frames = 0
    for n, (kind, item) in enumerate(messages()):
        if at is not None:
            at(n)
        if kind == "ws":
            if "aggTrade" in item.frame.stream:
                trade_frames += 1
                if skip_trade(trade_frames):
                    continue
            feed._on_frame(item)
        else:
            symbol, snapshot = item
            feed._symbols[symbol].book.on_snapshot(snapshot)
            feed._tap_book(symbol, feed._symbols[symbol])


def test_a_trade_released_alone_reaches_on_trade_row_as_the_view_would_hold_it():
    from bench.bench_alerts import new_feed

    rows, views = RowsAndViews(rows=True), RowsAndViews(rows=False)
    feed = new_feed([rows, views])
    feed._start_backfill = lambda *args: None  # no loop here: released below instead
    n = len(messages())

    def release_held(i: int) -> None:
        """Trades held behind the hole are released as the backfill's end would."""
        if i in (n // 2, n - 1):
            for symbol, state in feed._symbols.items():
                if state.trades.open_gap is not None:
                    state.trades.abandon_backfill()
                    feed._tap_trades(symbol, state)

    replay(feed, skip_trade=lambda i: i in (300, 301, 1500), at=release_held)
    release_held(n - 1)
    assert feed.counters.tap_errors == 0
    assert rows.trades == views.trades
    ids = [(t[0], t[1]) for t in rows.trades]
    assert len(ids) == len(set(ids)) > 1000
    assert rows.alone > 1000 and rows.batches > 0  # both paths were taken
    assert views.alone == 0


class Kept(Collected):
    def stop(self) -> None:
        return


class ChangingRules:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self._version = 0

    def set(self, rules: list[Rule]) -> None:
        self.rules, self._version = rules, self._version + 1

    def all(self) -> list[Rule]:
        return list(self.rules)

    def version(self) -> int:
        return self._version


def book_rules(symbols: tuple[str, ...]) -> list[Rule]:
    wall = {"kind": "wall", "params": {"min_notional": 50_000.0, "band_bps": 20.0}}
    imbalance = {"kind": "imbalance", "params": {"threshold": 0.3, "band_bps": 10.0}}
    return [validate({**r, "symbol": s}, RECORDED) for s in symbols for r in (wall, imbalance)]


def test_the_alert_threads_mirrors_equal_the_feeds_books_through_rule_changes_and_a_resume():
    from bench.bench_alerts import new_feed

    rules = ChangingRules()
    tap = AlertTap(rules, Kept())  # type: ignore[arg-type]
    off_feed = AlertThread(tap).start()
    feed = new_feed([off_feed])
    n = len(messages())

    def at(i: int) -> None:
        if i == n // 5:
            rules.set(book_rules(RECORDED))
        elif i == 2 * n // 5:
            rules.set(book_rules(RECORDED[:1]))  # DOT and ETH leave, their diffs stop coming
        elif i == 3 * n // 5:
            rules.set(book_rules(RECORDED))
            feed._symbols["ETHUSDT"].book.on_disconnect("test")  # the next diff resumes it
            feed._tap_book("ETHUSDT", feed._symbols["ETHUSDT"])
        else:
            return
        tap.refresh()

    replay(feed, at=at)
    assert off_feed.drain()
    assert tap.dispatcher.firings  # type: ignore[attr-defined]
    assert feed.counters.tap_errors == 0 and off_feed.errors == 0
    for symbol in RECORDED:
        book = feed._symbols[symbol].book
        assert book.state is SyncState.LIVE, symbol
        assert symbol != "ETHUSDT" or book.counters.resumes == 1
        mirror = off_feed._mirrors[symbol]
        assert mirror.last_update_id == book.last_update_id
        assert mirror.book.bids() == book.book.bids() and mirror.book.asks() == book.book.asks()
        assert mirror.book.top_bids(5) == book.book.top_bids(5)
        assert mirror.book.top_asks(5) == book.book.top_asks(5)
    off_feed.stop()


def test_a_copied_book_is_independent_of_its_original():
    book = OrderBook()
    book.load_snapshot([(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0), (102.0, 3.0)], limit=2)
    copy = book.copy()
    book.apply_bids([(100.0, 0.0), (99.5, 4.0)])
    book.apply_asks([(101.0, 0.0)])
    assert copy.top_bids(5) == [(100.0, 1.0), (99.0, 2.0)]
    assert copy.top_asks(5) == [(101.0, 1.0), (102.0, 3.0)]
    assert (copy.bid_floor, copy.ask_ceiling) == (99.0, 102.0)
    copy.apply_bids([(98.0, 1.0)])  # below the known range: not stored, as in the original
    assert copy.bids() == {100.0: 1.0, 99.0: 2.0}
