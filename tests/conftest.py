"""Fixtures shared by every test layer: the bundled real recordings and their manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.replay.recording import BUNDLED_DIR, SPOT_2021, SPOT_2024, USDM_2024


@pytest.fixture(scope="session")
def manifest() -> dict[str, dict]:
    """manifest.json of the bundled recordings, keyed by file name."""
    data = json.loads((BUNDLED_DIR / "manifest.json").read_text())
    return {entry["file"]: entry for entry in data["files"]}


@pytest.fixture(scope="session")
def recordings() -> dict[str, Path]:
    """Paths of the bundled recordings: ``spot_2024``, ``spot_2021``, ``usdm_2024``."""
    return {"spot_2024": SPOT_2024, "spot_2021": SPOT_2021, "usdm_2024": USDM_2024}
