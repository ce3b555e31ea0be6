"""The feed as ``python -m app run`` and ``python -m app worker`` build it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from app import market_source
from app.config import Settings
from app.history_setup import past_trades
from app.market_source import MarketSource
from services.cluster.owned_tap import OwnedTap
from services.history.service import HistoryService
from services.market.feed import Feed, FeedConfig
from services.market.taps import FeedTap
from services.store import MarketStore


def build_feed(
    settings: Settings,
    source: MarketSource,
    store: MarketStore,
    history: HistoryService | None,
    taps: Sequence[FeedTap],
    config: FeedConfig | None = None,
    owns: Callable[[str], bool] | None = None,
) -> Feed:
    """A feed on ``source`` (``config``, else the source's feed config) publishing to
    ``store``: the history recorder (when ``history`` records) is its first tap, then
    ``taps``; REST weight is shared through Redis when set, and trade windows are seeded
    from the history store. With ``owns`` (sharded workers) the history records only the
    symbols it says this worker owns."""
    recorder = () if history is None else (history.recorder,)
    if history is not None and owns is not None:
        recorder = (OwnedTap(history.recorder, owns),)
    return Feed(
        config or market_source.feed_config(settings, source),
        store,
        taps=(*recorder, *taps),
        shared_weight=market_source.shared_weight(settings),
        past_trades=past_trades(settings, source),
    )
