"""Keeping one symbol's local order book equal to the exchange's: snapshot + diff stream.

``BookSync`` is a state machine that does no I/O. The feed hands it every ``depthUpdate`` of
its symbol (``on_diff``) and, when asked, a REST depth snapshot (``on_snapshot``); the
methods return a ``SyncAction`` telling the feed whether to fetch a snapshot now. The feed
fetches it under its REST weight budget, in its own time, and hands it back.

Binance's current rules ("How to manage a local order book correctly"):

spot (``/api/v3/depth``; 2025-11 text)
    Buffer diffs from the moment the stream starts and note the first ``U``. Fetch a
    snapshot; if its ``lastUpdateId`` is below that first ``U`` fetch again. Drop buffered
    diffs with ``u <= lastUpdateId``; the first applied diff has ``U <= lastUpdateId+1 <= u``.
    From then on each diff has ``U == previous u + 1``: a diff with ``u`` at or below the
    book's update id is ignored, one with ``U > local id + 1`` means updates were lost.
USD-M (``/fapi/v1/depth``)
    Same buffering; drop diffs with ``u < lastUpdateId``; the first applied diff has
    ``U <= lastUpdateId <= u``; from then on each diff has ``pu == previous u``.

What this adds over peer libraries (python-binance, UBLDC, cryptofeed):

* diffs are buffered from the start, so a snapshot that lands after its bridging diff still
  syncs (it does in the bundled recordings); a snapshot that lands before the first diff (a
  recorder or a feed that asks right after subscribing) is kept, and the diffs that follow
  are dropped up to it and must bridge it exactly as buffered ones would;
* after a gap nothing more is applied to the old book: the symbol goes RESYNCING, buffers
  from the diff that revealed the gap, and asks for one snapshot — only for itself;
* a book that would be crossed after an update is never shown as LIVE;
* after a disconnect the book resumes without any snapshot if the first diff on the new
  connection continues the id chain, so a reconnect does not trigger a snapshot storm.

Cost per applied diff: the order-book updates (see ``order_book``) plus O(1) checks.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from services.binance.messages import DepthSnapshot, DepthUpdate
from services.market.order_book import OrderBook
from services.market.views import BookView, SyncState

DEFAULT_MAX_BUFFER = 1_000
"""Newest diffs a book waiting for a snapshot holds (100 s of a 100 ms stream): a snapshot
is bridged by a diff received about when it was taken, so older ones are never applied."""
QUEUED_BUFFER = 50
"""Newest diffs kept while the book's snapshot is only queued, not yet asked for
(``limit_buffer``): the snapshot, asked later, is newer than all of them unless the
server's REST state lags its stream by more than that (5 s of a 100 ms stream). At a cold
start of 1,500 symbols the books queued behind the REST budget held ≈ 300,000 diffs."""


class SyncAction(enum.Enum):
    """What the feed must do after handing a message to ``BookSync``."""

    NONE = "none"
    FETCH_SNAPSHOT = "fetch_snapshot"


@dataclass(slots=True)
class SyncCounters:
    """Running totals for one symbol's book synchronisation. ``buffer_overflows``: diffs
    dropped from the front of a full buffer while a snapshot was awaited (the book was not
    LIVE; a snapshot older than what is kept is fetched again)."""

    diffs_applied: int = 0
    diffs_dropped: int = 0
    diffs_buffered: int = 0
    gaps: int = 0
    crossed: int = 0
    resyncs: int = 0
    snapshots_requested: int = 0
    snapshots_applied: int = 0
    snapshots_too_old: int = 0
    snapshots_ignored: int = 0
    buffer_overflows: int = 0
    resumes: int = 0
    confirmations: int = 0


class BookSync:
    """The local order book of one symbol and its synchronisation state.

    ``market`` is ``"spot"`` or ``"usdm"``. ``max_buffer`` bounds the diffs held while a
    snapshot is awaited (``limit_buffer`` lowers it while the snapshot is only queued):
    beyond it the oldest is dropped (``buffer_overflows``), never the newest — a snapshot
    older than the oldest diff kept is fetched again (Binance's step 4), so a bounded
    buffer costs at most a request, never a wrong book.
    ``on_applied``, when given, is called with each diff right after it is applied (used by
    the replay check to compare the book with ``bookTicker`` after every diff).
    """

    def __init__(
        self,
        symbol: str,
        market: str = "spot",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        on_applied: Callable[[DepthUpdate], None] | None = None,
    ) -> None:
        if market not in ("spot", "usdm"):
            raise ValueError(f"market must be 'spot' or 'usdm', not {market!r}")
        self.symbol = symbol
        self.market = market
        self.book = OrderBook()
        self.state = SyncState.CONNECTING
        self.last_update_id = 0
        self.event_time_ms = 0
        self.resync_reason = ""
        self.counters = SyncCounters()
        self._spot = market == "spot"
        self._max_buffer = max_buffer
        self._on_applied = on_applied
        self._buffer: deque[DepthUpdate] = deque(maxlen=max_buffer)
        self._has_book = False
        self._bridged = False
        self._snapshot_requested = False
        self._ever_live = False

    @property
    def needs_snapshot(self) -> bool:
        """True while the book waits for a snapshot (requested or due)."""
        return not self._has_book and self.state is not SyncState.CONNECTING

    @property
    def buffered(self) -> int:
        """Diffs currently held while waiting for a snapshot."""
        return len(self._buffer)

    def on_diff(self, diff: DepthUpdate) -> SyncAction:
        """Take one diff of this symbol; returns FETCH_SNAPSHOT when a snapshot is needed now."""
        if self._has_book:
            lid = self.last_update_id
            u = diff.u
            if u < lid or (u == lid and (self._spot or self._bridged)):
                self.counters.diffs_dropped += 1
                return SyncAction.NONE
            if not self._continues(diff, lid):
                return self._lose_sync(diff, self._gap_reason(diff, lid), gap=True)
            self._apply(diff)
            if self.book.is_crossed():
                self.counters.crossed += 1
                return self._lose_sync(None, f"crossed book after u={u}", gap=False)
            if self.state is not SyncState.LIVE:
                self.state = SyncState.LIVE
                self.counters.resumes += 1
            return SyncAction.NONE
        return self._hold(diff)

    def on_snapshot(self, snapshot: DepthSnapshot, limit: int | None = None) -> SyncAction:
        """Take a REST depth snapshot (asked with ``limit`` levels per side, when known: it
        bounds the book's known range, see ``OrderBook``); returns FETCH_SNAPSHOT when it
        cannot be used (older than the first buffered diff, or followed by a gap in the
        buffered diffs)."""
        if self._has_book:
            if self.awaits_confirmation and snapshot.lastUpdateId >= self.last_update_id:
                return self._confirm(snapshot)
            self.counters.snapshots_ignored += 1
            return SyncAction.NONE
        self._snapshot_requested = False
        lid = snapshot.lastUpdateId
        if self._buffer and self._too_old(lid, self._buffer[0]):
            self.counters.snapshots_too_old += 1
            return self._request_snapshot()
        self.book.load_snapshot(snapshot.bids, snapshot.asks, limit)
        self.counters.snapshots_applied += 1
        self.last_update_id = lid
        self._has_book = True
        self._bridged = False
        stale = self.state is SyncState.STALE
        self.state = SyncState.LIVE
        self._ever_live = True
        buffer = list(self._buffer)
        self._buffer.clear()
        for index, diff in enumerate(buffer):
            action = self.on_diff(diff)
            if not self._has_book:
                self._buffer.extend(buffer[index + 1 :])
                return action
        if self.book.is_crossed():
            self.counters.crossed += 1
            return self._lose_sync(None, "crossed snapshot", gap=False)
        if stale:
            self.state = SyncState.STALE
        return SyncAction.NONE

    @property
    def awaits_confirmation(self) -> bool:
        """True for a STALE book that no diff has confirmed since the connection came back
        (a quiet market): a fresh snapshot can tell whether it is still exact."""
        return self.state is SyncState.STALE and self._has_book

    def _confirm(self, snapshot: DepthSnapshot) -> SyncAction:
        """Check a STALE book against a snapshot taken after a reconnect. The same
        ``lastUpdateId`` proves nothing changed while the stream was away, so the book is
        LIVE again as it is (the snapshot's levels are not needed: a 5-level one does); a
        newer one means updates were missed, so the symbol resyncs from a full snapshot."""
        self.counters.confirmations += 1
        lid = snapshot.lastUpdateId
        if lid == self.last_update_id:
            self.state = SyncState.LIVE
            return SyncAction.NONE
        return self._lose_sync(
            None, f"updates {self.last_update_id + 1}..{lid} missed while away", gap=True
        )

    def limit_buffer(self, max_diffs: int | None = None) -> None:
        """Hold at most ``max_diffs`` newest diffs from now on (``max_buffer`` when None),
        dropping the oldest beyond it (counted in ``buffer_overflows``). The feed lowers it
        to ``QUEUED_BUFFER`` while the snapshot waits in its queue and restores it when the
        request is made."""
        keep = self._max_buffer if max_diffs is None else min(max_diffs, self._max_buffer)
        if self._buffer.maxlen == keep:
            return
        self.counters.buffer_overflows += max(0, len(self._buffer) - keep)
        self._buffer = deque(self._buffer, maxlen=keep)

    def snapshot_failed(self) -> None:
        """The requested snapshot could not be fetched: the next diff asks for one again."""
        self._snapshot_requested = False

    def snapshot_due(self) -> bool:
        """Whether a snapshot fetched now could be used: the book waits for one and holds
        diffs to bridge it to. With none held (the stream is down, or has not delivered
        since the book was dropped) the request lapses and the next diff asks again."""
        if not self.needs_snapshot:
            return False
        if not self._buffer:
            self._snapshot_requested = False
            return False
        return True

    def on_disconnect(self, reason: str = "disconnected") -> None:
        """The connection went down or the stream went quiet: keep the book but not as LIVE.

        Diffs buffered for a snapshot are dropped (the stream they came from is gone). When
        diffs resume, a book that continues the id chain goes LIVE again without a snapshot;
        otherwise the symbol resyncs.
        """
        self.state = SyncState.STALE
        self.resync_reason = reason
        self._buffer.clear()

    def restart(self, reason: str) -> None:
        """Start over from a snapshot bridged by the diffs handed from now on (the feed
        moved the book to another diff stream without a bridge): the book and what is
        buffered are dropped (a resync when there was a book); the next diff asks for a
        snapshot unless one is already asked for."""
        if self._has_book:
            self.counters.resyncs += 1
            self.state = SyncState.RESYNCING
        self.resync_reason = reason
        self._has_book = False
        self._bridged = False
        self._buffer.clear()

    def view(self, depth: int | None = None) -> BookView:
        """An immutable numpy view of the best ``depth`` levels per side (all when None)."""
        bid_prices, bid_qtys = self.book.bid_arrays(depth)
        ask_prices, ask_qtys = self.book.ask_arrays(depth)
        return BookView(
            symbol=self.symbol,
            bid_prices=bid_prices,
            bid_qtys=bid_qtys,
            ask_prices=ask_prices,
            ask_qtys=ask_qtys,
            last_update_id=self.last_update_id,
            sync_state=self.state,
            event_time_ms=self.event_time_ms,
            resync_reason=self.resync_reason,
        )

    def _too_old(self, lid: int, first: DepthUpdate) -> bool:
        """Whether a snapshot taken at ``lid`` predates the first buffered diff so that no
        diff held can bridge it: spot needs ``U <= lid + 1``, USD-M ``U <= lid``. (Binance's
        text says "fetch again if lastUpdateId < U"; on spot a snapshot at exactly ``U - 1``
        is bridged by that very diff, which is common when the request races the first
        frame, so it is used.)"""
        return lid + 1 < first.U if self._spot else lid < first.U

    def _continues(self, diff: DepthUpdate, lid: int) -> bool:
        if self._spot:
            return lid + 1 >= diff.U
        if self._bridged:
            return diff.pu == lid
        return lid >= diff.U

    def _gap_reason(self, diff: DepthUpdate, lid: int) -> str:
        if not self._bridged:
            return f"snapshot does not bridge: lastUpdateId={lid}, next diff U={diff.U}"
        if self._spot:
            return f"gap: U={diff.U} after u={lid}"
        return f"gap: pu={diff.pu} after u={lid}"

    def _apply(self, diff: DepthUpdate) -> None:
        book = self.book
        if diff.b:
            book.apply_bids(diff.b)
        if diff.a:
            book.apply_asks(diff.a)
        self.last_update_id = diff.u
        self.event_time_ms = diff.E
        self._bridged = True
        self.counters.diffs_applied += 1
        if self._on_applied is not None:
            self._on_applied(diff)

    def _hold(self, diff: DepthUpdate) -> SyncAction:
        if self.state is SyncState.CONNECTING or (
            self.state is SyncState.STALE and not self._ever_live
        ):
            self.state = SyncState.SYNCING
        elif self.state is SyncState.STALE:
            self.state = SyncState.RESYNCING
        if len(self._buffer) == self._buffer.maxlen:
            self.counters.buffer_overflows += 1  # the oldest diff held is dropped
        self._buffer.append(diff)
        self.counters.diffs_buffered += 1
        if self._snapshot_requested:
            return SyncAction.NONE
        return self._request_snapshot()

    def _request_snapshot(self) -> SyncAction:
        self._snapshot_requested = True
        self.counters.snapshots_requested += 1
        return SyncAction.FETCH_SNAPSHOT

    def _lose_sync(self, diff: DepthUpdate | None, reason: str, gap: bool) -> SyncAction:
        if gap:
            self.counters.gaps += 1
        self.counters.resyncs += 1
        self.resync_reason = reason
        self.state = SyncState.RESYNCING
        self._has_book = False
        self._bridged = False
        self._buffer.clear()
        if diff is None:
            if self._snapshot_requested:
                return SyncAction.NONE
            return self._request_snapshot()
        return self._hold(diff)
