"""``python -m app exchange``: flags and start-up output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.cli.exchange import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_flags_parse():
    flags = ["--recording", "a.gz", "--speed", "max", "--port", "0", "--loop"]
    faults = ["--fault-disconnect-every", "30", "--fault-rest-error", "429:2"]
    options = build_parser().parse_args([*flags, *faults])
    assert options.recording == ["a.gz"] and options.speed == "max" and options.loop
    assert options.fault_disconnect_every == 30.0 and options.fault_rest_error == "429:2"


def test_bad_speed_is_refused(capsys):
    assert main(["--speed", "-1"]) == 2
    assert "--speed" in capsys.readouterr().out


def test_prints_the_urls_it_listens_on():
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "exchange", "--port", "0", "--speed", "max"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(3)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "REPLAY of 2021-04-04T20:03:11" in lines[0]
    assert lines[1].startswith("ws   ws://127.0.0.1:")
    assert lines[2].startswith("rest http://127.0.0.1:")
