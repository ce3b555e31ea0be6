"""Command line: ``python -m app [run|check|exchange|record|worker|history] ...``.

Without a command it runs the dashboard (``run``). Each command lives in its own module
under ``app/cli`` and is imported only when asked for.

Start-up: importing a command's modules (Dash, Plotly, polars, aiohttp, ...) makes ~190,000
objects that live as long as the process and almost no garbage (~2,000 objects), yet the
cyclic garbage collector would walk them all in two full collections on the way (~10 %
of a restart's CPU). So collection is off while the command is imported, and what the
imports made is then frozen (``gc.freeze``): never collected (that small garbage is kept)
and never walked again — the full collections while the feed runs are shorter too.
"""

from __future__ import annotations

import gc
import importlib
import sys

COMMANDS = {
    "run": "app.cli.run",
    "check": "app.cli.check",
    "exchange": "app.cli.exchange",
    "record": "app.cli.record",
    "worker": "app.cli.worker",
    "history": "app.cli.history",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = "run"
    if args and args[0] in COMMANDS:
        name = args.pop(0)
    elif args and not args[0].startswith("-"):
        known = ", ".join(COMMANDS)
        print(f"unknown command {args[0]!r}; commands: {known}", file=sys.stderr)
        return 2
    gc.disable()
    try:
        module = importlib.import_module(COMMANDS[name])
    finally:
        gc.freeze()
        gc.enable()
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
