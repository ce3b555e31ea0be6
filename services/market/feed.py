"""The feed: the one writer of market state. It turns Binance's (or the local exchange's)
streams and REST answers into per-symbol books and trade windows and publishes immutable
snapshots to the store.

One asyncio loop, usually in a background thread (``start_in_thread``), runs:

- the stream consumer: every frame goes to its symbol's ``BookSync`` (diffs) or
  ``TradeLog`` (trades), kline and ticker frames update the latest values;
- the snapshot desk: symbols whose book needs a REST snapshot queue here and are served by
  ``snapshot_concurrency`` desks at once under the REST client's weight budget, so a
  reconnect never becomes a snapshot herd; first syncs are light while many symbols wait
  and books are deepened later (``services.market.snapshot_desk``);
- trade backfill: a gap in trade ids is filled from ``aggTrades?fromId=`` before the
  trades that followed it are released;
- the publisher: every ``publish_interval_s`` a ``SymbolSnapshot`` per changed symbol and
  the ``FeedStatus``; symbols the UI asks for are subscribed on demand.

Nothing a peer sends can stop the feed: frames with prices or quantities out of range
never decode (the client counts them as malformed and the id chain then resyncs the book
or backfills the trade from REST); frames for symbols it does not stream and frames whose
handling fails are counted in ``FeedCounters`` (``Feed.stats()``) and logged through
``services.logs.EventLog`` (one line per event, repeated faults summarised).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import msgspec

from services import event_loop
from services.binance import streams as names
from services.binance.backoff import Backoff
from services.binance.endpoints import Endpoints
from services.binance.messages import (
    AggTrade,
    DepthUpdate,
    Kline,
    MalformedFrame,
    MiniTicker,
    Ticker,
    Trade,
)
from services.binance.rate_limit import (
    BudgetStats,
    Priority,
    SharedWeightWindow,
    WeightBudget,
    default_weight_budget,
)
from services.binance.rest_client import BinanceHttpError, BinanceRestClient
from services.binance.ws_client import (
    BinanceWebSocketClient,
    ConnectionEvent,
    ConnectionStats,
    ControlError,
    LifecycleKind,
    Received,
)
from services.logs import EventLog
from services.market.book_samples import book_samples_of
from services.market.book_sync import QUEUED_BUFFER, BookSync, SyncAction
from services.market.depth_switch import DepthStreams
from services.market.market_board import MarketBoard, ticker_from_rest
from services.market.publication import publication_order, round_cap
from services.market.published_trades import PublishedTrades
from services.market.snapshot_desk import (
    BookDepth,
    ShadowBook,
    budget_share,
    next_deepening,
    sync_limit,
)
from services.market.sync_watchdog import (
    BookWatch,
    SyncWatchdog,
    WatchAction,
    expected_snapshot_wait,
)
from services.market.taps import FeedTap
from services.market.trade_log import TradeGap, TradeLog, TradeRow, trade_rows
from services.market.views import SymbolInfo, SyncState
from services.store import Candle, FeedStatus, MarketStore, SymbolSnapshot, Ticker24h

log = logging.getLogger(__name__)

ALL_SYMBOLS = "ALL"
"""``symbols=("ALL",)`` streams every TRADING symbol's book and trades."""
CONFIRM_LIMIT = 5
"""Levels asked for when a snapshot only confirms a quiet book's update id (weight 5 spot,
2 USD-M, against 50/20 for 1000 levels)."""
SNAPSHOT_RETRY_S = 1.0
"""Least wait before a failed snapshot is asked again (longer while the budget is paused)."""
BACKFILL_PAGE = 1000
MAX_BACKFILL_PAGES = 20
CANDLE_HISTORY = 120
MANY_SYMBOLS = 50
"""A feed given more symbols than this (or ``ALL``, or following shards) streams the books
nobody watches at the slow diff speed by default (``FeedConfig.unwatched_depth_ms``)."""
DEPTH_SPEEDS_MS = (100, 1000)


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """How the feed runs.

    endpoints: where to connect (a Binance preset or the local exchange).
    symbols: streamed from the start (empty: every TRADING symbol the exchange lists, up to
        ``max_default_symbols``; ``("ALL",)``: every TRADING symbol).
        source/recording/recording_date: shown in the status.
    trade_window: trades kept per symbol. book_levels: levels per side in snapshots.
    publish_interval_s: publication period. max_on_demand_symbols: symbols the UI may add.
    on_demand_idle_s: an on-demand symbol nobody asked for this long is released.
    rest_weight_budget: REST weight per minute (0: 80 % of Binance's limit for the market).
    idle_timeout_s: stream watchdog.
    backoff: reconnect and REST retry delays (the clients' defaults when None).
    snapshot_limit: levels per sync snapshot (0: light while many symbols wait, see
        ``snapshot_desk.sync_limit``). snapshot_concurrency: snapshots in flight at once.
    deepen: deepen light books later (watched ones to the market's deepest snapshot).
    follow: start with no symbol: which ones to stream is set by ``Feed.follow`` (a
        sharded worker streams the symbols of the shards it holds).
    watchlist_interval_s: how often the market board (every TRADING symbol, from
        ``!miniTicker@arr``) is published for the watchlist (0: not streamed). With the
        array streamed, a symbol's 24 h ticker comes from it, not from its own stream.
    watchlist_score_s: a streamed book's liquidity score on the board is recomputed at
        most this often (a watched symbol's, its spread and its sync state at every board
        round): a score costs ≈ 0.1 ms, and a worker streaming the whole market would
        spend ≈ 10 % of a core rescoring 1,000 books a second.
    log_period_s: repeated faults of one kind are logged once per this period.
    confirm_after_s: after a reconnect, a book that no diff has brought back to LIVE by
        then (a quiet market) is checked against a snapshot.
    sync_watchdog_s: a book away from LIVE longer than twice the expected snapshot wait,
        and at least this long, gets its snapshot asked again or its depth stream
        resubscribed (``services.market.sync_watchdog``; 0: no watchdog).
    heartbeat_s: an unchanged symbol is republished this often, so readers can tell a
        quiet market (fresh ``published_at``) from a dead feed (an old one).
    publish_budget_per_s: symbol publications a second at most (0: no limit); over it a
        round writes the watched and longest-unpublished symbols first
        (``services.market.publication``).
    unwatched_depth_ms: the spot diff-depth speed of a book nobody watches (asked for
        within ``on_demand_idle_s``): 100 (``<s>@depth@100ms``) or 1000 (``<s>@depth``);
        a watched book streams at 100 ms, and a book changes speed make-before-break
        (``services.market.depth_switch``) — up as soon as it is asked for, down once
        nobody asked for ``on_demand_idle_s``. 0 (default): 1000 when the feed streams
        many symbols (``ALL``, a sharded worker's ``follow``, more than ``MANY_SYMBOLS``),
        else 100. A 1 s stream halves a quiet symbol's frames. USD-M books stream at
        100 ms whatever this says.
    exchange_clock: the exchange's clock (ms) at a wall-clock second — the replay clock of
        a local exchange, whose event times are the recording's. When set, the status lag
        is the median of ``exchange_clock(receive time) − E`` over the last frames; when
        None, the WebSocket client's lag against the wall clock.
    """

    endpoints: Endpoints
    symbols: tuple[str, ...] = ()
    source: str = "LIVE"
    recording: str = ""
    recording_date: str = ""
    trade_window: int = 100_000
    book_levels: int = 5000
    publish_interval_s: float = 0.25
    max_default_symbols: int = 10
    max_on_demand_symbols: int = 5
    on_demand_idle_s: float = 300.0
    rest_weight_budget: int = 0
    idle_timeout_s: float = 30.0
    kline_interval: str = "1m"
    backoff: Backoff | None = None
    snapshot_limit: int = 0
    snapshot_concurrency: int = 8
    deepen: bool = True
    watchlist_interval_s: float = 1.0
    watchlist_score_s: float = 5.0
    follow: bool = False
    log_period_s: float = 10.0
    confirm_after_s: float = 2.0
    sync_watchdog_s: float = 5.0
    heartbeat_s: float = 1.0
    publish_budget_per_s: float = 1000.0
    exchange_clock: Callable[[float], int] | None = None
    unwatched_depth_ms: int = 0

    def __post_init__(self) -> None:
        if self.unwatched_depth_ms and self.unwatched_depth_ms not in DEPTH_SPEEDS_MS:
            raise ValueError(
                f"unwatched_depth_ms must be 0 (auto), 100 or 1000, not {self.unwatched_depth_ms}"
            )

    def depth_speed_ms(self, watched: bool) -> int:
        """The diff-depth speed (ms) of a book a user watches or not."""
        if watched or self.endpoints.market != "spot":
            return 100
        if self.unwatched_depth_ms:
            return self.unwatched_depth_ms
        symbols = self.symbols
        every = len(symbols) == 1 and symbols[0].upper() == ALL_SYMBOLS
        many = self.follow or every or len(symbols) > MANY_SYMBOLS
        return 1000 if many else 100


@dataclass(slots=True)
class FeedCounters:
    """What the feed refused or repaired, cumulative since start.

    unknown_symbol_frames: data frames of a symbol the feed does not stream.
    frame_errors: frames whose handling raised (dropped, logged).
    snapshots_fetched / snapshots_failed: REST depth snapshots applied, and failed (HTTP,
        decoding, or a level out of range). books_deepened: LIVE books given a deeper
        snapshot's levels without leaving LIVE. backfills / backfill_failures: trade gaps
        fetched from REST. tap_errors: calls of a ``FeedTap`` that raised (the feed went on).
        publish_errors: publication rounds that raised (logged; the next round goes on).
        task_errors: background tasks (desks, backfills, warm-ups…) that ended by raising.
        watchdog_snapshots / watchdog_resubscribes: books away from LIVE too long whose
        snapshot the SYNCING watchdog asked again, and whose depth stream it resubscribed
        (no diff had arrived).
        depth_switches / depth_switch_resyncs: books moved to their other diff speed
        (``services.market.depth_switch``) with a bridge, and without one (resynced on
        the new stream).
    """

    unknown_symbol_frames: int = 0
    frame_errors: int = 0
    snapshots_fetched: int = 0
    snapshots_failed: int = 0
    backfills: int = 0
    backfill_failures: int = 0
    books_deepened: int = 0
    tap_errors: int = 0
    publish_errors: int = 0
    task_errors: int = 0
    watchdog_snapshots: int = 0
    watchdog_resubscribes: int = 0
    depth_switches: int = 0
    depth_switch_resyncs: int = 0


@dataclass(frozen=True, slots=True)
class FeedStats:
    """The feed's counters next to ``FeedStatus``: its own (``counters``), the books'
    resyncs and gaps summed over symbols, the REST budget and the connections."""

    counters: FeedCounters
    resyncs: int
    gaps: int
    crossed: int
    trade_duplicates: int
    budget: BudgetStats | None
    connections: tuple[ConnectionStats, ...]
    faults_logged: dict[str, int]


@dataclass(slots=True)
class _SymbolFeed:
    """One streamed symbol's state. ``dirty``: anything changed since the last publication;
    ``trades_changed``: the trade log did, so its view is renewed at the next publication
    rather than at every one (``published``: with the trades added since, not a copy of
    the whole window). ``tapped_id``: the newest
    trade id handed to the feed's taps. ``diffs``: depth diffs received (the SYNCING
    watchdog tells a flowing stream from a silent one by it). ``store_read``: False while a
    followed symbol's stored trade window (a previous owner's) has not been read yet;
    nothing is published for it until then, or this owner's first write would replace the
    window it is to continue. ``depth``: its diff-depth stream(s); ``other_streams``: the
    rest (trades, candles, ticker)."""

    info: SymbolInfo
    book: BookSync
    trades: TradeLog
    depth: DepthStreams
    other_streams: tuple[str, ...]
    on_demand: bool = False
    seq: int = 0
    dirty: bool = True
    trades_changed: bool = True
    candles: deque[Candle] = field(default_factory=lambda: deque(maxlen=CANDLE_HISTORY))
    ticker: Ticker24h | None = None
    backfilling: bool = False
    snapshot: SymbolSnapshot | None = None
    depth_limit: int = 0
    shadow: ShadowBook | None = None
    deepen_failed_at: float | None = None
    tapped_id: int = -1
    diffs: int = 0
    store_read: bool = True
    lanes: tuple[Callable[[object], None], ...] = ()  # the puts of the laned taps, in order
    published: PublishedTrades = field(default_factory=PublishedTrades)  # its trade views

    @property
    def streams(self) -> tuple[str, ...]:
        """Every stream of the symbol subscribed now (both depth streams during a change)."""
        return (*self.depth.subscribed, *self.other_streams)


class Feed:
    """Runs the market-data pipeline for a set of symbols and publishes to ``store``;
    ``taps`` receive the accepted trades, book changes and candles as they happen
    (``services.market.taps``). ``past_trades(symbol)``, when given, seeds each symbol's
    trade window before its stream starts (the history's recent trades, so a restart shows
    what came before; the gap up to the first streamed trade is then backfilled as any)."""

    def __init__(
        self,
        config: FeedConfig,
        store: MarketStore,
        taps: Sequence[FeedTap] = (),
        shared_weight: SharedWeightWindow | None = None,
        past_trades: Callable[[str], Iterable[TradeRow]] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._taps = tuple(taps)
        self._level_taps = tuple(t for t in self._taps if callable(getattr(t, "on_levels", None)))
        self._lane_taps = tuple(t for t in self._taps if callable(getattr(t, "lane_for", None)))
        self._hook_taps = tuple(t for t in self._taps if t not in self._lane_taps)
        self._hook_level_taps = tuple(t for t in self._level_taps if t not in self._lane_taps)
        self._row_taps = tuple(
            t for t in self._hook_taps if callable(getattr(t, "on_trade_row", None))
        )
        self._view_taps = tuple(t for t in self._hook_taps if t not in self._row_taps)
        self._past_trades = past_trades
        self._shared_weight = shared_weight
        self._in_flight: set[str] = set()
        self._board = MarketBoard()
        self._board_published_at = 0.0
        self._board_seqs: dict[str, int] = {}
        self._board_scored_at: dict[str, float] = {}
        self._tickers: dict[str, Ticker24h] = {}
        self._ready = asyncio.Event()
        self._symbols: dict[str, _SymbolFeed] = {}
        self._infos: dict[str, SymbolInfo] = {}
        self._snapshot_queue: asyncio.Queue[str] | None = None
        self._queued: set[str] = set()
        self._asked_again: set[str] = set()
        self._disconnected: set[str] = set()
        self._snapshot_took: deque[float] = deque(maxlen=32)
        self.watchdog = SyncWatchdog()
        self._client: BinanceWebSocketClient | None = None
        self._rest: BinanceRestClient | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._message_marks: deque[tuple[float, int]] = deque(maxlen=64)
        self._connected: dict[int, bool] = {}
        self._detail = ""
        self._stopped = threading.Event()
        self.counters = FeedCounters()
        self.events = EventLog(log, config.log_period_s)
        self._malformed_seen = 0
        self.book_samples = book_samples_of(store)
        self._clock_lags: deque[int] = deque(maxlen=512)
        self._requests: dict[str, float] = {}
        self._switching: set[str] = set()  # books changing diff stream
        self._retired_depth: list[str] = []  # depth streams to unsubscribe
        self._steered_at = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    def start_in_thread(self) -> None:
        """Run the feed in a daemon thread with its own event loop."""
        if self._thread is not None:
            return
        ready = threading.Event()

        def target() -> None:
            loop = event_loop.new_event_loop()
            self._loop = loop
            self._main = loop.create_task(self.run())
            ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._main)
            loop.close()
            self._stopped.set()

        self._thread = threading.Thread(target=target, name="tapescope-feed", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the feed thread and close its connections."""
        if self._loop is None or self._main is None:
            return
        self._loop.call_soon_threadsafe(self._main.cancel)
        self._stopped.wait(timeout)

    async def run(self) -> None:
        """Connect, sync and publish until cancelled."""
        cfg = self.config
        self._snapshot_queue = asyncio.Queue()
        limit = cfg.rest_weight_budget or default_weight_budget(cfg.endpoints.market)
        self._rest = BinanceRestClient(
            cfg.endpoints,
            budget=WeightBudget(limit, shared=self._shared_weight),
            backoff=cfg.backoff,
        )
        self._client = BinanceWebSocketClient(
            cfg.endpoints, idle_timeout_s=cfg.idle_timeout_s, backoff=cfg.backoff
        )
        try:
            await self._load_symbols()
            with contextlib.suppress(Exception):  # watched books start at their speed
                self._requests = self.store.requested_symbols()
            initial = self._initial_symbols()
            for symbol in initial:
                self._add_symbol(symbol, on_demand=False)
            streams = [s for feed in self._symbols.values() for s in feed.streams]
            if cfg.watchlist_interval_s:
                streams.append(names.ALL_MINI_TICKERS)
                self._spawn(self._seed_board())
            await self._client.subscribe(streams)
            async with self._client:
                self._ready.set()
                for _ in range(max(1, cfg.snapshot_concurrency)):
                    self._spawn(self._snapshot_desk())
                if cfg.deepen:
                    self._spawn(self._deepener())
                if cfg.sync_watchdog_s:
                    self._spawn(self._sync_watchdog())
                self._spawn(self._publisher())
                for symbol in initial:
                    self._spawn(self._warm_up(symbol))
                async for item in self._client.listen_with_reconnect():
                    if isinstance(item, Received):
                        self._on_frame(item)
                    else:
                        self._on_connection(item)
        finally:
            for task in self._tasks:
                task.cancel()
            await self._rest.close()
            self.events.flush(force=True)
            self.store.publish_status(self._status("DOWN"))

    # -- symbols --------------------------------------------------------------------------

    async def _load_symbols(self) -> None:
        assert self._rest is not None
        while True:
            try:
                infos = await self._rest.exchange_info()
                break
            except (BinanceHttpError, MalformedFrame) as exc:
                self._detail = f"exchangeInfo failed: {exc}"
                self.store.publish_status(self._status("CONNECTING"))
                await asyncio.sleep(5.0)
        self._infos = {info.symbol: info for info in infos if info.status == "TRADING"}
        self.store.publish_symbols(list(self._infos.values()))

    def _initial_symbols(self) -> list[str]:
        wanted = [s.upper() for s in self.config.symbols]
        if self.config.follow:
            return []
        if wanted == [ALL_SYMBOLS]:
            return sorted(self._infos)
        if not wanted:
            wanted = sorted(self._infos)[: self.config.max_default_symbols]
        unknown = [s for s in wanted if s not in self._infos]
        if unknown:
            valid = ", ".join(sorted(self._infos)[:20])
            raise ValueError(f"unknown or not trading: {', '.join(unknown)}; valid: {valid}")
        return wanted

    def _depth_stream(self, symbol: str, watched: bool) -> str:
        """The diff-depth stream a book should apply (``FeedConfig.depth_speed_ms``)."""
        speed = self.config.depth_speed_ms(watched)
        return names.diff_depth(symbol, None if speed == 1000 else speed)

    def _streams_for(self, symbol: str) -> tuple[str, ...]:
        """The symbol's streams other than its diff depth."""
        streams = (
            names.agg_trade(symbol),
            names.kline(symbol, self.config.kline_interval),
        )
        if self.config.watchlist_interval_s:
            # The all-market array is streamed for the board: a symbol's ticker comes from
            # it (``_take_tickers``), one frame a second for every symbol, not one each.
            return streams
        return (*streams, names.mini_ticker(symbol))

    def _add_symbol(self, symbol: str, on_demand: bool) -> _SymbolFeed:
        feed = _SymbolFeed(
            info=self._infos[symbol],
            book=BookSync(symbol, self.config.endpoints.market),
            trades=TradeLog(
                symbol, capacity=self.config.trade_window, kind="aggTrade", backfill_gaps=True
            ),
            depth=DepthStreams(
                self._depth_stream(symbol, symbol in self._watched_now(time.time()))
            ),
            other_streams=self._streams_for(symbol),
            on_demand=on_demand,
        )
        kind = feed.trades.kind
        feed.lanes = tuple(t.lane_for(symbol, kind) for t in self._lane_taps)  # type: ignore[attr-defined]
        self._disconnected.discard(symbol)  # its streams are subscribed afresh
        if self._past_trades is not None:  # e.g. the stored history's last hour
            feed.trades.warm_up(self._past_trades(symbol))
        feed.ticker = self._tickers.get(symbol)
        self._symbols[symbol] = feed
        return feed

    async def _serve_requests(self) -> None:
        """Subscribe symbols the UI asked for; release on-demand ones nobody watches."""
        assert self._client is not None
        now = time.time()
        requests = self._requests = self.store.requested_symbols()
        on_demand = [s for s, feed in self._symbols.items() if feed.on_demand]
        for symbol, asked_at in requests.items():
            if symbol in self._symbols or symbol not in self._infos or self.config.follow:
                continue  # a sharded feed streams its shards' symbols only
            if now - asked_at > self.config.on_demand_idle_s:
                continue
            if len(on_demand) >= self.config.max_on_demand_symbols:
                oldest = min(on_demand, key=lambda s: requests.get(s, 0.0))
                await self._release(oldest)
                on_demand.remove(oldest)
            feed = self._add_symbol(symbol, on_demand=True)
            on_demand.append(symbol)
            await self._client.subscribe(feed.streams)
            self._spawn(self._warm_up(symbol))
        for symbol in on_demand:
            if now - requests.get(symbol, 0.0) > self.config.on_demand_idle_s:
                await self._release(symbol)

    def is_live(self, symbol: str) -> bool:
        """Whether ``symbol`` is streamed here and its book is LIVE."""
        feed = self._symbols.get(symbol)
        return feed is not None and feed.book.state is SyncState.LIVE

    def trading_symbols(self) -> list[str]:
        """Every TRADING symbol of the source (empty until the feed has loaded them)."""
        return sorted(self._infos)

    async def follow(self, symbols: Iterable[str]) -> None:
        """Stream exactly ``symbols`` (and on-demand ones): new ones are subscribed, synced
        by Binance's procedure and their trades warmed up from REST; the others are
        released. Waits until the feed is connected."""
        await self._ready.wait()
        assert self._client is not None
        wanted = {s for s in symbols if s in self._infos}
        released: list[str] = []
        for symbol, feed in list(self._symbols.items()):
            if symbol in wanted:
                feed.on_demand = False
            elif not feed.on_demand:
                released.extend(self._symbols.pop(symbol).streams)
        if released:
            await self._client.unsubscribe(released)  # one paced request per connection
        added = [self._add_symbol(s, on_demand=False) for s in sorted(wanted - set(self._symbols))]
        for feed in added:
            feed.store_read = False
        if added:
            await self._client.subscribe([name for feed in added for name in feed.streams])
            for feed in added:
                self._spawn(self._warm_up(feed.info.symbol))

    def follow_soon(self, symbols: Iterable[str]) -> bool:
        """``follow`` from another thread, without waiting; False when the feed is not running."""
        if self._loop is None or self._loop.is_closed():
            return False
        asyncio.run_coroutine_threadsafe(self.follow(list(symbols)), self._loop)
        return True

    async def _release(self, symbol: str) -> None:
        assert self._client is not None
        feed = self._symbols.pop(symbol, None)
        if feed is not None:
            await self._client.unsubscribe(feed.streams)

    # -- frames ---------------------------------------------------------------------------

    def _on_frame(self, item: Received) -> None:
        """Hand one frame to its symbol; a frame that cannot be handled is counted."""
        try:
            if self.config.exchange_clock is not None:
                event_time = getattr(item.frame.event, "E", None)
                if event_time:
                    self._clock_lags.append(
                        self.config.exchange_clock(item.received_at) - event_time
                    )
            self._dispatch(item)
        except Exception as exc:
            self.counters.frame_errors += 1
            self.events.fault(
                "frame_error", logging.ERROR, stream=item.frame.stream, error=repr(exc)
            )

    def _dispatch(self, item: Received) -> None:
        event = item.frame.event
        if isinstance(event, DepthUpdate):
            self._on_depth(item, event)
        elif isinstance(event, AggTrade | Trade):
            trade_id = event.a if isinstance(event, AggTrade) else event.t
            if not self._on_trade(event.s, trade_id, event.T, event.p, event.q, event.m):
                self._unknown_symbol(item)
        elif isinstance(event, Kline):
            feed = self._symbols.get(event.s)
            if feed is None:
                self._unknown_symbol(item)
                return
            _add_candle(feed.candles, event)
            feed.dirty = True
            if self._taps:
                self._tap_candle(event.s, feed.candles[-1])
        elif isinstance(event, list):
            self._take_tickers(event)
        elif isinstance(event, MiniTicker | Ticker):
            feed = self._symbols.get(event.s)
            if feed is None:
                self._unknown_symbol(item)
                return
            feed.ticker = _ticker24h(event)
            feed.dirty = True

    def _on_depth(self, item: Received, event: DepthUpdate) -> None:
        feed = self._symbols.get(event.s)
        if feed is None:
            self._unknown_symbol(item)
            return
        feed.diffs += 1
        depth = feed.depth
        if depth.switch is None and item.frame.stream == depth.stream:
            self._apply_depth(feed, event)
            return
        apply = functools.partial(self._apply_depth, feed)
        retired = depth.on_diff(item.frame.stream, event, feed.book, apply, item.received_at)
        if retired is not None:
            self._depth_moved(event.s, feed, retired)

    def _apply_depth(self, feed: _SymbolFeed, event: DepthUpdate) -> None:
        """Hand one diff of the stream the book applies to the book (and the taps)."""
        resyncs = feed.book.counters.resyncs
        applied = feed.book.counters.diffs_applied
        was_live = feed.book.state is SyncState.LIVE
        if feed.shadow is not None:
            feed.shadow.on_diff(event)
        if feed.book.on_diff(event) is SyncAction.FETCH_SNAPSHOT:
            self._queue_snapshot(event.s)
        if feed.book.counters.resyncs != resyncs:
            self.events.fault("resync", symbol=event.s, reason=feed.book.resync_reason)
        feed.dirty = True
        if self._taps:
            taps, level_taps = self._taps, self._level_taps
            changed = feed.book.counters.diffs_applied != applied
            if feed.lanes and was_live and feed.book.state is SyncState.LIVE:
                if changed:
                    try:  # inline: no Python frame per diff for the laned taps
                        for put in feed.lanes:
                            put(event)
                    except Exception as exc:
                        self._lane_failed(feed, exc)
                taps, level_taps = self._hook_taps, self._hook_level_taps
            if level_taps and changed:
                self._tap_levels(event, feed, level_taps)
            if taps:
                self._tap_book(event.s, feed, taps)

    def _depth_moved(self, symbol: str, feed: _SymbolFeed, retired: str) -> None:
        """A book's change of diff stream completed (``feed.depth.bridged`` tells how):
        ``retired`` is unsubscribed at the next steering round."""
        self._switching.discard(symbol)
        self._retired_depth.append(retired)
        feed.dirty = True
        if feed.depth.bridged:
            self.counters.depth_switches += 1
            self.events.event("depth_switch", symbol=symbol, stream=feed.depth.stream)
        else:
            self.counters.depth_switch_resyncs += 1
            self.events.fault("depth_switch_resync", symbol=symbol, reason=feed.book.resync_reason)

    async def _steer_depths(self, now: float) -> None:
        """Move spot books to the diff speed they should have now (``FeedConfig.
        depth_speed_ms``: watched 100 ms, the others ``unwatched_depth_ms``) make-before-
        break (``services.market.depth_switch``); unsubscribe the streams completed changes
        retired; resync on its new stream a change that did not bridge in time. Books not
        LIVE change once they are. Every watched book is checked each round, all books once
        a second."""
        assert self._client is not None
        retired = [name for name in self._retired_depth if not self._depth_streamed(name)]
        self._retired_depth.clear()
        if retired:
            await self._client.unsubscribe(retired)
        self._settle_overdue(now)
        await self._begin_depth_changes(now)

    def _settle_overdue(self, now: float) -> None:
        """Resync on its new stream each change whose book lost sync or whose held diffs
        waited too long (``depth_switch.BRIDGE_TIMEOUT_S``)."""
        for symbol in list(self._switching):
            feed = self._symbols.get(symbol)
            switch = feed.depth.switch if feed is not None else None
            if feed is None or switch is None:
                self._switching.discard(symbol)
            elif feed.book.needs_snapshot or switch.overdue(now):
                apply = functools.partial(self._apply_depth, feed)
                reason = f"{switch.new} did not bridge {feed.depth.stream}"
                old = feed.depth.abandon(feed.book, apply, reason)
                if old is not None:
                    self._depth_moved(symbol, feed, old)

    async def _begin_depth_changes(self, now: float) -> None:
        """Subscribe the new stream of each LIVE book not on the speed it should have."""
        assert self._client is not None
        if self.config.depth_speed_ms(False) == self.config.depth_speed_ms(True):
            return
        watched = self._watched_now(now)
        every = now - self._steered_at >= 1.0
        if every:
            self._steered_at = now
        starting: list[tuple[_SymbolFeed, str]] = []
        for symbol in self._symbols if every else watched:
            feed = self._symbols.get(symbol)
            if feed is None or feed.depth.switch is not None:
                continue
            wanted = self._depth_stream(symbol, symbol in watched)
            if wanted != feed.depth.stream and feed.book.state is SyncState.LIVE:
                feed.depth.begin(wanted)
                self._switching.add(symbol)
                starting.append((feed, wanted))
        if not starting:
            return
        try:
            await self._client.subscribe([wanted for _, wanted in starting])
        except ControlError as exc:
            self.events.fault("depth_switch_refused", logging.ERROR, error=str(exc))
            for feed, _ in starting:
                feed.depth.switch = None

    def _depth_streamed(self, name: str) -> bool:
        """Whether a diff-depth stream is one a streamed book applies or changes to."""
        feed = self._symbols.get(name.split("@", 1)[0].upper())
        return feed is not None and name in feed.depth.subscribed

    def _unknown_symbol(self, item: Received) -> None:
        self.counters.unknown_symbol_frames += 1
        self.events.fault("unknown_symbol_frame", stream=item.frame.stream)

    def _on_trade(
        self, symbol: str, trade_id: int, time_ms: int, price: float, qty: float, m: bool
    ) -> bool:
        """Add one trade to its symbol's log; False when the symbol is not streamed."""
        feed = self._symbols.get(symbol)
        if feed is None:
            return False
        gap = feed.trades.add(trade_id, time_ms, price, qty, m)
        feed.dirty = feed.trades_changed = True
        if self._taps:
            self._tap_trades(symbol, feed, (trade_id, time_ms, price, qty, m))
        if gap is not None and not feed.backfilling:
            self._start_backfill(symbol, feed, gap)
        return True

    def _start_backfill(self, symbol: str, feed: _SymbolFeed, gap: TradeGap) -> None:
        feed.backfilling = True
        self._spawn(self._backfill(symbol, gap))

    def _on_connection(self, event: ConnectionEvent) -> None:
        kind = event.kind
        self._connected[event.connection_id] = kind in (
            LifecycleKind.CONNECTED,
            LifecycleKind.RECONNECTED,
            LifecycleKind.ROTATED,
        )
        fields = {"conn": event.connection_id, "streams": len(event.streams)}
        symbols = {s.split("@", 1)[0].upper() for s in event.streams}
        if kind is LifecycleKind.DISCONNECTED or kind is LifecycleKind.DROPPED:
            self.events.fault(str(kind), **fields, reason=event.reason)
            for symbol in symbols:
                feed = self._symbols.get(symbol)
                if feed is not None:
                    feed.book.on_disconnect(event.reason or str(kind))
                    if feed.depth.switch is not None:
                        feed.depth.switch.clear()  # the next held diffs may not continue them
                    feed.dirty = True
                    if self._taps:
                        self._tap_book(symbol, feed)
            if kind is LifecycleKind.DISCONNECTED:
                self._disconnected |= symbols
            else:  # frames were lost on a connection that stays up: nothing reconnects it
                self._spawn(self._confirm_quiet_books(symbols))
            return
        self.events.event(str(kind), **fields)
        self._disconnected -= symbols
        if kind is LifecycleKind.RECONNECTED:
            self._spawn(self._confirm_quiet_books(symbols))

    async def _confirm_quiet_books(self, symbols: set[str]) -> None:
        """After a reconnect or dropped frames, books still STALE once ``confirm_after_s``
        has passed got no diff (a quiet market): ask the snapshot desk to confirm or
        replace them."""
        await asyncio.sleep(self.config.confirm_after_s)
        for symbol in sorted(symbols):
            feed = self._symbols.get(symbol)
            if feed is not None and feed.book.awaits_confirmation:
                self._queue_snapshot(symbol)

    # -- REST work ------------------------------------------------------------------------

    def _queue_snapshot(self, symbol: str) -> None:
        if symbol not in self._queued and self._snapshot_queue is not None:
            self._queued.add(symbol)
            self._snapshot_queue.put_nowait(symbol)
            feed = self._symbols.get(symbol)
            if feed is not None and symbol not in self._in_flight:
                feed.book.limit_buffer(QUEUED_BUFFER)  # only the newest diffs while it waits

    async def _snapshot_desk(self) -> None:
        """Fetch queued snapshots under the REST weight budget (one desk of
        ``snapshot_concurrency``; a symbol is in one desk's hands at a time)."""
        assert self._snapshot_queue is not None
        while True:
            symbol = await self._snapshot_queue.get()
            self._queued.discard(symbol)
            feed = self._symbols.get(symbol)
            if feed is None:
                continue
            if symbol in self._in_flight:
                # Another desk holds the symbol: the request is served when it is done,
                # never dropped (the book asks only once until it gets an answer).
                self._asked_again.add(symbol)
                continue
            self._in_flight.add(symbol)
            feed.book.limit_buffer()  # asked for now: every diff from here may bridge it
            try:
                await self._serve_queued(symbol, feed)
            finally:
                self._in_flight.discard(symbol)
                self._requeue_if_asked(symbol, feed)

    def _requeue_if_asked(self, symbol: str, served: _SymbolFeed) -> None:
        """Queue ``symbol`` again when a request for it came while ``served`` was in a
        desk's hands, or when it was released and added again meanwhile (the new book's
        request was skipped) — if its book still wants a snapshot."""
        asked = symbol in self._asked_again
        self._asked_again.discard(symbol)
        current = self._symbols.get(symbol)
        if current is None or not (asked or current is not served):
            return
        if current.book.awaits_confirmation or current.book.snapshot_due():
            self._queue_snapshot(symbol)

    async def _serve_queued(self, symbol: str, feed: _SymbolFeed) -> None:
        """Confirm a quiet book, or sync one that waits for a snapshot."""
        confirming = feed.book.awaits_confirmation
        if not confirming and not feed.book.snapshot_due():
            return
        try:
            await self._serve_snapshot(symbol, feed, CONFIRM_LIMIT if confirming else None)
        except Exception as exc:
            self.counters.snapshots_failed += 1
            self.events.fault("snapshot_failed", symbol=symbol, error=str(exc) or repr(exc))
            feed.book.snapshot_failed()
            # Asked again once this desk lets go of the symbol, after the budget's pause
            # (a 429/418) or ``SNAPSHOT_RETRY_S``, whichever is longer.
            self._asked_again.add(symbol)
            assert self._rest is not None
            await asyncio.sleep(max(SNAPSHOT_RETRY_S, self._rest.budget.paused_for()))

    async def _serve_snapshot(
        self, symbol: str, feed: _SymbolFeed, limit: int | None = None
    ) -> None:
        """Fetch one snapshot and hand it to the book (raises when it cannot be had)."""
        assert self._rest is not None
        asked = time.monotonic()
        if limit is None:
            backlog = len(self._queued) + len(self._in_flight)
            limit = sync_limit(backlog, self.config.snapshot_limit)
        snapshot = await self._rest.depth_snapshot(symbol, limit=limit)
        took = time.monotonic() - asked
        self._snapshot_took.append(took)
        self.events.event(
            "snapshot",
            symbol=symbol,
            last_update_id=snapshot.lastUpdateId,
            took_s=took,
            queued=self._snapshot_queue.qsize() if self._snapshot_queue else 0,
        )
        self.counters.snapshots_fetched += 1
        had_book = not feed.book.needs_snapshot
        if feed.book.on_snapshot(snapshot, limit) is SyncAction.FETCH_SNAPSHOT:
            self._queue_snapshot(symbol)
        elif not had_book:
            feed.depth_limit = limit
        feed.dirty = True
        if self._taps:
            self._tap_book(symbol, feed)

    async def _sync_watchdog(self) -> None:
        """Once a second, ask again for the books away from LIVE too long (see
        ``services.market.sync_watchdog``); a failed round is logged."""
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.watch_books()
            except Exception as exc:
                self.events.fault("sync_watchdog_failed", logging.ERROR, error=repr(exc))

    def watchdog_bound_s(self) -> float:
        """How long a book may stay away from LIVE before the watchdog acts: twice the
        expected snapshot wait (budget pause and backlog included), at least
        ``sync_watchdog_s``."""
        paused = self._rest.budget.paused_for() if self._rest is not None else 0.0
        expected = expected_snapshot_wait(
            self._snapshot_took,
            len(self._queued) + len(self._in_flight),
            self.config.snapshot_concurrency,
            paused,
        )
        return max(self.config.sync_watchdog_s, 2.0 * expected)

    async def watch_books(self) -> None:
        """One watchdog round: re-ask the overdue books' snapshots, resubscribe the depth
        streams of those that got no diff. It never makes a book LIVE itself."""
        held_elsewhere = self._disconnected | self._queued | self._in_flight
        books = {
            symbol: BookWatch(
                live=feed.book.state is SyncState.LIVE,
                diffs=feed.diffs,
                busy=symbol in held_elsewhere,
                held=feed.book.awaits_confirmation,
            )
            for symbol, feed in self._symbols.items()
        }
        for symbol, action in self.watchdog.check(books, self.watchdog_bound_s()).items():
            feed = self._symbols.get(symbol)
            if feed is None:
                continue
            away = round(self.watchdog.away_s(symbol), 1)
            state = str(feed.book.state)
            self.events.fault(
                "sync_watchdog", symbol=symbol, action=action.value, state=state, away_s=away
            )
            if action is WatchAction.ASK_SNAPSHOT:
                self.counters.watchdog_snapshots += 1
                feed.book.snapshot_failed()  # the request is given up: ask it afresh
                self._queue_snapshot(symbol)
            else:
                self.counters.watchdog_resubscribes += 1
                await self._resubscribe_depth(symbol, feed, away)

    async def _resubscribe_depth(self, symbol: str, feed: _SymbolFeed, away_s: float) -> None:
        """Subscribe the symbol's depth stream again (no diff reached its book). What was
        buffered is dropped (diffs may be missing around the change); the next diff asks
        for a snapshot."""
        assert self._client is not None
        depth = feed.depth.subscribed
        feed.depth.settle()  # a change in progress: resubscribe the stream it was going to
        feed.book.on_disconnect(f"resubscribed: no diff for {away_s:.0f} s")
        feed.book.snapshot_failed()
        feed.dirty = True
        await self._client.unsubscribe(depth)
        if self._symbols.get(symbol) is feed:
            await self._client.subscribe([feed.depth.stream])

    async def _deepener(self) -> None:
        """Deepen light books one at a time while the snapshot desk is idle; a failed
        round is logged and the next one tried a second later."""
        while True:
            await asyncio.sleep(1.0)
            if self._queued or self._in_flight or self._rest is None:
                continue
            try:
                await self._deepen_next(self._rest.budget)
            except Exception as exc:
                self.events.fault("deepen_failed", logging.ERROR, error=repr(exc))

    async def _deepen_next(self, budget: WeightBudget) -> None:
        """Deepen the book ``next_deepening`` picks, if any."""
        stats = budget.stats()
        plan = next_deepening(
            {
                s: BookDepth(f.book.state is SyncState.LIVE, f.depth_limit, f.deepen_failed_at)
                for s, f in self._symbols.items()
            },
            self._watched(),
            self.config.endpoints.market,
            budget_share(stats.available, budget.burst, stats.used_weight, budget.limit),
            time.monotonic(),
        )
        if plan is not None:
            await self._deepen(*plan)

    def _watched(self) -> list[str]:
        """Symbols the UI asked for within ``on_demand_idle_s``, latest first."""
        now = time.time()
        requests = self.store.requested_symbols()
        fresh = [s for s, at in requests.items() if now - at <= self.config.on_demand_idle_s]
        return sorted(fresh, key=lambda s: -requests[s])

    async def _deepen(self, symbol: str, limit: int) -> None:
        """Build a deeper book of ``symbol`` beside the LIVE one and swap it in."""
        assert self._rest is not None
        feed = self._symbols.get(symbol)
        if feed is None:
            return
        shadow = feed.shadow = ShadowBook(symbol, self.config.endpoints.market, limit)
        deepened = False
        try:
            for _ in range(50):
                if shadow.ready:
                    break
                await asyncio.sleep(0.1)
            if shadow.ready:
                snapshot = await self._rest.depth_snapshot(symbol, limit, Priority.BACKGROUND)
                deepened = shadow.on_snapshot(snapshot) and shadow.swap_into(feed.book)
        except Exception as exc:
            self.events.fault("deepen_failed", symbol=symbol, error=str(exc) or repr(exc))
        finally:
            feed.shadow = None
        if deepened:
            feed.depth_limit = limit
            feed.deepen_failed_at = None
            feed.dirty = True
            self.counters.books_deepened += 1
            self.events.event("deepened", symbol=symbol, limit=limit)
        else:
            feed.deepen_failed_at = time.monotonic()

    async def _warm_up(self, symbol: str) -> None:
        """Seed the trade window from REST so the panels are never empty. A symbol taken
        over from another worker (``follow``) continues the window the store holds: the
        trades after its last stored id are fetched from REST (``fromId``), so none is lost
        or duplicated across the hand-over. Its requests are ``Priority.BACKGROUND``: they
        wait behind every book's snapshot (at a cold start of 1,500 symbols, 6,000 weight
        of warm-ups queued first held all but 8 books back for 80 s)."""
        assert self._rest is not None
        # Off the loop: a taken-over window is up to ``trade_window`` rows read from Redis
        # and converted, and a take-over warms up dozens of symbols at once (on the loop
        # that stopped the feed for seconds: no frame, publication or snapshot handled).
        try:
            stored = await asyncio.to_thread(self._stored_trades, symbol)
        finally:
            if (reading := self._symbols.get(symbol)) is not None:
                reading.store_read = True
        try:
            if stored:
                rows = stored + await self._trades_since(symbol, int(stored[-1][0]) + 1)
            else:
                page = await self._rest.agg_trades(
                    symbol, limit=BACKFILL_PAGE, priority=Priority.BACKGROUND
                )
                rows = _rows(page)
        except (BinanceHttpError, MalformedFrame) as exc:
            self.events.fault("warm_up_failed", symbol=symbol, error=str(exc))
            return
        feed = self._symbols.get(symbol)
        if feed is not None:
            feed.trades.warm_up(rows)
            feed.dirty = feed.trades_changed = True
            if self._taps:
                self._tap_trades(symbol, feed)

    def _stored_trades(self, symbol: str) -> list[TradeRow]:
        """The store's trade window of ``symbol`` when this feed follows shards and the
        store keeps one (``RedisStore.stored_trades``), else nothing."""
        read = getattr(self.store, "stored_trades", None)
        view = read(symbol) if self.config.follow and read is not None else None
        return [] if view is None else trade_rows(view)

    async def _trades_since(self, symbol: str, from_id: int) -> list[TradeRow]:
        """aggTrades from ``from_id`` on, page by page (at most ``MAX_BACKFILL_PAGES``)."""
        assert self._rest is not None
        rows: list[TradeRow] = []
        for _ in range(MAX_BACKFILL_PAGES):
            page = await self._rest.agg_trades(
                symbol, from_id=from_id, limit=BACKFILL_PAGE, priority=Priority.BACKGROUND
            )
            rows.extend(_rows(page))
            if len(page) < BACKFILL_PAGE:
                break
            from_id = page[-1].a + 1
        return rows

    async def _backfill(self, symbol: str, gap: TradeGap) -> None:
        """Fetch the missing trade ids of ``gap`` page by page, then release held trades."""
        assert self._rest is not None
        feed = self._symbols.get(symbol)
        if feed is None:
            return
        open_gap: TradeGap | None = gap
        self.counters.backfills += 1
        self.events.event("backfill", symbol=symbol, first_id=gap.first_id, last_id=gap.last_id)
        try:
            for _ in range(MAX_BACKFILL_PAGES):
                if open_gap is None:
                    break
                rows = await self._rest.agg_trades(
                    symbol, from_id=open_gap.first_id, limit=BACKFILL_PAGE
                )
                if not rows:
                    open_gap = feed.trades.abandon_backfill()
                    continue
                open_gap = feed.trades.backfill(_rows(rows))
            else:
                open_gap = feed.trades.abandon_backfill()
        except (BinanceHttpError, MalformedFrame) as exc:
            self.counters.backfill_failures += 1
            self.events.fault("backfill_failed", symbol=symbol, error=str(exc))
            open_gap = feed.trades.abandon_backfill()
        finally:
            feed.backfilling = False
            feed.dirty = feed.trades_changed = True
            if self._taps:
                self._tap_trades(symbol, feed)
        if open_gap is not None:
            # Released trades revealed a further gap: it holds new trades until filled.
            self._start_backfill(symbol, feed, open_gap)

    async def _seed_board(self) -> None:
        """Every symbol's 24 h figures from REST once (``!miniTicker@arr`` then carries only
        the symbols that trade)."""
        assert self._rest is not None
        weight = 80 if self.config.endpoints.market == "spot" else 40
        try:
            body = await self._rest.get("ticker/24hr", {}, weight, Priority.BACKGROUND)
            rows = msgspec.json.decode(body)
            self._take_tickers(
                [ticker_from_rest(row) for row in rows if row.get("symbol") in self._infos]
            )
        except (BinanceHttpError, msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            self.events.fault("board_seed_failed", error=str(exc) or repr(exc))

    def _take_tickers(self, tickers: list[MiniTicker]) -> None:
        """Mini tickers of many symbols (the ``!miniTicker@arr`` array, or the REST seed):
        the board's figures, and the ticker of each streamed symbol (kept for every
        TRADING symbol, so one streamed later starts with it); an older figure than the
        one held is not taken."""
        self._board.update_tickers(tickers, self._infos)
        held, symbols = self._tickers, self._symbols
        for t in tickers:
            last = held.get(t.s)
            if t.s not in self._infos or (last is not None and last.event_time_ms > t.E):
                continue
            ticker = held[t.s] = _ticker24h(t)
            feed = symbols.get(t.s)
            if feed is not None:
                feed.ticker = ticker
                feed.dirty = True

    def _publish_board(self, now: float) -> None:
        """Refresh the streamed books' figures (those republished since) and publish the
        board every ``watchlist_interval_s``: spread and sync state each time, the
        liquidity score when ``watchlist_score_s`` old (a watched symbol's each time)."""
        interval = self.config.watchlist_interval_s
        if not interval or now - self._board_published_at < interval:
            return
        self._board_published_at = now
        score_every = self.config.watchlist_score_s
        watched = self._watched_now(now)
        scored = self._board_scored_at
        for symbol, feed in self._symbols.items():
            if feed.snapshot is not None and self._board_seqs.get(symbol) != feed.snapshot.seq:
                self._board_seqs[symbol] = feed.snapshot.seq
                rescore = symbol in watched or now - scored.get(symbol, -math.inf) >= score_every
                if self._board.update_book(symbol, feed.snapshot.book, self._infos, rescore):
                    scored[symbol] = now
        for symbol in [s for s in self._board_seqs if s not in self._symbols]:
            del self._board_seqs[symbol]
            scored.pop(symbol, None)
            self._board.update_book(symbol, None, self._infos)
        self.store.publish_watchlist(self._board.rows(self._infos))

    # -- taps -----------------------------------------------------------------------------

    def _tap_trades(self, symbol: str, feed: _SymbolFeed, row: TradeRow | None = None) -> None:
        """Hand the trades released since the last call to every tap, in id order. When
        that is just ``row``, the trade being added, it goes as it is into the taps' lanes
        (``lane_for``) and to taps with ``on_trade_row``, and no view is built unless
        another tap takes views."""
        newest = feed.trades.newest_id
        if newest <= feed.tapped_id:
            return
        if (
            row is not None
            and newest == row[0] == feed.tapped_id + 1
            and (feed.lanes or self._row_taps)
        ):
            feed.tapped_id = newest
            try:
                for put in feed.lanes:
                    put(row)
            except Exception as exc:
                self._lane_failed(feed, exc)
            for tap in self._row_taps:
                try:
                    tap.on_trade_row(symbol, feed.trades.kind, row)  # type: ignore[attr-defined]
                except Exception as exc:
                    self._tap_failed(tap, symbol, exc)
            if not self._view_taps:
                return
            taps, trades = self._view_taps, feed.trades.view(last_n=1)
        else:
            taps, trades = self._taps, feed.trades.released_after(feed.tapped_id)
            feed.tapped_id = newest
        for tap in taps:
            try:
                tap.on_trades(symbol, trades)
            except Exception as exc:
                self._tap_failed(tap, symbol, exc)

    def _lane_failed(self, feed: _SymbolFeed, exc: Exception) -> None:
        """A lane's put raised (a ``deque.append`` never does): counted as a tap error (of
        the first laned tap); the lanes after it miss that one message."""
        self._tap_failed(self._lane_taps[0], feed.book.symbol, exc)

    def _tap_book(
        self, symbol: str, feed: _SymbolFeed, taps: tuple[FeedTap, ...] | None = None
    ) -> None:
        for tap in self._taps if taps is None else taps:
            try:
                tap.on_book(symbol, feed.book)
            except Exception as exc:
                self._tap_failed(tap, symbol, exc)

    def _tap_levels(self, diff: DepthUpdate, feed: _SymbolFeed, taps: tuple[FeedTap, ...]) -> None:
        """Hand the levels an applied diff set to the taps that follow levels."""
        for tap in taps:
            try:
                tap.on_levels(diff.s, feed.book, diff.b, diff.a)  # type: ignore[attr-defined]
            except Exception as exc:
                self._tap_failed(tap, diff.s, exc)

    def _tap_candle(self, symbol: str, candle: Candle) -> None:
        for tap in self._taps:
            try:
                tap.on_candle(symbol, candle)
            except Exception as exc:
                self._tap_failed(tap, symbol, exc)

    def _tap_failed(self, tap: FeedTap, symbol: str, exc: Exception) -> None:
        self.counters.tap_errors += 1
        self.events.fault(
            "tap_error", logging.ERROR, tap=type(tap).__name__, symbol=symbol, error=repr(exc)
        )

    # -- publication ----------------------------------------------------------------------

    async def _publisher(self) -> None:
        while True:
            await asyncio.sleep(self.config.publish_interval_s)
            try:
                status = self.publish()
            except Exception as exc:  # the one writer never stops publishing
                self.counters.publish_errors += 1
                self.events.fault("publish_error", logging.ERROR, error=repr(exc))
                continue
            self._log_malformed(status.malformed_frames)
            self.events.flush()
            with contextlib.suppress(Exception):
                await self._serve_requests()
            try:
                await self._steer_depths(time.time())
            except Exception as exc:
                self.events.fault("depth_steer_failed", logging.ERROR, error=repr(exc))

    def _log_malformed(self, malformed: int) -> None:
        """Malformed frames are counted by the client (``malformed`` so far); log the new
        ones as faults here."""
        new = malformed - self._malformed_seen
        if new > 0:
            self.events.fault("malformed_frame", times=new, total=malformed)
        self._malformed_seen = malformed

    @property
    def rest_budget(self) -> WeightBudget | None:
        """The REST weight budget every request of this feed waits in (None before run)."""
        return self._rest.budget if self._rest is not None else None

    def stats(self) -> FeedStats:
        """Counters of the feed, its books, trade logs, REST budget and connections."""
        books = [feed.book.counters for feed in self._symbols.values()]
        return FeedStats(
            counters=replace(self.counters),
            resyncs=sum(c.resyncs for c in books),
            gaps=sum(c.gaps for c in books),
            crossed=sum(c.crossed for c in books),
            trade_duplicates=sum(feed.trades.duplicates for feed in self._symbols.values()),
            budget=self._rest.budget.stats() if self._rest is not None else None,
            connections=tuple(self._client.get_stats()) if self._client is not None else (),
            faults_logged=dict(self.events.faults),
        )

    def publish(self) -> FeedStatus:
        """Publish a snapshot of every symbol that changed (same ``seq``, fresh
        ``published_at`` for one unchanged for ``heartbeat_s``) — at most the round's share
        of ``publish_budget_per_s``, watched and longest-unpublished first
        (``services.market.publication``) — and the feed status, which it returns."""
        now = time.time()
        heartbeat = self.config.heartbeat_s
        due = {
            symbol: feed.snapshot.published_at if feed.snapshot is not None else None
            for symbol, feed in self._symbols.items()
            if feed.store_read
            and (
                feed.dirty
                or (feed.snapshot is not None and now - feed.snapshot.published_at >= heartbeat)
            )
        }
        cap = round_cap(self.config.publish_budget_per_s, self.config.publish_interval_s)
        watched = self._watched_now(now) if cap and len(due) > cap else ()
        chosen = publication_order(due, watched, cap)
        self._store_snapshots([self._snapshot_of(s, self._symbols[s], now) for s in chosen])
        if self.book_samples is not None:
            clock = self.config.exchange_clock
            at_ms = clock(now) if clock is not None else int(now * 1000)
            self.book_samples.clock_offset_ms = at_ms - int(now * 1000)
            for symbol, feed in self._symbols.items():
                if feed.snapshot is not None:
                    self.book_samples.record(symbol, feed.snapshot.book, at_ms)
        self._publish_board(now)
        state = "CONNECTED" if self._connected and all(self._connected.values()) else "DOWN"
        if not self._connected:
            state = "CONNECTING"
        status = self._status(state)
        self.store.publish_status(status)
        return status

    def _snapshot_of(self, symbol: str, feed: _SymbolFeed, now: float) -> SymbolSnapshot:
        """The symbol's snapshot to publish now: a new one when anything changed (the
        trade view rebuilt only when trades did), else the last one with a fresh
        ``published_at``."""
        if feed.dirty or feed.snapshot is None:
            feed.dirty = False
            feed.seq += 1
            if feed.trades_changed or feed.snapshot is None:
                feed.trades_changed = False
                trades = feed.published.view(feed.trades)
            else:
                trades = feed.snapshot.trades
            feed.snapshot = SymbolSnapshot(
                symbol=symbol,
                seq=feed.seq,
                book=feed.book.view(self.config.book_levels),
                trades=trades,
                info=feed.info,
                candles=tuple(feed.candles),
                ticker=feed.ticker,
                published_at=now,
            )
        else:
            feed.snapshot = replace(feed.snapshot, published_at=now)
        return feed.snapshot

    def _watched_now(self, now: float) -> set[str]:
        """Symbols a user asked for within ``on_demand_idle_s`` (as last read by the
        publisher's request round)."""
        idle = self.config.on_demand_idle_s
        return {s for s, at in self._requests.items() if now - at <= idle}

    def _store_snapshots(self, snapshots: list[SymbolSnapshot]) -> None:
        """Hand a round's snapshots to the store: all at once when it can batch them
        (``RedisStore.publish_many``: one round trip, not one per symbol), else one by one."""
        publish_many = getattr(self.store, "publish_many", None)
        if publish_many is not None:
            publish_many(snapshots)
            return
        for snapshot in snapshots:
            self.store.publish(snapshot)

    def _status(self, connection_state: str) -> FeedStatus:
        stats = self._client.get_stats() if self._client is not None else []
        now = time.time()
        total = sum(s.messages for s in stats)
        self._message_marks.append((now, total))
        first_at, first_total = self._message_marks[0]
        rate = (total - first_total) / (now - first_at) if now > first_at else 0.0
        lags = [s.lag_ms_median for s in stats if s.lag_ms_median is not None]
        if self.config.exchange_clock is not None:
            lags = [statistics.median(self._clock_lags)] if self._clock_lags else []
        ages = [s.last_message_age_s for s in stats if s.last_message_age_s is not None]
        return FeedStatus(
            source=self.config.source,
            endpoint=self.config.endpoints.ws_base,
            recording=self.config.recording,
            recording_date=self.config.recording_date,
            connection_state=connection_state,
            reconnects=sum(s.reconnects for s in stats),
            messages_per_s=rate,
            event_lag_ms=max(lags) if lags else None,
            last_message_age_s=min(ages) if ages else None,
            malformed_frames=sum(s.malformed for s in stats),
            detail=self._detail,
            published_at=now,
        )

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """Forget a finished background task; one that raised is counted and logged (a
        desk, the publisher or a backfill must never stop unnoticed)."""
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        self.counters.task_errors += 1
        name = getattr(task.get_coro(), "__qualname__", repr(task))
        self.events.fault("task_failed", logging.ERROR, task=name, error=repr(task.exception()))


def _add_candle(candles: deque[Candle], event: Kline) -> None:
    """The kline's bar replaces the last candle when it has the same open time."""
    bar = event.k
    candle = Candle(bar.t, bar.i, bar.o, bar.h, bar.l, bar.c, bar.v, bar.V, bar.x)
    if candles and candles[-1].open_time_ms == bar.t:
        candles[-1] = candle
    else:
        candles.append(candle)


def _ticker24h(event: MiniTicker | Ticker) -> Ticker24h:
    """A symbol's 24 h ticker from its own stream's frame or an all-market array's entry."""
    return Ticker24h(event.c, event.o, event.h, event.l, event.v, event.q, event.E)


def _rows(rows: Iterable[AggTrade]) -> list[TradeRow]:
    """aggTrades from REST as trade-log rows."""
    return [(row.a, row.T, row.p, row.q, row.m) for row in rows]
