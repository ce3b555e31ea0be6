"""An offline replay started again on the same history continues it: the local exchange
resumes right after the newest stored trade (any pass, mid-pass too) and the trade window
is seeded with the history's last hour, so the tape reads as one log, ids increasing with
no repeat or hole at the join. Real local exchange on loopback, real feed, real Parquet files, wired
as ``python -m app --source replay`` wires them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from app.config import Settings
from app.history_setup import past_trades, start_history
from app.market_source import feed_config, start_replay
from services.history.reader import HistoryReader
from services.market.feed import Feed
from services.market.views import TradeView
from services.replay.player import DAY_MS
from services.replay.recording import SPOT_2021
from services.store import MemoryStore
from tests.recorded_trades import recorded_trades

SYMBOL = "BTCUSDT"


class _Tape:
    """Every trade id the feed accepts for ``SYMBOL``."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def on_trades(self, symbol: str, trades: TradeView) -> None:
        if symbol == SYMBOL:
            self.ids.extend(int(i) for i in trades.trade_id)

    def on_book(self, symbol: str, book: object) -> None:
        return None

    def on_candle(self, symbol: str, candle: object) -> None:
        return None


def _settings(tmp_path: Path, *, loop: bool) -> Settings:
    """``--source replay`` of the 2021 spot recording at max speed into a fresh history."""
    return Settings(
        source="replay",
        recording=SPOT_2021,
        speed="max",
        loop=loop,
        symbols=(SYMBOL,),
        history_dir=tmp_path / "history",
        exchange_port=0,
    )


@contextlib.contextmanager
def _run(settings: Settings, tape: _Tape, store: MemoryStore) -> Iterator[object]:
    source = start_replay(settings, records_history=True)
    history = start_history(settings, source)
    assert history is not None
    feed = Feed(
        feed_config(settings, source),
        store,
        taps=(history.recorder, tape),
        past_trades=past_trades(settings, source),
    )
    feed.start_in_thread()
    try:
        yield source.exchange
    finally:
        feed.stop()
        history.stop()
        source.close()


def _window_last(store: MemoryStore) -> int:
    snapshot = store.snapshot(SYMBOL)
    return (
        -1
        if snapshot is None or not len(snapshot.trades.trade_id)
        else int(snapshot.trades.trade_id[-1])
    )


def _play_one_pass(settings: Settings, tape: _Tape, store: MemoryStore, last_id: int) -> None:
    with _run(settings, tape, store):
        deadline = time.monotonic() + 60
        while not tape.ids or tape.ids[-1] < last_id or _window_last(store) < last_id:
            assert time.monotonic() < deadline, f"the feed never reached trade {last_id}"
            time.sleep(0.1)


def test_restarted_replay_continues_the_stored_tape(tmp_path: Path) -> None:
    recorded = [t.trade_id for t in recorded_trades(SPOT_2021)[SYMBOL]]
    first, last = recorded[0], recorded[-1]
    step = last - first + 1  # what one loop pass adds to the ids
    settings = _settings(tmp_path, loop=False)
    reader = HistoryReader(settings.history_dir)

    # First run: the recording is imported before the exchange starts, so the replay goes
    # on from its end (pass 1): new trades from the first second, not a pass of stored ids.
    # The window is seeded with the last hour before the replay's clock: the imported pass
    # is a pass shift (a day) earlier, so the window starts with pass 1.
    tape1, store1 = _Tape(), MemoryStore()
    _play_one_pass(settings, tape1, store1, last + step)
    assert tape1.ids == list(range(last + 1, last + step + 1))
    stored_newest, _ = reader.newest_trades()[("spot", SYMBOL)]
    assert stored_newest == last + step

    # Second run on the same history: the next pass, continuing the stored ids.
    tape2, store2 = _Tape(), MemoryStore()
    _play_one_pass(settings, tape2, store2, last + 2 * step)
    assert tape2.ids[0] == stored_newest + 1  # the first new trade follows the stored newest
    assert tape2.ids == list(range(last + step + 1, last + 2 * step + 1))  # no repeat or hole
    window = store2.snapshot(SYMBOL)
    assert window is not None
    ids = window.trades.trade_id
    assert ids[0] == last + step + 1 and ids[-1] == last + 2 * step  # a day later: not seeded
    assert np.array_equal(np.diff(ids), np.ones(len(ids) - 1))
    frame = reader.trade_frame("spot", SYMBOL)
    passes = recorded + [i + step for i in recorded] + [i + 2 * step for i in recorded]
    assert frame["trade_id"].to_list() == passes
    assert reader.coverage("spot", SYMBOL).gaps == ()


def test_replay_stopped_mid_pass_resumes_at_the_next_trade(tmp_path: Path) -> None:
    """Stopped in the middle of a pass after the first (``--loop``), the replay started
    again plays that pass on from the trade after the newest stored one: the store holds
    every pass's ids with no hole and no repeat, and the restarted feed's first new trade is the
    stored newest + 1. Every stored time is on the replay clock."""
    trades = recorded_trades(SPOT_2021)[SYMBOL]
    recorded = [t.trade_id for t in trades]
    recorded_times = [t.time_ms for t in trades]
    first, last = recorded[0], recorded[-1]
    step = last - first + 1
    settings = _settings(tmp_path, loop=True)
    reader = HistoryReader(settings.history_dir)

    tape1 = _Tape()
    # Stopped in the middle of pass 1 (or a little later: at max speed the feed runs on
    # while it stops).
    _play_one_pass(settings, tape1, MemoryStore(), last + step // 2)
    stored_newest, _ = reader.newest_trades()[("spot", SYMBOL)]
    assert stored_newest >= last + step // 2
    assert (stored_newest - first + 1) % step  # inside a pass, not at its end

    tape2 = _Tape()
    _play_one_pass(settings, tape2, MemoryStore(), stored_newest + step // 2)
    new = [i for i in tape2.ids if i > stored_newest]
    assert new[0] == stored_newest + 1  # resumed at the very next trade of the pass
    assert new == list(range(stored_newest + 1, new[-1] + 1))  # across a seam too
    assert max(i for i in tape2.ids if i <= stored_newest) == stored_newest  # seeded past
    frame = reader.trade_frame("spot", SYMBOL)
    ids = frame["trade_id"].to_list()
    expected = [i + n * step for n in range(8) for i in recorded]
    assert ids == expected[: len(ids)]  # the recording's ids, each once, in order
    assert ids[-1] >= stored_newest + step // 2
    assert reader.coverage("spot", SYMBOL).gaps == ()
    # Every stored time is on the replay clock (the recording's time, a day per pass), not
    # this machine's: trades, book tops (also the states written at start and stop), grid
    # cells, candles, gap records.
    passes = (ids[-1] - first) // step + 1
    session_ms = (recorded_times[0], recorded_times[-1] + passes * DAY_MS)
    for path, column, low, high in _stored_times(settings.history_dir):
        assert session_ms[0] - DAY_MS <= low and high <= session_ms[1], (path, column)


def _stored_times(root: Path) -> Iterator[tuple[Path, str, int, int]]:
    """(file, column, min, max) of every time column of every stored segment (ms)."""
    scale = {"time_ms": 1, "open_ms": 1, "from_ms": 1, "to_ms": 1, "time_s": 1000}
    for path in sorted(root.rglob("*.parquet")):
        frame = pl.read_parquet(path)
        for column in set(frame.columns) & set(scale):
            if frame.height:
                low, high = frame[column].min(), frame[column].max()
                yield path, column, low * scale[column], high * scale[column]
