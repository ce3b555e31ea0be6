"""How deep a REST depth snapshot should be, and how a LIVE book is deepened without ever
leaving LIVE.

A cold start of many symbols is bounded by Binance's REST weight, not by the streams: a
1000-level spot snapshot costs 50 of the 6000 weight a minute, a 100-level one 5 and a
5000-level one 250. So the first sync of a symbol is *light* while many symbols wait for
one (``sync_limit``), and books are *deepened* later, when the budget has room:

1. symbols someone watches (the UI asked for them recently) to ``deep_limit`` (5000 spot,
   1000 USD-M, which allows no more);
2. then any other LIVE book still on a light snapshot to ``FULL_LIMIT`` (1000), only while
   the budget holds at least ``BACKGROUND_RESERVE`` of its burst, so background deepening
   never delays a sync.

Deepening never touches the LIVE book until a replacement is exact: a ``ShadowBook`` (a
second ``BookSync`` of the same symbol) receives the same diffs from the moment deepening
starts, syncs with the deep snapshot by Binance's procedure, and its order book is swapped
in only when both are LIVE at the same update id (``ShadowBook.swap_into``). A shadow that
cannot bridge (a gap, an old snapshot) is dropped and retried after ``RETRY_S``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.binance.messages import DepthSnapshot, DepthUpdate
from services.market.book_sync import BookSync
from services.market.views import SyncState

LIGHT_LIMIT = 100
FULL_LIMIT = 1000
DEEP_LIMIT = {"spot": 5000, "usdm": 1000}
LIGHT_BACKLOG = 4
"""More symbols than this waiting for a snapshot (queued or in flight): first syncs are
light."""
BACKGROUND_RESERVE = 0.5
"""Background deepening (unwatched symbols) only while the budget's available weight is at
least this share of its burst."""
RETRY_S = 30.0


def sync_limit(backlog: int, fixed: int = 0) -> int:
    """Levels of a sync snapshot: ``fixed`` when configured (non-zero), else light
    (``LIGHT_LIMIT``) when more than ``LIGHT_BACKLOG`` symbols wait, else ``FULL_LIMIT``."""
    if fixed:
        return fixed
    return LIGHT_LIMIT if backlog > LIGHT_BACKLOG else FULL_LIMIT


def deep_limit(market: str) -> int:
    """The deepest snapshot the market serves (5000 spot, 1000 USD-M)."""
    return DEEP_LIMIT.get(market, FULL_LIMIT)


@dataclass(frozen=True, slots=True)
class BookDepth:
    """What the deepening plan needs to know of one streamed book: LIVE or not, the limit
    of the snapshot it was built from, and when deepening last failed (monotonic s, or
    None)."""

    live: bool
    limit: int
    failed_at: float | None = None


def budget_share(available: float, burst: int, used_weight: int | None, limit: int) -> float:
    """The share of the REST budget free for background work: the local bucket's
    (``available / burst``) or, when the server reported the weight used in its current
    window (the whole IP's, other workers included), the window's remaining share —
    whichever is smaller. Deepening measured only by the local bucket ate the IP's window
    and made the syncs of books taken over from another worker wait for the next one."""
    local = available / burst if burst else 0.0
    if used_weight is None or limit <= 0:
        return local
    return min(local, max(0.0, (limit - used_weight) / limit))


def next_deepening(
    books: Mapping[str, BookDepth],
    watched: Iterable[str],
    market: str,
    budget_share: float,
    now: float,
) -> tuple[str, int] | None:
    """The next (symbol, limit) to deepen, or None.

    Watched symbols (in the order given) come first, to ``deep_limit``; then, only while
    ``budget_share`` (available weight / burst) ≥ ``BACKGROUND_RESERVE``, any LIVE book
    below ``FULL_LIMIT`` (alphabetically). A book is skipped while it is not LIVE, already
    that deep, or deepening it failed less than ``RETRY_S`` ago.
    """

    def due(symbol: str, limit: int) -> bool:
        book = books.get(symbol)
        if book is None or not book.live or book.limit >= limit:
            return False
        return book.failed_at is None or now - book.failed_at >= RETRY_S

    deepest = deep_limit(market)
    for symbol in watched:
        if due(symbol, deepest):
            return symbol, deepest
    if budget_share < BACKGROUND_RESERVE:
        return None
    for symbol in sorted(books):
        if due(symbol, FULL_LIMIT):
            return symbol, FULL_LIMIT
    return None


class ShadowBook:
    """A second book of one symbol built from a deeper snapshot while the first stays LIVE.

    Feed it every diff the LIVE book gets (``on_diff``) from the moment it exists; once it
    holds a diff (``ready``), fetch the snapshot and hand it over (``on_snapshot``); then
    ``swap_into`` the LIVE book.
    """

    def __init__(self, symbol: str, market: str, limit: int) -> None:
        self.limit = limit
        self.sync = BookSync(symbol, market)

    def on_diff(self, diff: DepthUpdate) -> None:
        """Take one diff (the shadow's own snapshot requests are the deepener's business)."""
        self.sync.on_diff(diff)

    @property
    def ready(self) -> bool:
        """True once a diff is buffered, so a snapshot fetched now can be bridged."""
        return self.sync.buffered > 0

    def on_snapshot(self, snapshot: DepthSnapshot) -> bool:
        """Sync the shadow with the deep snapshot; True when it is LIVE."""
        self.sync.on_snapshot(snapshot, self.limit)
        return self.sync.state is SyncState.LIVE

    def swap_into(self, live: BookSync) -> bool:
        """Give ``live`` the shadow's deeper order book when both are LIVE at the same
        update id (then they describe the same book, the shadow's with more levels);
        False, and ``live`` untouched, otherwise."""
        shadow = self.sync
        if (
            live.state is not SyncState.LIVE
            or shadow.state is not SyncState.LIVE
            or shadow.last_update_id != live.last_update_id
        ):
            return False
        live.book = shadow.book
        return True
