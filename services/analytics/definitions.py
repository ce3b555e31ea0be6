"""One-sentence definitions of every metric the dashboard shows, for tooltips.

Keys are the result field names of the analytics functions; each text says the same as
that function's docstring.
"""

from __future__ import annotations

DEFINITIONS: dict[str, str] = {
    "best_bid": "Highest resting buy price in the local order book.",
    "best_ask": "Lowest resting sell price in the local order book.",
    "mid": "Midpoint of best bid and best ask: (bid + ask) / 2.",
    "spread": "Best ask minus best bid, in quote currency.",
    "spread_bps": "Spread divided by mid, in basis points (1 bp = 0.01 %).",
    "weighted_mid": (
        "Size-weighted mid (bid·ask_qty + ask·bid_qty) / (bid_qty + ask_qty); it leans toward"
        " the thinner side. Not Stoikov's microprice."
    ),
    "imbalance_top": (
        "Top-of-book imbalance (bid_qty − ask_qty) / (bid_qty + ask_qty) at the best levels;"
        " +1 only bids, −1 only asks."
    ),
    "imbalance": (
        "Depth imbalance (B − A) / (B + A) of base quantity resting within ±N bps of mid;"
        " positive means more bids."
    ),
    "total_bid_qty": "Sum of base quantity over every known bid level.",
    "total_ask_qty": "Sum of base quantity over every known ask level.",
    "bid_ask_volume_ratio": "Total known bid quantity divided by total known ask quantity.",
    "depth_within": ("Base quantity and quote notional resting within ±N bps of mid, per side."),
    "depth_distribution": "Resting depth per distance-from-mid bucket, per side.",
    "depth_curve": "Cumulative depth from the best level outward, per side.",
    "price_impact": (
        "Average fill of a market order walked through the book; slippage is its adverse"
        " distance from mid in bps. 'Unfillable' means the known book is too thin."
    ),
    "liquidity_score": (
        "0–100: 0.3·spread score + 0.4·depth score (quote depth within ±25 bps) + 0.3·impact"
        " score (slippage of a 100k quote market order); higher is more liquid."
    ),
    "vwap": "Volume-weighted average price: Σ price·qty / Σ qty over the window.",
    "volume": "Base quantity traded in the window.",
    "quote_volume": "Quote notional traded in the window: Σ price·qty.",
    "buy_volume": "Base quantity bought by takers (aggressive buyers) in the window.",
    "sell_volume": "Base quantity sold by takers (aggressive sellers) in the window.",
    "delta": "Taker-buy volume minus taker-sell volume in the window.",
    "buy_ratio_volume": "Share of the window's volume bought by takers.",
    "buy_ratio_count": "Share of the window's trades that were taker buys.",
    "avg_size": "Mean base quantity per trade in the window.",
    "direction": (
        "Flow label from the taker-buy share of volume: ≥ 65 % strong buy, ≥ 55 % buy,"
        " ≤ 35 % strong sell, ≤ 45 % sell, otherwise neutral."
    ),
    "cvd": (
        "Cumulative volume delta: running sum of taker-buy minus taker-sell volume since the"
        " anchor (by default the first trade shown)."
    ),
    "point_of_control": (
        "Price row with the most traded volume; ties go to the row nearest the range centre."
    ),
    "value_area": (
        "Price band around the POC holding at least 70 % of the volume, grown two rows at a"
        " time toward the side with more volume (CBOT method)."
    ),
    "vah": "Value area high: upper edge of the value area.",
    "val": "Value area low: lower edge of the value area.",
    "large_trades": (
        "Trades whose quote notional reaches a tier (default 100k / 250k / 1M), or whose size"
        " is at least k times the window's mean; one aggTrade is one taker order."
    ),
    "time_and_sales": "The newest trades, newest first, coloured by taker side.",
    "liquidity_heatmap": (
        "Resting size at each price row during each time bucket (the maximum seen), bids green"
        " and asks red, scaled to the largest in view between the cut-offs; lines: best bid"
        " and ask; dots: trades sized by quantity, coloured by aggressor. Shaded: no LIVE book."
    ),
    "footprint": (
        "Each bar split into price rows of taker sells × taker buys, coloured by delta; box:"
        " the bar's POC (most volume); under each bar: volume, delta and CVD at its close."
    ),
    "diagonal_imbalance": (
        "▶ buy imbalance: buys at row P+1 ≥ ratio × sells at row P (default 300 %, with a"
        " minimum volume); ◀ sell imbalance: the mirror. A thick edge marks a stacked run of"
        " 3 or more rows."
    ),
    "naked_poc": "Dotted line: a bar's POC that no later bar has traded through yet.",
    "flow_filter": (
        "Only trades whose notional (price × qty) is within the min/max bounds count on the"
        " tape, the CVD line, the footprint and the heatmap's dots."
    ),
}
