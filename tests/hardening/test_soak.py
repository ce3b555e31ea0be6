"""Fault soaks: the real feed against the local exchange over relabelled symbols with
seeded random faults. The short form runs by default; the long one (``-m slow``) and
``python -m scripts.soak --duration 600`` soak longer."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.soak import SoakConfig, SoakReport, run_soak

CONNECTION_FAULTS = {"drop_connections", "stall", "server_shutdown"}
FRAME_FAULTS = {"drop_next_diff", "duplicate_next", "reorder_next", "malformed_next"}
REST_FAULTS = {"rest_429", "rest_418", "rest_418_burst"}
SHORT_S = 12.0
"""Seconds of faults in the default form: every kind is injected at least once."""


def _check(report: SoakReport, config: SoakConfig) -> None:
    print()
    print(report.summary())
    assert len(report.symbols) == config.symbols
    assert report.problems == []
    assert set(report.injected) >= CONNECTION_FAULTS | FRAME_FAULTS | REST_FAULTS
    for kind in ("drop_connection", "gap", "duplicate", "reorder", "malformed", "rest_429"):
        assert report.fired.get(kind, 0) > 0, (kind, report.fired)
    assert report.stats is not None
    assert report.stats.counters.frame_errors == 0
    assert report.reconnects >= 1  # two connection faults may fall in one outage
    assert report.resync_times_s, "no symbol ever had to resync"
    assert 0 < report.max_used_weight <= config.rest_weight_budget
    assert report.publications > 2 * config.symbols * config.duration_s


@pytest.mark.timeout(150)
async def test_short_soak_ends_exact_and_within_budget(tmp_path: Path) -> None:
    config = SoakConfig(
        duration_s=SHORT_S, symbols=6, seed=7, speed=6.0, ending_speed=12.0, settle_timeout_s=45
    )
    report = await run_soak(config, tmp_path)
    _check(report, config)


@pytest.mark.slow  # ~2.5 min: -m slow
@pytest.mark.timeout(480)
@pytest.mark.parametrize("seed", [11, 23])
async def test_long_soak_ends_exact_and_within_budget(tmp_path: Path, seed: int) -> None:
    config = SoakConfig(duration_s=90.0, symbols=12, seed=seed, speed=4.0)
    report = await run_soak(config, tmp_path)
    _check(report, config)
