"""The flow panel driven by the trades stream while the page's push is live.

The server renders the flow figure once (and again every ``RESEED_TICKS`` ticks of the fast
interval, or on a symbol/window/filter change) together with a *seed*: the trades of the
window it computed from (time, signed notional), the last trade id it saw and the CVD's
final value. ``assets/push.js`` then applies every streamed trade above that id — the same
window ``(now − window, now]`` ending at the newest trade, the same CVD (filtered by the
flow filter's notional band) — and repaints the bars, title and CVD line with the tape,
with no server round trip. Between seeds the server's callback returns at once.

A seed's fields: ``key``/``seq`` (what the figure shows), ``last_id``; ``window_ms``;
``trades`` {``t``: times (ms), ``q``: notional and ``v``: quantity, + for a taker buy, −
for a taker sell} of the window (the direction is read from the quantities' buy share, the
bars from the notionals); ``cvd`` (the CVD line's last value, quote units); ``band``
(``[min, max]`` notional, None = open); the figure's wording: ``label``, ``unit``,
``labels`` (direction → words), ``ratios`` (direction thresholds), ``colours``.
"""

from __future__ import annotations

import numpy as np
from dash import ClientsideFunction, Input, Output

from app import ids
from components.flow_meter import DIRECTION_LABELS
from components.theme import ASK, BID, MUTED
from services.analytics import flow
from services.analytics.window import select_window
from services.store import SymbolSnapshot

RESEED_TICKS = 30
"""While pushed, the server re-renders (and re-seeds) the flow every this many ticks of the
fast interval (30 × 2 s): it bounds the CVD points the page appends and re-anchors it."""


def push_live(push_state: dict | None) -> bool:
    """Whether the page paints from the push streams now."""
    return bool(push_state) and push_state.get("state") == "live"  # type: ignore[union-attr]


def skip_render(push_state: dict | None, tick: bool, n: int | None, rendered: dict | None) -> bool:
    """Whether the server may skip rendering: the page is live on push, already seeded, and
    this call is only a tick of the fast interval that is not a re-seed tick."""
    return (
        push_live(push_state)
        and tick
        and bool(rendered and rendered.get("seeded"))
        and (n or 0) % RESEED_TICKS != 0
    )


def flow_seed(
    snapshot: SymbolSnapshot,
    window_ms: int,
    window_label: str,
    cvd_final: float,
    band: tuple[float | None, float | None],
) -> dict:
    """What the page needs to go on computing the flow from streamed trades (module
    docstring)."""
    trades = snapshot.trades
    window = select_window(trades, window_ms=window_ms) if len(trades) else trades
    signed_qty = np.asarray(window.qty * window.side, dtype=np.float64)
    signed = np.asarray(window.price * window.qty * window.side, dtype=np.float64)
    return {
        "last_id": int(trades.trade_id[-1]) if len(trades) else None,
        "window_ms": int(window_ms),
        "trades": {"t": window.time_ms.tolist(), "q": signed.tolist(), "v": signed_qty.tolist()},
        "cvd": float(cvd_final),
        "band": list(band),
        "label": window_label,
        "unit": snapshot.info.quote_asset,
        "labels": DIRECTION_LABELS,
        "ratios": {
            "strong_buy": flow.STRONG_BUY_RATIO,
            "buy": flow.BUY_RATIO,
            "sell": flow.SELL_RATIO,
            "strong_sell": flow.STRONG_SELL_RATIO,
        },
        "colours": {"buy": BID, "sell": ASK, "neutral": MUTED},
    }


def register(app: object) -> None:
    """Hand each new seed to the page's script."""
    app.clientside_callback(  # type: ignore[attr-defined]
        ClientsideFunction("tapescope", "flowSeed"),
        Output(ids.FLOW_PUSH, "data"),
        Input(ids.FLOW_SEED, "data"),
    )
