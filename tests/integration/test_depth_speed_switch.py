"""Diff-depth speed changes against the local exchange on loopback: a feed streams three
symbols' books at 1 s; one is watched (moves to 100 ms) then unwatched (back to 1 s). After
every diff, each LIVE book equals the exchange's book at the same update id, across both
changes, and no book leaves LIVE or resyncs."""

from __future__ import annotations

from services.market.views import SyncState
from services.replay.exchange import LocalExchange
from tests.integration.test_feed_replay import _until, running_feed

SYMBOLS = ("BTCUSDT", "ETHUSDT", "DOTUSDT")
TOP = 20


class ExchangeBooks:
    """The exchange's top ``TOP`` levels a side after every diff it applied, by update id."""

    def __init__(self, exchange: LocalExchange) -> None:
        self.books: dict[tuple[str, int], tuple[list, list]] = {}
        for symbol, market in exchange.markets.items():
            market.apply_depth = self._recorded(symbol, market, market.apply_depth)

    def _recorded(self, symbol, market, apply):
        def apply_depth(data: bytes) -> dict:
            body = apply(data)
            book = market.book
            bids = [(float(p), float(q)) for p, q in book.top_bids(TOP)]
            asks = [(float(p), float(q)) for p, q in book.top_asks(TOP)]
            self.books[symbol, book.last_update_id] = (bids, asks)
            return body

        return apply_depth


class BookCheckTap:
    """A ``FeedTap`` comparing each LIVE book it is handed with the exchange's at the same
    update id; counts the comparisons per (symbol, depth stream applied)."""

    def __init__(self, exchange_books: ExchangeBooks) -> None:
        self.exchange_books = exchange_books
        self.feed = None
        self.compared: dict[tuple[str, str], int] = {}
        self.mismatches: list[tuple[str, int]] = []
        self.left_live: list[tuple[str, str]] = []
        self.live: set[str] = set()

    def on_book(self, symbol: str, sync) -> None:
        if sync.state is not SyncState.LIVE:
            if symbol in self.live:
                self.left_live.append((symbol, str(sync.state)))
            return
        self.live.add(symbol)
        expected = self.exchange_books.books.get((symbol, sync.last_update_id))
        if expected is None:
            return
        if (sync.book.top_bids(TOP), sync.book.top_asks(TOP)) != expected:
            self.mismatches.append((symbol, sync.last_update_id))
        stream = self.feed._symbols[symbol].depth.stream
        self.compared[symbol, stream] = self.compared.get((symbol, stream), 0) + 1

    def on_trades(self, symbol: str, trades) -> None:
        pass

    def on_candle(self, symbol: str, candle) -> None:
        pass


async def test_a_watched_book_moves_to_100ms_and_back_without_a_resync(recordings):
    async with LocalExchange(recordings["spot_2021"], speed=3, loop=False) as exchange:
        tap = BookCheckTap(ExchangeBooks(exchange))
        async with running_feed(
            exchange,
            taps=(tap,),
            symbols=SYMBOLS,
            unwatched_depth_ms=1000,
            on_demand_idle_s=2.0,
            deepen=False,
        ) as (feed, store):
            tap.feed = feed
            await _until(lambda: tap.live == set(SYMBOLS), 20, "every book LIVE", store)
            depth = {s: feed._symbols[s].depth for s in SYMBOLS}
            assert {d.stream for d in depth.values()} == {f"{s.lower()}@depth" for s in SYMBOLS}

            store.request_symbol("BTCUSDT")
            counters = feed.counters
            await _until(lambda: counters.depth_switches == 1, 10, "BTCUSDT at 100 ms", store)
            assert depth["BTCUSDT"].stream == "btcusdt@depth@100ms"
            await _until(
                lambda: "btcusdt@depth" not in feed._client.streams, 5, "1 s stream retired"
            )
            assert "btcusdt@depth" not in await feed._client.list_subscriptions()

            await _until(lambda: counters.depth_switches == 2, 10, "BTCUSDT back at 1 s", store)
            assert depth["BTCUSDT"].stream == "btcusdt@depth"
            fast_compared = tap.compared.get(("BTCUSDT", "btcusdt@depth@100ms"), 0)
            await _until(
                lambda: "btcusdt@depth@100ms" not in feed._client.streams, 5, "100 ms retired"
            )
            subscribed = await feed._client.list_subscriptions()
            assert "btcusdt@depth" in subscribed and "btcusdt@depth@100ms" not in subscribed
            slow_before = tap.compared.get(("BTCUSDT", "btcusdt@depth"), 0)
            await _until(
                lambda: tap.compared.get(("BTCUSDT", "btcusdt@depth"), 0) > slow_before + 2,
                10,
                "BTCUSDT compared again at 1 s",
            )

            stats = feed.stats()
            assert counters.depth_switch_resyncs == 0
            assert stats.resyncs == stats.gaps == 0
            assert tap.mismatches == [] and tap.left_live == []
            assert fast_compared >= 5
            assert all(tap.compared.get((s, f"{s.lower()}@depth"), 0) >= 3 for s in SYMBOLS)
