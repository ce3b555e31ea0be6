"""Flow filter control: one min/max trade-notional pair for the tape, CVD, footprint and
heatmap dots, and the badge that panel headers show while it is active."""

from __future__ import annotations

from dash import dcc, html

from services.analytics.definitions import DEFINITIONS

_SCALES = {"k": 1e3, "m": 1e6, "b": 1e9}


def parse_notional(text: str | None) -> float | None:
    """A notional from user text (``250k``, ``1.5M``, ``20000``); None for empty or
    unreadable text or a value ≤ 0 (the bound is then open)."""
    token = (text or "").strip().lower().replace(",", "").replace("_", "")
    if not token:
        return None
    scale = _SCALES.get(token[-1], 1.0)
    number = token[:-1] if token[-1] in _SCALES else token
    try:
        value = float(number) * scale
    except ValueError:
        return None
    return value if value > 0 and value != float("inf") else None


def notional_band(min_text: str | None, max_text: str | None) -> tuple[float | None, float | None]:
    """(min, max) notional from the two inputs; a max below the min is dropped."""
    low, high = parse_notional(min_text), parse_notional(max_text)
    if low is not None and high is not None and high < low:
        high = None
    return low, high


def create_flow_filter_control(min_id: str, max_id: str) -> html.Div:
    """Two inputs (min and max trade notional in the quote asset) under one label."""

    def box(input_id: str, placeholder: str) -> dcc.Input:
        return dcc.Input(
            id=input_id,
            debounce=True,
            size="7",
            placeholder=placeholder,
            className="tiers-input flow-filter-input",
        )

    return html.Div(
        [
            html.Span("trade size", className="flow-filter-label"),
            box(min_id, "min"),
            html.Span("–", className="flow-filter-label"),
            box(max_id, "max"),
        ],
        className="flow-filter",
        title=f"Flow filter. {DEFINITIONS['flow_filter']} Accepts 10k, 2.5M.",
    )


def filter_badge(label: str) -> str:
    """Header badge text for an active filter (``label`` from ``FlowFilter.label``)."""
    return f"filter {label}" if label else ""
