"""A symbol taken over from a crashed worker, against the local exchange and a real
redis-server: the new owner's feed taps (push streams, history, alerts) get every trade
after the last one the previous owner stored — none lost between the stored window and the
live stream, none handed over twice (the stored window itself is handed over again; the
push writer and the history writer skip ids they hold)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

import aiohttp
import numpy as np
import pytest

from services.market.feed import Feed
from services.market.views import TradeView
from services.redis_store import RedisStore
from services.replay.exchange import LocalExchange
from services.replay.recording import SPOT_2021
from tests.cluster_worker import book_snapshot
from tests.integration.test_feed_replay import RecordingTap
from tests.integration.test_sharded_feeds import following_config
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis
SYMBOLS = ("BTCUSDT", "ETHUSDT")


@contextlib.asynccontextmanager
async def _following(exchange: LocalExchange, url: str, tap: RecordingTap):
    store = RedisStore(url)
    feed = Feed(following_config(exchange), store, taps=(tap,))
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(feed.follow(SYMBOLS), 30)
        yield store
    finally:
        task.cancel()  # a crash: nothing released, nothing flushed
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()


async def _until(predicate, timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not within {timeout_s} s")
        await asyncio.sleep(0.1)


@pytest.mark.slow  # ~15 s: a regression check of the take-over path, beyond the budget
@pytest.mark.timeout(120)
async def test_the_new_owners_taps_continue_from_the_stored_window() -> None:
    with RedisServer() as server:
        reader = RedisStore(server.url, poll_s=0)
        exchange = LocalExchange(SPOT_2021, speed=1.0, loop=True)
        exchange.start_in_thread()
        try:
            first, second = RecordingTap(), RecordingTap()
            async with _following(exchange, server.url, first):
                await _until(
                    lambda: all(len(first.trade_ids.get(s, ())) >= 20 for s in SYMBOLS),
                    40,
                    "trades at the first owner",
                )
            stored = {s: int(reader.stored_trades(s).trade_id[-1]) for s in SYMBOLS}
            async with _following(exchange, server.url, second):
                await _until(
                    lambda: all(len(second.trade_ids.get(s, ())) >= 20 for s in SYMBOLS),
                    40,
                    "trades at the new owner",
                )
        finally:
            exchange.stop()
            reader.close()
    for symbol in SYMBOLS:
        ids = second.trade_ids[symbol]
        assert ids == list(range(ids[0], ids[0] + len(ids))), f"{symbol}: a gap or a repeat"
        assert ids[0] <= stored[symbol] + 1, f"{symbol}: {ids[0]} after {stored[symbol]}"


class _SlowReadStore(RedisStore):
    """A new owner's store whose read of a symbol's stored window takes a second (a
    take-over of dozens of symbols queues these reads behind each other), so the feed's
    publisher runs many rounds meanwhile."""

    def stored_trades(self, symbol: str) -> TradeView | None:
        time.sleep(1.0)
        return super().stored_trades(symbol)


async def _latest_trades(rest_url: str, symbol: str, count: int) -> list[dict]:
    url = f"{rest_url}/api/v3/aggTrades"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(url, params={"symbol": symbol, "limit": count}) as reply:
                rows = await reply.json()
            if len(rows) >= count:
                return rows
            await asyncio.sleep(0.2)
    raise AssertionError(f"{count} {symbol} trades not at the exchange")


def _window(symbol: str, rows: list[dict]) -> TradeView:
    return TradeView(
        symbol,
        trade_id=np.array([r["a"] for r in rows], dtype=np.int64),
        time_ms=np.array([r["T"] for r in rows], dtype=np.int64),
        price=np.array([float(r["p"]) for r in rows]),
        qty=np.array([float(r["q"]) for r in rows]),
        side=np.array([-1.0 if r["m"] else 1.0 for r in rows]),
    )


@pytest.mark.timeout(60)
async def test_a_new_owner_writes_nothing_before_it_read_the_window_it_continues() -> None:
    """The new owner of a symbol publishes it only once it has read the previous owner's
    stored window: its first write (a new stream generation) would otherwise replace that
    window with the trades it streamed itself, and its warm-up would then read its own
    window back — the trades between the last stored one and its stream's first lost (seen
    with 65 symbols taken over at once by a real worker)."""
    symbol = "BTCUSDT"
    with RedisServer() as server:
        exchange = LocalExchange(SPOT_2021, speed=1.0, loop=True)
        exchange.start_in_thread()
        previous = RedisStore(server.url, writer_id="previous")
        reader = RedisStore(server.url, poll_s=0)
        try:
            rows = (await _latest_trades(exchange.rest_url, symbol, 40))[:20]
            last = rows[-1]["a"]
            snapshot = book_snapshot(symbol, 1, 1)
            previous.publish(replace(snapshot, trades=_window(symbol, rows)))
            store = _SlowReadStore(server.url, writer_id="new")
            feed = Feed(following_config(exchange), store)
            task = asyncio.create_task(feed.run())
            try:
                await asyncio.wait_for(feed.follow([symbol]), 30)

                def continued() -> bool:
                    window = reader.stored_trades(symbol)
                    written = reader.written(symbol)
                    return (
                        window is not None
                        and written is not None
                        and written[1] == "new"
                        and int(window.trade_id[-1]) > last + 20
                    )

                await _until(continued, 30, "the new owner's window written past the stored one")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                store.close()
            ids = reader.stored_trades(symbol).trade_id
        finally:
            exchange.stop()
            previous.close()
            reader.close()
    assert int(ids[0]) <= rows[0]["a"], f"the stored window was replaced: starts at {ids[0]}"
    assert (np.diff(ids) == 1).all(), "a gap or a repeat"
