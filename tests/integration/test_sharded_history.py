"""One history writer per symbol with sharded workers, against a real redis-server and real
Parquet: two workers whose feeds both hand every symbol's trades to their history tap (as
during a hand-over's ``keep_s``) record only the symbols whose shard they hold; after one
leaves, the other records everything. Together the two histories hold every trade once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import redis

from app.cli.worker import owned
from services.cluster.coordinator import ShardCoordinator
from services.cluster.leases import ShardLeases
from services.cluster.owned_tap import OwnedTap
from services.cluster.shards import shard_of
from services.history.reader import HistoryReader
from services.history.recorder import HistoryRecorder
from services.history.writer import HistoryWriter
from services.market.views import TradeView
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis
SYMBOLS = [f"S{i}USDT" for i in range(12)]
MARKET = "spot"


def _trades(symbol: str, ids: range) -> TradeView:
    n = len(ids)
    return TradeView(
        symbol,
        trade_id=np.asarray(ids, dtype=np.int64),
        time_ms=np.asarray(ids, dtype=np.int64) * 10 + 1_700_000_000_000,
        price=np.full(n, 100.0),
        qty=np.full(n, 0.5),
        side=np.where(np.arange(n) % 2 == 0, 1.0, -1.0),
    )


def _stored(root: Path, symbol: str) -> list[int]:
    reader = HistoryReader(root)
    if (MARKET, symbol) not in reader.symbols():
        return []
    return reader.trades(MARKET, symbol).trade_id.tolist()


def test_each_symbol_is_recorded_by_its_owner_only(tmp_path: Path) -> None:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        coordinators = [ShardCoordinator(ShardLeases(client, t, 10_000)) for t in ("a", "b")]
        for coordinator in (*coordinators, *coordinators, coordinators[0]):
            # both alive; a offers half, b takes it, a learns it is gone: fair shares
            coordinator.tick()
        roots = [tmp_path / "a", tmp_path / "b"]
        writers = [HistoryWriter(root, flush_interval_s=0.1).start() for root in roots]
        taps = [
            OwnedTap(HistoryRecorder(w, MARKET), owned(c))
            for w, c in zip(writers, coordinators, strict=True)
        ]
        held = [set(c.held) for c in coordinators]
        assert held[0] and held[1] and held[0].isdisjoint(held[1])
        for first in range(0, 100, 20):
            for symbol in SYMBOLS:
                for tap in taps:
                    tap.on_trades(symbol, _trades(symbol, range(first, first + 20)))
        coordinators[0].leave()
        coordinators[1].tick()
        assert len(coordinators[1].held) == coordinators[1].leases.shards
        for symbol in SYMBOLS:
            for tap in taps:
                tap.on_trades(symbol, _trades(symbol, range(100, 150)))
        for writer in writers:
            assert writer.flush(timeout=20)
            writer.stop()
    for symbol in SYMBOLS:
        first_owner = 0 if shard_of(symbol) in held[0] else 1
        ids = [_stored(root, symbol) for root in roots]
        assert sorted(ids[0] + ids[1]) == list(range(150)), symbol
        if first_owner == 0:
            assert ids[0] == list(range(100)) and ids[1] == list(range(100, 150)), symbol
        else:
            assert ids[0] == [] and ids[1] == list(range(150)), symbol
