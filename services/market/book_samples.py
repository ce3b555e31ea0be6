"""Book samples for the liquidity heatmap: per symbol, one ``BookSample`` per second of the
book's levels within ±``band_pct`` % of the mid, each level at the largest quantity it
showed during that second; kept in a bounded in-memory ring.

The feed hands every published ``BookView`` to ``BookSamples.record`` (several per second at
the 250 ms publication period). A second whose views were all LIVE becomes a live sample;
a second with any view that was not LIVE becomes a sample without levels and
``is_live=False``; a second without any view (the feed was down) has no sample at all.
Either way the heatmap draws it empty.

Memory: a sample holds 12 bytes per level (price float64, qty float32: seven significant
digits, plenty for drawing); the ring of a symbol keeps at most ``max_samples`` samples and
``max_bytes`` of levels, dropping the oldest first. The 2024 BTCUSDT book has a median of
2869 levels within ±2 %: 34 KB per sample, so the 48 MB default holds ≈ 23 minutes of such a
symbol (thinner books reach the one-hour count bound). All rings together hold at most
``max_total_bytes`` (1 GiB by default): each ring's byte bound is its share of the total
when that is smaller, so a process streaming the whole market (``--symbols all``, 1,500
rings: ≈ 700 KB each) keeps a shorter past per symbol instead of growing without bound.

Persisting: samples are plain columns (``BookSample``); a history writer can read each
symbol's closed samples (``BookSamples.samples``) and store them as two tables (one row per
sample, one per level).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left

import numpy as np

from services.market.views import BookSample, BookView

DEFAULT_BAND_PCT = 2.0
DEFAULT_PERIOD_MS = 1000
DEFAULT_MAX_SAMPLES = 3600
DEFAULT_MAX_BYTES = 48 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 1024 * 1024 * 1024
_DROPPED = BookSample(0, False)


def band_levels(view: BookView, band_pct: float) -> tuple[np.ndarray, ...]:
    """(bid prices, bid qtys, ask prices, ask qtys) of the levels within ±``band_pct`` % of
    the view's mid (empty arrays without a two-sided book)."""
    if not (view.bid_prices.shape[0] and view.ask_prices.shape[0]):
        e = np.empty(0)
        return e, e, e, e
    mid = (float(view.bid_prices[0]) + float(view.ask_prices[0])) / 2.0
    low, high = mid * (1.0 - band_pct / 100.0), mid * (1.0 + band_pct / 100.0)
    nb = int(np.searchsorted(-view.bid_prices, -low, "right"))
    na = int(np.searchsorted(view.ask_prices, high, "right"))
    return view.bid_prices[:nb], view.bid_qtys[:nb], view.ask_prices[:na], view.ask_qtys[:na]


def merge_max(
    prices_a: np.ndarray,
    qtys_a: np.ndarray,
    prices_b: np.ndarray,
    qtys_b: np.ndarray,
    descending: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The union of two level lists, each price at the larger of its two quantities (a
    price missing from one list counts 0 there), sorted by price."""
    p = np.concatenate((prices_a, prices_b))
    q = np.concatenate((qtys_a, qtys_b))
    if not p.shape[0]:  # both empty (a LIVE book with no level of a side in the band)
        return p, q
    order = np.argsort(p, kind="stable")
    p, q = p[order], q[order]
    starts = np.flatnonzero(np.concatenate(([True], p[1:] != p[:-1])))
    prices, qtys = p[starts], np.maximum.reduceat(q, starts)
    if descending:
        return prices[::-1].copy(), qtys[::-1].copy()
    return prices, qtys


class BookSampleRing:
    """The samples of one symbol, oldest first (see the module docstring). Kept in a list
    with a moving head (dropping the oldest is O(1), compacted once half is dropped), so a
    range is two binary searches and one slice."""

    def __init__(
        self,
        *,
        band_pct: float = DEFAULT_BAND_PCT,
        period_ms: int = DEFAULT_PERIOD_MS,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.band_pct = band_pct
        self.period_ms = period_ms
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._samples: list[BookSample] = []
        self._times: list[int] = []
        self._head = 0
        self._bytes = 0
        self._open_ms: int | None = None
        self._open_live = True
        self._open_levels: tuple[np.ndarray, ...] | None = None
        self._last_view: BookView | None = None
        self.dropped = 0

    def record(self, view: BookView, now_ms: int) -> None:
        """Take ``view`` (the book at wall time ``now_ms``) into the current second; a view
        in a later second first closes the open one into a sample."""
        period = now_ms - now_ms % self.period_ms
        if self._open_ms is not None and period != self._open_ms:
            self._close()
        if self._open_ms is None:
            self._open_ms, self._open_live, self._open_levels = period, True, None
            self._last_view = None
        if not view.is_live:
            self._open_live, self._open_levels = False, None
            return
        if not self._open_live or view is self._last_view:
            return
        self._last_view = view
        levels = band_levels(view, self.band_pct)
        if self._open_levels is None:
            self._open_levels = tuple(a.copy() for a in levels)
            return
        bp, bq, ap, aq = self._open_levels
        self._open_levels = (
            *merge_max(bp, bq, levels[0], levels[1], descending=True),
            *merge_max(ap, aq, levels[2], levels[3], descending=False),
        )

    def _close(self) -> None:
        assert self._open_ms is not None
        if self._open_live and self._open_levels is not None:
            bp, bq, ap, aq = self._open_levels
            f4 = np.float32
            sample = BookSample(self._open_ms, True, bp, bq.astype(f4), ap, aq.astype(f4))
        else:
            sample = BookSample(self._open_ms, False)
        self._open_ms, self._open_levels = None, None
        self.add(sample)

    def add(self, sample: BookSample) -> None:
        """Append a closed sample (later than the last one), dropping the oldest beyond the
        bounds; the sampler's own path, and how stored samples are loaded back."""
        with self._lock:
            if len(self) and sample.time_ms <= self._times[-1]:
                raise ValueError("samples must be added in time order")
            self._samples.append(sample)
            self._times.append(sample.time_ms)
            self._bytes += sample.nbytes
            while len(self) and (len(self) > self.max_samples or self._bytes > self.max_bytes):
                self._bytes -= self._samples[self._head].nbytes
                self._samples[self._head] = _DROPPED
                self._head += 1
                self.dropped += 1
            if self._head > len(self._samples) // 2:
                del self._samples[: self._head], self._times[: self._head]
                self._head = 0

    def samples(self, start_ms: int | None = None, end_ms: int | None = None) -> list[BookSample]:
        """Closed samples with ``start_ms ≤ time_ms < end_ms`` (open bounds when None)."""
        with self._lock:
            times, head = self._times, self._head
            lo = head if start_ms is None else bisect_left(times, start_ms, lo=head)
            hi = len(times) if end_ms is None else bisect_left(times, end_ms, lo=head)
            return self._samples[lo : max(lo, hi)]

    @property
    def nbytes(self) -> int:
        """Bytes held by the ring's level columns."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._samples) - self._head


class BookSamples:
    """Book-sample rings by symbol: the feed records into them, the web side reads. The
    rings share ``max_total_bytes`` (see the module docstring)."""

    def __init__(
        self, *, max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES, **ring_options: int | float
    ) -> None:
        self._options = ring_options
        self.max_total_bytes = max_total_bytes
        self._ring_max_bytes = int(ring_options.get("max_bytes", DEFAULT_MAX_BYTES))
        self._rings: dict[str, BookSampleRing] = {}
        self._lock = threading.Lock()
        self.clock_offset_ms = 0
        """The market's clock minus the wall clock (ms), set by the feed: samples are taken
        at the market's time (a replay's is the recording's), as trades and the recorded
        book are, so a heatmap's columns, dots and stored past line up."""

    def market_now_ms(self) -> int:
        """The market's clock now (ms since the epoch)."""
        return int(time.time() * 1000) + self.clock_offset_ms

    def ring(self, symbol: str) -> BookSampleRing:
        """The ring of ``symbol`` (created empty on first use)."""
        with self._lock:
            ring = self._rings.get(symbol)
            if ring is None:
                ring = self._rings[symbol] = BookSampleRing(**self._options)  # type: ignore[arg-type]
                share = min(self._ring_max_bytes, self.max_total_bytes // len(self._rings))
                for each in self._rings.values():  # each trims to it on its next sample
                    each.max_bytes = share
            return ring

    def record(self, symbol: str, view: BookView, now_ms: int) -> None:
        """Take a published view of ``symbol`` at market time ``now_ms``."""
        self.ring(symbol).record(view, now_ms)

    def samples(
        self, symbol: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> list[BookSample]:
        """Closed samples of ``symbol`` in ``[start_ms, end_ms)``."""
        with self._lock:
            ring = self._rings.get(symbol)
        return ring.samples(start_ms, end_ms) if ring is not None else []


def book_samples_of(store: object) -> BookSamples | None:
    """The book samples a store keeps (the in-process store does), else None."""
    samples = getattr(store, "book_samples", None)
    return samples if isinstance(samples, BookSamples) else None
