"""A watched symbol's light book is deepened beside the LIVE one and swapped in at the
same update id: it never leaves LIVE and ends equal to the exchange's whole book."""

from __future__ import annotations

import asyncio

from services.market.views import SyncState
from services.replay.exchange import LocalExchange
from tests.integration.test_feed_replay import _last_u, _until, running_feed


def _levels(book_prices, book_qtys) -> list[tuple[float, float]]:
    return list(zip(book_prices.tolist(), book_qtys.tolist(), strict=True))


def _exchange_levels(rows: list[list[str]]) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q in rows]


async def test_a_watched_light_book_is_deepened_without_leaving_live(manifest, recordings):
    file = recordings["spot_2021"].name
    async with (
        LocalExchange(recordings["spot_2021"], speed=8, loop=False) as exchange,
        running_feed(exchange, snapshot_limit=100) as (feed, store),
    ):
        store.request_symbol("BTCUSDT")
        states: list[SyncState] = []

        def deepened_and_done() -> bool:
            snap = store.snapshot("BTCUSDT")
            if snap is not None and (states or snap.book.is_live):
                states.append(snap.book.sync_state)
            return (
                snap is not None
                and snap.book.last_update_id == _last_u(manifest, file, "BTCUSDT")
                and feed.stats().counters.books_deepened >= 1
            )

        await _until(deepened_and_done, 40, "BTCUSDT deepened and at its last update")
        await asyncio.sleep(0.2)
        book = store.snapshot("BTCUSDT").book
        market = exchange.markets["BTCUSDT"].book
        assert book.last_update_id == market.last_update_id
        assert _levels(book.bid_prices, book.bid_qtys) == _exchange_levels(market.top_bids(5000))
        assert _levels(book.ask_prices, book.ask_qtys) == _exchange_levels(market.top_asks(5000))
        assert book.bid_prices.size > 100 and book.ask_prices.size > 100
        assert set(states) == {SyncState.LIVE}
        assert feed.stats().resyncs == 0
