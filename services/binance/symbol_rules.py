"""A symbol's trading rules as Binance's ``exchangeInfo`` states them (no I/O).

``SymbolInfo`` is the protocol layer's fact about a symbol — status, assets, tick and step
sizes — which the market state, the store and the web side carry along; it is decoded here
from an exchangeInfo body (spot ``/api/v3`` or USD-M ``/fapi/v1``, same shape for what is
read).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from services.binance.messages import MalformedFrame

DEFAULT_TICK_SIZE = "0.01"
DEFAULT_STEP_SIZE = "0.00001"


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """Exchange rules for a symbol (from exchangeInfo): status, tick and step sizes."""

    symbol: str
    status: str = "TRADING"
    base_asset: str = ""
    quote_asset: str = ""
    tick_size: float = 0.01
    step_size: float = 0.00001
    price_decimals: int = 2
    qty_decimals: int = 5


def decimals(step: str) -> int:
    """Decimal places of a tick or step size string: ``"0.01000000"`` → 2, ``"1.0"`` → 0."""
    _, _, fraction = step.partition(".")
    return len(fraction.rstrip("0"))


class _Filter(msgspec.Struct):
    filterType: str
    tickSize: str | None = None
    stepSize: str | None = None


class _SymbolRules(msgspec.Struct):
    symbol: str
    status: str = "TRADING"
    baseAsset: str = ""
    quoteAsset: str = ""
    filters: list[_Filter] = []


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_SymbolRules]


_EXCHANGE_INFO = msgspec.json.Decoder(_ExchangeInfo)


def _symbol_info(rules: _SymbolRules) -> SymbolInfo:
    """``PRICE_FILTER``'s tick size and ``LOT_SIZE``'s step size (defaults when absent)."""
    filters = {f.filterType: f for f in rules.filters}
    tick = filters.get("PRICE_FILTER")
    step = filters.get("LOT_SIZE")
    tick_size = tick.tickSize if tick and tick.tickSize else DEFAULT_TICK_SIZE
    step_size = step.stepSize if step and step.stepSize else DEFAULT_STEP_SIZE
    return SymbolInfo(
        symbol=rules.symbol,
        status=rules.status,
        base_asset=rules.baseAsset,
        quote_asset=rules.quoteAsset,
        tick_size=float(tick_size),
        step_size=float(step_size),
        price_decimals=decimals(tick_size),
        qty_decimals=decimals(step_size),
    )


def decode_exchange_info(body: bytes) -> list[SymbolInfo]:
    """Every symbol of an exchangeInfo body; raises ``MalformedFrame`` for a body that is
    not one (whatever the decoder raised, as for stream frames)."""
    try:
        return [_symbol_info(rules) for rules in _EXCHANGE_INFO.decode(body).symbols]
    except Exception as exc:
        raise MalformedFrame(f"exchangeInfo: {type(exc).__name__}: {exc}"[:300]) from exc
