"""Where a replay resumes when its market already has a past: right after it, any pass.

A ``--loop`` replay's pass ``n`` is the recording shifted by ``n`` pass shifts of time
(``pass_shift_ms``) and, per symbol, by ``n`` times what one pass adds to each id sequence
(the **pass step**), so ids continue exactly across every seam. The step of a sequence is

* trade ids (``t``, aggTrade ``f``/``l``): last − first recorded trade id + 1;
* aggregate ids (``a``): recorded, last − first recorded aggregate id + 1; derived from
  trades (numbered from 1 while playing), the number of aggTrades one pass derives — the
  exchange closes an open one at every 100 ms tick, so they are counted on the same ticks;
* update ids: spot ``last u + 2 − first U`` (one seam diff between passes), USD-M
  ``last u + 1 − first pu``.

Pass ``n`` therefore needs nothing from the passes before it: a replay can start at pass
``n`` directly. ``resume_point`` picks the pass holding the newest stored trades and the
aggregate ids reached in it: the exchange plays that pass silently up to them, then
streams, so a restarted offline replay continues the stored tape exactly where it stopped
(no repeat, no hole), even in the middle of a pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

from services.replay.derived import AggTradeBuilder, TradeRecord
from services.replay.player import TICK_NS, Offsets, pass_shift_ms, tick_after
from services.replay.session import RecordedSession

_ID = {name: re.compile(b'"%s":(-?\\d+)' % name) for name in (b"a", b"f", b"l", b"t", b"u", b"T")}


def _field(data: bytes, name: bytes) -> int:
    match = _ID[name].search(data)
    return -1 if match is None else int(match.group(1))


def shift_ms(session: RecordedSession) -> int:
    """Time added per pass: the recording's span rounded up to whole days."""
    return pass_shift_ms((session.end_ns - session.start_ns) // 1_000_000 + 1)


def pass_steps(session: RecordedSession) -> Offsets:
    """What one pass adds to each symbol's ids (``time_ms`` = the pass shift)."""
    first: dict[tuple[str, bytes], int] = {}
    last: dict[tuple[str, bytes], int] = {}

    def seen(symbol: str, name: bytes, first_value: int, last_value: int) -> None:
        first.setdefault((symbol, name), first_value)
        last[(symbol, name)] = last_value

    for event in session.events:
        if event.kind == "trade":
            trade_id = _field(event.data, b"t")
            seen(event.symbol, b"t", trade_id, trade_id)
        elif event.kind == "aggTrade":
            seen(event.symbol, b"t", _field(event.data, b"f"), _field(event.data, b"l"))
            agg_id = _field(event.data, b"a")
            seen(event.symbol, b"a", agg_id, agg_id)
        elif event.kind == "depth":
            final = _field(event.data, b"u")
            seen(event.symbol, b"u", final, final)
    steps = Offsets(shift_ms(session))
    steps.agg_ids.update(derived_agg_counts(session))
    for symbol in session.symbols:
        if (symbol, b"t") in first:
            steps.trade_ids[symbol] = last[(symbol, b"t")] + 1 - first[(symbol, b"t")]
        if (symbol, b"a") in first:
            steps.agg_ids[symbol] = last[(symbol, b"a")] + 1 - first[(symbol, b"a")]
        base = _book_base(session, symbol)
        if base is not None and (symbol, b"u") in last:
            steps.update_ids[symbol] = last[(symbol, b"u")] + 1 - base
    return steps


def derived_agg_counts(session: RecordedSession) -> dict[str, int]:
    """Per symbol whose aggTrades are derived from recorded trades: how many one pass
    derives (trades of one taker order grouped as ``AggTradeBuilder`` does, an open group
    closed at each tick of the replay's 100 ms grid and at the end of the pass)."""
    kinds: dict[str, set[str]] = {}
    for event in session.events:
        kinds.setdefault(event.symbol, set()).add(event.kind)
    derived = {s for s, k in kinds.items() if "trade" in k and "aggTrade" not in k}
    builders = {s: AggTradeBuilder(0) for s in derived}
    counts = dict.fromkeys(derived, 0)

    def close_all() -> None:
        for symbol, builder in builders.items():
            counts[symbol] += builder.flush() is not None

    next_tick = session.start_ns + TICK_NS
    for event in session.events:
        while next_tick <= event.ts_ns:
            close_all()
            next_tick = tick_after(next_tick, event.ts_ns)
        if event.kind == "trade" and event.symbol in builders:
            body = orjson.loads(event.data)
            trade = TradeRecord(body["t"], body["p"], body["q"], body["T"], body["m"])
            counts[event.symbol] += builders[event.symbol].add(trade) is not None
    close_all()
    return counts


def pass_offsets(steps: Offsets, first_offset_ms: int, n: int) -> Offsets:
    """Offsets of pass ``n`` (pass 0 is shifted by ``first_offset_ms`` only)."""
    return Offsets(
        first_offset_ms + n * steps.time_ms,
        {s: n * v for s, v in steps.update_ids.items()},
        {s: n * v for s, v in steps.trade_ids.items()},
        {s: n * v for s, v in steps.agg_ids.items()},
    )


def start_book_id(session: RecordedSession, symbol: str, offsets: Offsets) -> int | None:
    """The book's ``lastUpdateId`` at the start of a pass > 0 with these offsets (what the
    seam diff would have left), or None when the symbol has no diffs."""
    base = _book_base(session, symbol)
    if base is None or symbol not in offsets.update_ids:
        return None
    return base + offsets.update_ids[symbol]


def _book_base(session: RecordedSession, symbol: str) -> int | None:
    """The book's ``lastUpdateId`` just before the recording's first diff (USD-M: its
    ``pu``; spot: its ``U`` − 1), or None when the symbol has no diffs."""
    ids = session.symbols[symbol].first_diff_ids
    if ids is None:
        return None
    first_u, _, previous = ids
    return previous if session.market == "usdm" and previous is not None else first_u - 1


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a replay resumes: the pass to play first and, per symbol, the aggregate id
    to play silently up to (inclusive) before streaming; no targets: the pass's start."""

    pass_n: int = 0
    targets: dict[str, int] = field(default_factory=dict)


def resume_point(
    session: RecordedSession, first_offset_ms: int, stored: dict[str, tuple[int, int]]
) -> ResumePoint:
    """Where to resume after stored aggTrades: ``stored`` maps a symbol to its newest
    stored aggregate id and trade time (ms). A symbol's stored past counts only when it is
    this recording's: its newest aggTrade, moved back by whole passes, is one of the
    recording's (id within its ids, time within its span). The resume pass is the newest
    such pass; the targets are the stored newest ids of the symbols in it (mid-pass), none
    when they all end it (the next pass then starts at its beginning). Pass 0, no targets
    when nothing stored is this recording's."""
    steps = pass_steps(session)
    span_ms = (session.start_ns // 1_000_000, session.end_ns // 1_000_000)
    found: dict[str, tuple[int, bool]] = {}  # symbol → (pass, ends that pass)
    for symbol, (agg_id, time_ms) in stored.items():
        step = steps.agg_ids.get(symbol)
        first_agg = _first_agg_id(session, symbol) or 1
        if not step or agg_id < first_agg:
            continue
        n = (agg_id - first_agg) // step
        moved_ms = time_ms - first_offset_ms - n * steps.time_ms
        if not span_ms[0] - 60_000 <= moved_ms <= span_ms[1]:
            continue  # same symbol, another recording (or a live market)
        found[symbol] = (n, agg_id == first_agg + (n + 1) * step - 1)
    if not found:
        return ResumePoint()
    newest = max(n for n, _ in found.values())
    mid = {s: stored[s][0] for s, (n, ends) in found.items() if n == newest and not ends}
    return ResumePoint(newest, mid) if mid else ResumePoint(newest + 1)


def _first_agg_id(session: RecordedSession, symbol: str) -> int | None:
    for event in session.events:
        if event.symbol == symbol and event.kind == "aggTrade":
            return _field(event.data, b"a")
    return None
