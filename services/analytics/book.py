"""Order-book metrics over a ``BookView`` snapshot: top of book, imbalance, depth bands,
depth by distance from mid and the cumulative depth curve.

Notation: best bid/ask prices ``Pb, Pa`` and quantities ``Qb, Qa``; mid ``M = (Pb+Pa)/2``.
Quantities are base units; ``quote`` figures are Σ price·qty. A figure that needs both
sides of the book (mid, spread, bands around mid) is NaN when a side is empty; nothing here
raises on an empty or one-sided book.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.market.views import BookView

_NAN = float("nan")


@dataclass(frozen=True, slots=True)
class BookSummary:
    """Top of book and whole-book totals.

    best_bid / best_ask (NaN when that side is empty) and best_bid_qty / best_ask_qty
    (0.0 when empty): the best levels.
    mid: (Pb + Pa)/2. spread: Pa − Pb. spread_bps: spread / mid · 10⁴.
    weighted_mid: (Pb·Qa + Pa·Qb)/(Qa + Qb), the size-weighted mid that leans toward the
    thinner side (not Stoikov's microprice).
    imbalance_top: (Qb − Qa)/(Qb + Qa) at the best levels, in [−1, 1]; +1 bids only.
    total_bid_qty / total_ask_qty: Σ qty over every known level of each side (base).
    total_bid_quote / total_ask_quote: Σ price·qty over every known level (quote).
    bid_ask_volume_ratio: total_bid_qty / total_ask_qty (NaN without asks).
    bid_levels / ask_levels: number of known levels per side.
    """

    best_bid: float
    best_bid_qty: float
    best_ask: float
    best_ask_qty: float
    mid: float
    spread: float
    spread_bps: float
    weighted_mid: float
    imbalance_top: float
    total_bid_qty: float
    total_ask_qty: float
    total_bid_quote: float
    total_ask_quote: float
    bid_ask_volume_ratio: float
    bid_levels: int
    ask_levels: int


def mid_price(view: BookView) -> float:
    """(best bid + best ask)/2; NaN when either side is empty."""
    if view.bid_prices.shape[0] == 0 or view.ask_prices.shape[0] == 0:
        return _NAN
    return (float(view.bid_prices[0]) + float(view.ask_prices[0])) / 2.0


def spread_bps(view: BookView) -> float:
    """(Pa − Pb)/M · 10⁴, as ``BookSummary.spread_bps``; NaN when a side is empty."""
    nb, na = int(view.bid_prices.shape[0]), int(view.ask_prices.shape[0])
    pb = float(view.bid_prices[0]) if nb else _NAN
    pa = float(view.ask_prices[0]) if na else _NAN
    mid = (pb + pa) / 2.0
    return (pa - pb) / mid * 1e4 if mid > 0 else _NAN


def book_summary(view: BookView) -> BookSummary:
    """Best levels, mid, spread, weighted mid, top-of-book imbalance and side totals."""
    nb, na = int(view.bid_prices.shape[0]), int(view.ask_prices.shape[0])
    pb = float(view.bid_prices[0]) if nb else _NAN
    pa = float(view.ask_prices[0]) if na else _NAN
    qb = float(view.bid_qtys[0]) if nb else 0.0
    qa = float(view.ask_qtys[0]) if na else 0.0
    mid = (pb + pa) / 2.0
    spread = pa - pb
    top = qb + qa
    imbalance_top = (qb - qa) / top if top > 0 else _NAN
    weighted_mid = (pb * qa + pa * qb) / top if nb and na and top > 0 else _NAN
    total_bid = float(view.bid_qtys.sum())
    total_ask = float(view.ask_qtys.sum())
    return BookSummary(
        best_bid=pb,
        best_bid_qty=qb,
        best_ask=pa,
        best_ask_qty=qa,
        mid=mid,
        spread=spread,
        spread_bps=spread / mid * 1e4 if mid > 0 else _NAN,
        weighted_mid=weighted_mid,
        imbalance_top=imbalance_top,
        total_bid_qty=total_bid,
        total_ask_qty=total_ask,
        total_bid_quote=float(np.einsum("i,i->", view.bid_prices, view.bid_qtys)),
        total_ask_quote=float(np.einsum("i,i->", view.ask_prices, view.ask_qtys)),
        bid_ask_volume_ratio=total_bid / total_ask if total_ask > 0 else _NAN,
        bid_levels=nb,
        ask_levels=na,
    )


def _bids_at_or_above(bid_prices: np.ndarray, limit: float) -> int:
    """How many bid levels (descending prices) are ≥ ``limit``."""
    n = int(bid_prices.shape[0])
    return n - int(np.searchsorted(bid_prices[::-1], limit, side="left"))


def _asks_at_or_below(ask_prices: np.ndarray, limit: float) -> int:
    """How many ask levels (ascending prices) are ≤ ``limit``."""
    return int(np.searchsorted(ask_prices, limit, side="right"))


def imbalance(view: BookView, band_bps: float) -> float:
    """Signed depth imbalance (B − A)/(B + A) in [−1, 1], where B and A are the base
    quantities resting within ±``band_bps`` of mid (bids ≥ M·(1 − b), asks ≤ M·(1 + b)),
    unweighted (Bookmap/Glassnode convention).

    NaN when a side is empty (no mid); 0.0 when no quantity lies in the band.
    """
    mid = mid_price(view)
    if math.isnan(mid):
        return _NAN
    frac = band_bps / 1e4
    kb = _bids_at_or_above(view.bid_prices, mid * (1.0 - frac))
    ka = _asks_at_or_below(view.ask_prices, mid * (1.0 + frac))
    b = float(view.bid_qtys[:kb].sum())
    a = float(view.ask_qtys[:ka].sum())
    total = b + a
    return (b - a) / total if total > 0 else 0.0


@dataclass(frozen=True, slots=True)
class DepthBand:
    """Resting liquidity within ±band_bps of mid: bids with price ≥ M·(1 − band_bps/10⁴) and
    asks with price ≤ M·(1 + band_bps/10⁴), in base (Σ qty) and quote (Σ price·qty) units.
    NaN when the book has no mid."""

    band_bps: float
    bid_base: float
    ask_base: float
    bid_quote: float
    ask_quote: float


def depth_within(
    view: BookView, bands_bps: Sequence[float] = (10, 25, 50, 100)
) -> tuple[DepthBand, ...]:
    """Bid and ask depth (base and quote) within each ±band around mid."""
    mid = mid_price(view)
    if math.isnan(mid):
        return tuple(DepthBand(float(b), _NAN, _NAN, _NAN, _NAN) for b in bands_bps)
    bands = np.asarray(bands_bps, dtype=np.float64)
    frac = bands / 1e4
    kb = view.bid_prices.shape[0] - np.searchsorted(
        view.bid_prices[::-1], mid * (1.0 - frac), side="left"
    )
    ka = np.searchsorted(view.ask_prices, mid * (1.0 + frac), side="right")
    kb, ka = kb.tolist(), ka.tolist()
    nb, na = max(kb), max(ka)
    bid_base = _prefix_sums(view.bid_qtys, kb)
    ask_base = _prefix_sums(view.ask_qtys, ka)
    bid_quote = _prefix_sums(view.bid_prices[:nb] * view.bid_qtys[:nb], kb)
    ask_quote = _prefix_sums(view.ask_prices[:na] * view.ask_qtys[:na], ka)
    return tuple(
        DepthBand(b, x, y, u, v)
        for b, x, y, u, v in zip(
            bands.tolist(), bid_base, ask_base, bid_quote, ask_quote, strict=True
        )
    )


def _prefix_sums(values: np.ndarray, counts: list[int]) -> list[float]:
    """Σ values[:k] for each k in ``counts``: one ``np.add.reduceat`` sums the runs between
    consecutive distinct counts (pairwise, vectorised) and the few run sums are
    accumulated in ascending order, so no running sum over every level is built."""
    edges = sorted({k for k in counts if k > 0})
    if not edges:
        return [0.0] * len(counts)
    runs = np.add.reduceat(values[: edges[-1]], [0, *edges[:-1]]).tolist()
    sums = dict(zip(edges, itertools.accumulate(runs), strict=True))
    return [sums.get(k, 0.0) for k in counts]


def cumulative_depth(prices: np.ndarray, qtys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(np.cumsum(qtys), np.cumsum(prices * qtys))``, the same numbers, from one pass:
    the two running sums ride as the real and imaginary parts of one complex cumsum."""
    pair = np.empty(qtys.shape[0], dtype=np.complex128)
    pair.real = qtys
    np.multiply(prices, qtys, out=pair.imag)
    np.cumsum(pair, out=pair)
    return pair.real.copy(), pair.imag.copy()


@dataclass(frozen=True, slots=True)
class DepthDistribution:
    """Resting depth bucketed by distance from mid.

    edges_bps[i]: lower edge of bucket i; bucket i holds levels whose distance from mid,
    |price − M|/M · 10⁴, lies in [i·bucket_bps, (i+1)·bucket_bps). Levels at or beyond
    ``len(edges_bps)·bucket_bps`` are left out. bid_base / ask_base: Σ qty per bucket;
    bid_quote / ask_quote: Σ price·qty per bucket. mid: the reference (NaN: all arrays
    are zeros because the book has no mid).
    """

    bucket_bps: float
    mid: float
    edges_bps: np.ndarray
    bid_base: np.ndarray
    ask_base: np.ndarray
    bid_quote: np.ndarray
    ask_quote: np.ndarray


def depth_distribution(
    view: BookView, bucket_bps: float = 5.0, max_bps: float = 100.0
) -> DepthDistribution:
    """Bid and ask depth per ``bucket_bps``-wide distance bucket out to ``max_bps`` from mid
    (rounded up to whole buckets)."""
    if bucket_bps <= 0 or max_bps <= 0:
        raise ValueError("bucket_bps and max_bps must be positive")
    n = max(math.ceil(max_bps / bucket_bps - 1e-9), 1)
    edges = np.arange(n, dtype=np.float64) * bucket_bps
    mid = mid_price(view)
    if math.isnan(mid):
        z = np.zeros(n)
        return DepthDistribution(float(bucket_bps), mid, edges, z, z.copy(), z.copy(), z.copy())
    scale = 1e4 / (mid * bucket_bps)
    reach = (n + 1) / scale  # one bucket beyond the last: the exact cut is made below
    kb = _bids_at_or_above(view.bid_prices, mid - reach)
    ka = _asks_at_or_below(view.ask_prices, mid + reach)
    bid_prices, ask_prices = view.bid_prices[:kb], view.ask_prices[:ka]
    bid_base, bid_quote = _bucketed((mid - bid_prices) * scale, bid_prices, view.bid_qtys, n)
    ask_base, ask_quote = _bucketed((ask_prices - mid) * scale, ask_prices, view.ask_qtys, n)
    return DepthDistribution(
        float(bucket_bps), mid, edges, bid_base, ask_base, bid_quote, ask_quote
    )


def _bucketed(
    distance: np.ndarray, prices: np.ndarray, qtys: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Σ qty and Σ price·qty per bucket index ``floor(distance)`` for indexes in [0, n)
    (a negative distance counts in bucket 0), where ``distance`` ascends with the level.

    Levels are sorted away from mid, so each bucket is one run of levels, found by
    searching the bucket edges, and summed with one ``reduceat`` per column.
    """
    edges = np.searchsorted(distance, np.arange(1, n + 1, dtype=np.float64), side="left")
    starts = np.concatenate(([0], edges[:-1]))
    keep = int(edges[-1])
    columns = np.zeros((2, keep + 1))  # a zero at ``keep`` for buckets past the last level
    columns[0, :keep] = qtys[:keep]
    np.multiply(columns[0, :keep], prices[:keep], out=columns[1, :keep])
    sums = np.add.reduceat(columns, starts, axis=1)
    sums[:, starts == edges] = 0.0
    return sums[0], sums[1]


@dataclass(frozen=True, slots=True)
class DepthCurve:
    """Cumulative depth for the depth chart, best level first on each side.

    bid_prices (descending) / ask_prices (ascending): level prices.
    bid_cum_qty[i] / ask_cum_qty[i]: Σ qty from the best level to level i (base).
    bid_cum_quote[i] / ask_cum_quote[i]: Σ price·qty from the best level to level i.
    mid: (Pb + Pa)/2, NaN when a side is empty.
    """

    mid: float
    bid_prices: np.ndarray
    bid_cum_qty: np.ndarray
    bid_cum_quote: np.ndarray
    ask_prices: np.ndarray
    ask_cum_qty: np.ndarray
    ask_cum_quote: np.ndarray


def band_levels(
    view: BookView, band_frac: float | None, max_levels: int | None = None
) -> tuple[int, int]:
    """How many levels per side (bids, asks) lie within ±``band_frac`` (a fraction: 0.005 =
    0.5 %) of the mid — of the side's best price when the other side is empty — at most
    ``max_levels`` each; ``None`` leaves that cut out. The depth chart's and the ``book``
    stream's cut."""
    kb = int(view.bid_prices.shape[0])
    ka = int(view.ask_prices.shape[0])
    if max_levels is not None:
        kb, ka = min(kb, max(max_levels, 0)), min(ka, max(max_levels, 0))
    if band_frac is not None:
        mid = mid_price(view)
        if kb:
            ref = mid if not math.isnan(mid) else float(view.bid_prices[0])
            kb = min(kb, _bids_at_or_above(view.bid_prices, ref * (1.0 - band_frac)))
        if ka:
            ref = mid if not math.isnan(mid) else float(view.ask_prices[0])
            ka = min(ka, _asks_at_or_below(view.ask_prices, ref * (1.0 + band_frac)))
    return kb, ka


def depth_curve(
    view: BookView,
    max_distance_pct: float | None = None,
    max_levels: int | None = None,
) -> DepthCurve:
    """Step data for the depth chart: each side's levels with cumulative base and quote
    depth, cut at ``max_levels`` per side and at ``max_distance_pct`` % from mid (from the
    best level of that side when the book has no mid)."""
    mid = mid_price(view)
    frac = None if max_distance_pct is None else max_distance_pct / 100.0
    kb, ka = band_levels(view, frac, max_levels)
    bp, ap = view.bid_prices[:kb], view.ask_prices[:ka]
    bid_cum_qty, bid_cum_quote = cumulative_depth(bp, view.bid_qtys[:kb])
    ask_cum_qty, ask_cum_quote = cumulative_depth(ap, view.ask_qtys[:ka])
    return DepthCurve(
        mid=mid,
        bid_prices=bp,
        bid_cum_qty=bid_cum_qty,
        bid_cum_quote=bid_cum_quote,
        ask_prices=ap,
        ask_cum_qty=ask_cum_qty,
        ask_cum_quote=ask_cum_quote,
    )
