"""Colours and the base Plotly layout shared by every figure of the dark dashboard."""

from __future__ import annotations

from typing import Any

BID = "#26a69a"
ASK = "#ef5350"
BID_FILL = "rgba(38, 166, 154, 0.25)"
ASK_FILL = "rgba(239, 83, 80, 0.25)"
ACCENT = "#ffb300"
MUTED = "#8a94a6"
TEXT = "#dee2e6"
GRID = "rgba(255, 255, 255, 0.07)"
VALUE_AREA_FILL = "rgba(255, 179, 0, 0.08)"


def create_base_layout(uirevision: str, **overrides: Any) -> dict[str, Any]:
    """A transparent dark Plotly layout; ``uirevision`` keeps the user's zoom across updates."""
    layout: dict[str, Any] = {
        "uirevision": uirevision,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": TEXT, "size": 11},
        "margin": {"l": 50, "r": 12, "t": 28, "b": 32},
        "showlegend": False,
        "hoverlabel": {"bgcolor": "#222", "font": {"color": TEXT}},
        "xaxis": {"gridcolor": GRID, "zeroline": False},
        "yaxis": {"gridcolor": GRID, "zeroline": False},
    }
    layout.update(overrides)
    return layout


def create_notice_figure(message: str, uirevision: str = "notice") -> dict[str, Any]:
    """A figure with no data that says why nothing is drawn (e.g. the book is not in sync)."""
    layout = create_base_layout(uirevision)
    layout["xaxis"] = {"visible": False}
    layout["yaxis"] = {"visible": False}
    layout["annotations"] = [
        {
            "text": message,
            "xref": "paper",
            "yref": "paper",
            "x": 0.5,
            "y": 0.5,
            "showarrow": False,
            "font": {"size": 15, "color": ACCENT},
        }
    ]
    return {"data": [], "layout": layout}
