"""A replay can start at any loop pass: the offsets, book ids and derived aggTrade ids that
``services.replay.passes`` computes for pass n equal what the local exchange reaches by
playing passes 0..n-1 (real exchange and player, no sockets); and the pass after stored
trades is picked only for this recording's trades."""

from __future__ import annotations

import asyncio

import pytest

from services.replay.exchange import LocalExchange
from services.replay.passes import first_pass_after, pass_offsets, pass_steps, start_book_id
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
    first_agg = next(
        int(e.data.split(b'"a":')[1].split(b",")[0])
        for e in session.events
        if e.kind == "aggTrade" and e.symbol == "BTCUSDT"
    )
    last_agg = first_agg + steps.agg_ids["BTCUSDT"] - 1
    end_ms = session.end_ns // 1_000_000
    assert first_pass_after(session, 0, {}) == 0
    assert first_pass_after(session, 0, {"BTCUSDT": (last_agg, end_ms)}) == 1
    in_pass_3 = (last_agg + 3 * steps.agg_ids["BTCUSDT"] - 10, end_ms + 3 * steps.time_ms - 5)
    assert first_pass_after(session, 0, {"BTCUSDT": in_pass_3}) == 4
    live = (3_000_000_000, 1_764_000_000_000)  # same symbol, another market's ids and times
    assert first_pass_after(session, 0, {"BTCUSDT": live}) == 0
    assert first_pass_after(session, 0, {"BTCUSDT": (last_agg, end_ms + 7_200_000)}) == 0
