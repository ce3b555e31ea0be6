"""A symbol taken over from a crashed worker, against the local exchange and a real
redis-server: the new owner's feed taps (push streams, history, alerts) get every trade
after the last one the previous owner stored — none lost between the stored window and the
live stream, none handed over twice (the stored window itself is handed over again; the
push writer and the history writer skip ids they hold)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from services.market.feed import Feed
from services.redis_store import RedisStore
from services.replay.exchange import LocalExchange
from services.replay.recording import SPOT_2021
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
