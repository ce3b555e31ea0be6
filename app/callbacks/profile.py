"""Volume profile callback (slow interval): volume by price, POC, value area, delta."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State

from app import ids
from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from components.theme import create_notice_figure
from components.volume_profile import create_profile_figure
from services.store import MarketStore

AUTO_BUCKET = "auto"


def render_profile(
    store: MarketStore,
    cache: DerivedCache,
    symbol: str | None,
    bucket: str | int | None,
    rendered: str | None,
) -> tuple[Any, str]:
    """The profile figure and a key of what it shows (``no_update`` if unchanged).

    ``bucket`` is a number of ticks per row, or ``auto`` (about 60 rows over the range).
    """
    snapshot = store.snapshot(symbol) if symbol else None
    key = f"{symbol}|{snapshot.seq if snapshot else None}|{bucket}"
    if key == rendered:
        return dash.no_update, key
    if snapshot is None:
        text = f"Waiting for data for {symbol}" if symbol else "Choose a symbol"
        return create_notice_figure(text, uirevision="waiting"), key
    ticks = None if bucket in (None, AUTO_BUCKET) else int(bucket)
    result = derived.volume_profile(cache, snapshot, bucket_ticks=ticks)
    figure = create_profile_figure(
        bucket_prices=result.price,
        buy_volume=result.buy_volume,
        sell_volume=result.sell_volume,
        point_of_control=result.point_of_control,
        value_area_low=result.val,
        value_area_high=result.vah,
        bucket_size=result.bucket,
        uirevision=f"{symbol}|{bucket}",
        price_decimals=snapshot.info.price_decimals,
        unit=snapshot.info.base_asset,
    )
    return figure, key


def register(app: dash.Dash, store: MarketStore, cache: DerivedCache) -> None:
    """Wire the profile to the slow interval, the symbol and the bucket size."""

    @app.callback(
        Output(ids.VOLUME_PROFILE, "figure"),
        Output(ids.PROFILE_RENDERED, "data"),
        Input(ids.SLOW_INTERVAL, "n_intervals"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
        Input(ids.PROFILE_BUCKET, "value"),
        State(ids.PROFILE_RENDERED, "data"),
    )
    def update_profile(_n: int, symbol: str | None, bucket: str | None, rendered: str | None):
        return render_profile(store, cache, symbol, bucket, rendered)
