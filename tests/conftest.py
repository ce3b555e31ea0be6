"""Fixtures shared by every test layer: the bundled real recordings, their manifest, and a
history store holding the 2021 spot recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.history.importer import import_recording
from services.history.writer import HistoryWriter
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


@pytest.fixture(scope="session")
def history_2021(tmp_path_factory) -> Path:
    """A history root holding the 2021 spot recording (``history import``d once per session).
    Read-only: a test that deletes or adds files works on a copy."""
    root = tmp_path_factory.mktemp("history_2021")
    writer = HistoryWriter(root).start()
    import_recording(SPOT_2021, writer)
    writer.stop()
    return root
