"""A feed recording into a history directory until killed: the process the kill -9 test
kills. ``python tests/integration/history_ingest.py WS_URL REST_URL MARKET HISTORY_DIR``"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.binance.backoff import Backoff
from services.binance.endpoints import custom
from services.history.service import HistoryConfig, HistoryService
from services.market.feed import Feed, FeedConfig
from services.store import MemoryStore

FAST = Backoff(initial=0.05, cap=0.5, floor=0.02)


def main(ws: str, rest: str, market: str, root: str) -> None:
    endpoints = custom(ws, rest, market=market)
    config = HistoryConfig(Path(root), flush_interval_s=0.2, compact_every_s=0.5)
    history = HistoryService(config, endpoints, market, backoff=FAST).start()
    feed = Feed(
        FeedConfig(endpoints=endpoints, publish_interval_s=0.1, backoff=FAST),
        MemoryStore(),
        taps=(history.recorder,),
    )
    feed.start_in_thread()
    print("recording", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(*sys.argv[1:5])
