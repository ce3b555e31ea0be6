"""``python -m app exchange``: run the offline local exchange alone.

Replays a recording of Binance (spot or USD-M) on loopback with Binance's WebSocket and REST
protocol and prints the base URLs it listens on. Fault flags make demos of the client's
recovery (disconnects, gaps, stalls, rate limits).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from services import event_loop
from services.replay.exchange import LocalExchange, parse_speed
from services.replay.player import TIME_BASES
from services.replay.recording import DEFAULT_REPLAY


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app exchange",
        description="Local Binance exchange replaying real recorded sessions.",
    )
    parser.add_argument(
        "--recording",
        action="append",
        help=f"recording file (repeatable, same market); default {DEFAULT_REPLAY.name}",
    )
    parser.add_argument("--speed", default="1", help="recording seconds per second, or 'max'")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9443, help="0 picks a free port")
    parser.add_argument(
        "--loop", action="store_true", help="replay forever; each pass a whole day later"
    )
    parser.add_argument(
        "--replay-time",
        choices=TIME_BASES,
        default="recording",
        help="event times: the recording's own (default) or moved by whole days to today",
    )
    parser.add_argument("--ping-interval", type=float, default=20.0, help="server ping, seconds")
    parser.add_argument("--fault-disconnect-every", type=float, metavar="S")
    parser.add_argument("--fault-gap-every", type=float, metavar="S")
    parser.add_argument("--fault-stall-every", type=float, metavar="S")
    parser.add_argument("--fault-stall-seconds", type=float, default=5.0, metavar="S")
    parser.add_argument("--fault-delay-snapshots", type=float, metavar="S")
    parser.add_argument(
        "--fault-rest-error",
        metavar="STATUS:COUNT",
        help="answer the first COUNT REST requests with STATUS (429, 418, 451, 500)",
    )
    return parser


async def serve(args: argparse.Namespace) -> None:
    exchange = LocalExchange(
        args.recording,
        speed=args.speed,
        loop=args.loop,
        host=args.host,
        port=args.port,
        ping_interval=args.ping_interval,
        time_base=args.replay_time,
    )
    async with exchange:
        faults = exchange.faults
        if args.fault_disconnect_every:
            faults.disconnect_every(args.fault_disconnect_every)
        if args.fault_gap_every:
            faults.gap_every(args.fault_gap_every)
        if args.fault_stall_every:
            faults.stall_every(args.fault_stall_every, args.fault_stall_seconds)
        if args.fault_delay_snapshots:
            faults.delay_snapshots(args.fault_delay_snapshots)
        if args.fault_rest_error:
            status, _, count = args.fault_rest_error.partition(":")
            faults.rest_error(int(status), int(count or 1))
        symbols = ", ".join(sorted(exchange.markets))
        print(f"Local {exchange.market} exchange: REPLAY of {exchange.replay_of} ({symbols})")
        print(f"ws   {exchange.ws_url}")
        print(f"rest {exchange.rest_url}")
        print(f"stats {exchange.rest_url}/tapescope/stats", flush=True)
        await asyncio.Event().wait()


def main(args: list[str]) -> int:
    options = build_parser().parse_args(args)
    try:
        parse_speed(options.speed)
    except ValueError as exc:
        print(f"--speed: {exc}")
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        event_loop.run(serve(options))
    return 0
