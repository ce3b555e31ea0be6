"""Command line: ``python -m app [run|check|exchange|record|worker|history] ...``.

Without a command it runs the dashboard (``run``). Each command lives in its own module
under ``app/cli`` and is imported only when asked for.
"""

from __future__ import annotations

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
    module = importlib.import_module(COMMANDS[name])
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
