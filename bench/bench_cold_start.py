"""Cold start: N relabelled copies of the real 3-symbol 2021 recording on the local
exchange, a feed started on all of them, time until every book is LIVE. Compared, in the
same process on the same data, with the previous snapshot desk (one snapshot at a time,
1000 levels each, 1200 weight a minute, no deepening), which is stopped at ``--cap``.

Figures: all_live_s (s from start to every book LIVE; null: not within the cap),
live_at_cap (books LIVE when stopped), max_used_weight (highest X-MBX-USED-WEIGHT-1M the
exchange reported: its rolling minute) against the budget, rate_limited (a 429/418 seen),
background_weight_before_all_live (weight of trade warm-ups, the watchlist's seed and
deepening admitted before every book was LIVE: what the books waited behind; the snapshots
go first, the background work takes at most the upper half of the burst meanwhile).

Run: ``.venv/bin/python bench/bench_cold_start.py [--symbols 200] [--cap 90]``. The
whole market: ``--symbols 1500 --speed 0.25 --cap 420 --no-previous --workdir DIR`` — the
replay at a quarter of real speed thins the streams so that one process can carry the
exchange and 1,500 symbols' streams on this machine (the REST weight window stays
wall-clock, and the budget is what bounds a cold start); the relabelled recording is kept
in DIR for the next run. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
from pathlib import Path

from scripts.cold_start import ColdStartReport, cold_start, relabelled

PREVIOUS = {
    "rest_weight_budget": 1200,
    "snapshot_limit": 1000,
    "snapshot_concurrency": 1,
    "deepen": False,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--cap", type=float, default=90.0)
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed")
    parser.add_argument("--no-previous", action="store_true", help="skip the previous desk")
    parser.add_argument("--workdir", type=Path, help="keep the relabelled recording here")
    parser.add_argument(
        "--own-process", action="store_true", help="run the exchange in its own process"
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        recording, symbols = relabelled(args.symbols, workdir)
        now = asyncio.run(
            cold_start(recording, symbols, args.cap, speed=args.speed, own_process=args.own_process)
        )
        before = (
            ColdStartReport(symbols=len(symbols), budget=PREVIOUS["rest_weight_budget"])
            if args.no_previous
            else asyncio.run(cold_start(recording, symbols, args.cap, speed=args.speed, **PREVIOUS))
        )
    print(
        f"cold start of {args.symbols} relabelled real symbols (local exchange, replay speed "
        f"{args.speed:g}, REST window wall-clock)"
    )
    print(f"{'desk':<34} {'all LIVE s':>10} {'LIVE':>6} {'max weight':>11} {'429':>5}")
    for name, report in (("light + concurrent (now)", now), ("one at a time, 1000 lv", before)):
        print(
            f"{name:<34} {_seconds(report):>10} {report.live_at_end:>6} "
            f"{report.max_used_weight:>5}/{report.budget:<5} {report.rate_limited!s:>5}"
        )
    if now.all_live_s and not args.no_previous:
        live_rate_before = before.live_at_end / args.cap
        print(
            f"speed-up: {args.symbols / now.all_live_s / max(live_rate_before, 1e-9):.0f}x "
            f"symbols LIVE per second ({args.symbols / now.all_live_s:.1f} vs "
            f"{live_rate_before:.2f})"
        )
    print("books LIVE over time (now): " + ", ".join(f"{n}@{t:g}s" for t, n in now.live_curve))
    print("goal: 200 symbols <= 60 s, 1500 <= 300 s, never over the budget")
    print(
        json.dumps(
            {
                "cold_start_symbols": args.symbols,
                "cold_start_all_live_s": now.all_live_s and round(now.all_live_s, 2),
                "cold_start_max_used_weight": now.max_used_weight,
                "cold_start_budget_weight_per_min": now.budget,
                "cold_start_rate_limited": now.rate_limited,
                "cold_start_snapshots": now.snapshots,
                "cold_start_live_at_end": now.live_at_end,
                "cold_start_replay_speed": args.speed,
                "cold_start_exchange_own_process": args.own_process,
                "cold_start_live_curve_s_live": now.live_curve,
                "cold_start_background_weight_before_all_live": (
                    now.background_weight_before_all_live
                ),
                "previous_live_at_cap": before.live_at_end,
                "previous_cap_s": args.cap,
                "previous_all_live_s": before.all_live_s and round(before.all_live_s, 2),
            }
        )
    )


def _seconds(report: ColdStartReport) -> str:
    return f"{report.all_live_s:.1f}" if report.all_live_s is not None else "-"


if __name__ == "__main__":
    main()
