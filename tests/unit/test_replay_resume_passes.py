"""A replay can start at any loop pass: the offsets, book ids and derived aggTrade ids that
``services.replay.passes`` computes for pass n equal what the local exchange reaches by
playing passes 0..n-1 (real exchange and player, no sockets); and the pass after stored
trades is picked only for this recording's trades."""

from __future__ import annotations

import asyncio

import pytest

from services.replay.exchange import MARKET_KINDS, LocalExchange
from services.replay.passes import (
    ResumePoint,
    pass_offsets,
    pass_steps,
    resume_point,
    start_book_id,
)
from services.replay.player import Offsets, Player
from services.replay.recording import SPOT_2021, SPOT_2024, USDM_2024
from services.replay.session import load_session

PASSES = 2


class _Seams(LocalExchange):
    """The exchange, noting each seam's offsets, book ids and next derived aggTrade ids."""

    def __init__(self, path) -> None:
        super().__init__([path], speed="max", loop=True)
        self.seen: list[tuple[Offsets, dict[str, int], dict[str, int]]] = []

    async def seam(self, offsets: Offsets) -> None:
        await super().seam(offsets)
        books = {s: m.book.last_update_id for s, m in self.markets.items()}
        aggs = {s: m.agg_builder.next_id for s, m in self.markets.items() if m.agg_trades_derived}
        self.seen.append((offsets, books, aggs))
        if len(self.seen) == PASSES:
            raise asyncio.CancelledError


async def _play(path) -> tuple[_Seams, object]:
    exchange = _Seams(path)
    exchange._listening = asyncio.Event()
    exchange._listening.set()
    exchange.session = session = await asyncio.to_thread(load_session, [path])
    exchange._prepare(session)
    exchange.player = Player(session, exchange, None, loop=True)
    with pytest.raises(asyncio.CancelledError):
        await exchange.player.run()
    return exchange, session


@pytest.mark.parametrize(
    "path",
    [
        SPOT_2021,  # recorded aggTrades, three symbols
        pytest.param(SPOT_2024, marks=pytest.mark.slow),  # aggTrades derived from trades
        pytest.param(USDM_2024, marks=pytest.mark.slow),  # USD-M ids (pu), derived aggTrades
    ],
    ids=lambda p: p.name[:9],
)
def test_pass_n_offsets_equal_what_playing_the_passes_reaches(path):
    exchange, session = asyncio.run(_play(path))
    steps = pass_steps(session)
    for n, (offsets, books, aggs) in enumerate(exchange.seen, start=1):
        computed = pass_offsets(steps, 0, n)
        assert computed.time_ms == offsets.time_ms
        assert computed.update_ids == offsets.update_ids
        assert computed.trade_ids == offsets.trade_ids
        recorded_aggs = {s: v for s, v in computed.agg_ids.items() if s not in aggs}
        assert recorded_aggs == offsets.agg_ids
        for symbol, book_id in books.items():
            assert start_book_id(session, symbol, computed) == book_id
        for symbol, next_id in aggs.items():  # derived aggTrades: numbered while playing
            assert computed.agg_ids[symbol] + 1 == next_id


def test_resume_after_this_recordings_trades_only():
    session = load_session([SPOT_2021])
    steps = pass_steps(session)
    first_agg = _first_agg(session, "BTCUSDT")
    last_agg = first_agg + steps.agg_ids["BTCUSDT"] - 1
    end_ms = session.end_ns // 1_000_000
    btc = steps.agg_ids["BTCUSDT"]
    assert resume_point(session, 0, {}) == ResumePoint()
    assert resume_point(session, 0, {"BTCUSDT": (last_agg, end_ms)}) == ResumePoint(1)
    in_pass_3 = (last_agg + 3 * btc - 10, end_ms + 3 * steps.time_ms - 5)
    assert resume_point(session, 0, {"BTCUSDT": in_pass_3}) == ResumePoint(
        3, {"BTCUSDT": in_pass_3[0]}
    )
    # several symbols: the newest pass decides; a symbol behind it (ETHUSDT, pass 2) does
    # not move it, and the end of a pass is no target
    eth_first = _first_agg(session, "ETHUSDT")
    eth_in_pass_2 = (eth_first + 2 * steps.agg_ids["ETHUSDT"] + 5, end_ms + 2 * steps.time_ms)
    both = {"BTCUSDT": in_pass_3, "ETHUSDT": eth_in_pass_2}
    assert resume_point(session, 0, both) == ResumePoint(3, {"BTCUSDT": in_pass_3[0]})
    btc_end_3 = (last_agg + 3 * btc, end_ms + 3 * steps.time_ms)
    assert resume_point(session, 0, {"BTCUSDT": btc_end_3}) == ResumePoint(4)
    live = (3_000_000_000, 1_764_000_000_000)  # same symbol, another market's ids and times
    assert resume_point(session, 0, {"BTCUSDT": live}) == ResumePoint()
    assert resume_point(session, 0, {"BTCUSDT": (last_agg, end_ms + 7_200_000)}) == ResumePoint()


class _Stops(LocalExchange):
    """The exchange, noting each symbol's market state the moment its aggregate id
    reaches a target while playing on from pass 0."""

    def __init__(self, path, targets: dict[str, int]) -> None:
        super().__init__([path], speed="max", loop=True)
        self.targets = dict(targets)
        self.states: dict[str, tuple] = {}

    def _note(self) -> None:
        for symbol, target in list(self.targets.items()):
            if self.markets[symbol].last_agg_id >= target:
                self.states[symbol] = _state(self, symbol)
                del self.targets[symbol]
        if not self.targets:
            raise asyncio.CancelledError

    async def play(self, event, data) -> None:
        await super().play(event, data)
        self._note()

    async def tick(self, exchange_ms: int) -> None:
        await super().tick(exchange_ms)
        self._note()


def _state(exchange: LocalExchange, symbol: str) -> tuple:
    market = exchange.markets[symbol]
    book = market.book
    return (
        book.last_update_id,
        book.top_bids(5000),
        book.top_asks(5000),
        market.last_trade_id,
        market.last_agg_id,
        market.agg_builder.next_id,
        [t.id for t in market.agg_builder._open],
    )


@pytest.mark.parametrize(
    "path",
    [SPOT_2021, pytest.param(SPOT_2024, marks=pytest.mark.slow)],  # recorded / derived aggTrades
    ids=lambda p: p.name[:9],
)
def test_fast_forward_mid_pass_reaches_the_state_playing_reaches(path):
    """A replay resumed after an aggTrade in the middle of pass 1 starts from the state
    (book, ids, open derived aggTrade) that playing passes 0 and 1 up to it leaves."""
    session = load_session([path])
    steps = pass_steps(session)
    symbol = sorted(steps.agg_ids)[0]
    derived = _first_agg(session, symbol) is None
    target = (1 if derived else _first_agg(session, symbol)) + steps.agg_ids[symbol] * 3 // 2

    async def played() -> _Stops:
        exchange = _Stops(path, {symbol: target})
        exchange._listening = asyncio.Event()
        exchange._listening.set()
        exchange.session = await asyncio.to_thread(load_session, [path])
        exchange._prepare(exchange.session)
        exchange.player = Player(exchange.session, exchange, None, loop=True)
        with pytest.raises(asyncio.CancelledError):
            await exchange.player.run()
        return exchange

    reference = asyncio.run(played())
    time_ms = reference.markets[symbol].agg_trades[-1].T

    async def resumed() -> LocalExchange:
        exchange = LocalExchange(
            [path], speed="max", after_trades={(session.market, symbol): (target, time_ms)}
        )
        exchange.session = await asyncio.to_thread(load_session, [path])
        exchange._prepare(exchange.session)
        point, offsets = exchange._resume(exchange.session)
        assert point.pass_n == 1 and point.targets == {symbol: target}
        exchange.player = Player(
            exchange.session, exchange, None, first_pass=1, first_offsets=offsets
        )
        await exchange.player.fast_forward(lambda: exchange._reached(point.targets), MARKET_KINDS)
        return exchange

    exchange = asyncio.run(resumed())
    assert _state(exchange, symbol) == reference.states[symbol]
    assert exchange.markets[symbol].last_agg_id == target


def _first_agg(session, symbol: str) -> int | None:
    return next(
        (
            int(e.data.split(b'"a":')[1].split(b",")[0])
            for e in session.events
            if e.kind == "aggTrade" and e.symbol == symbol
        ),
        None,
    )
