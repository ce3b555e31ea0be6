"""The ingest worker's GC thresholds: the default, an override from the environment, and a
clear error for a malformed one."""

from __future__ import annotations

import gc

import pytest

from services import collector


@pytest.fixture(autouse=True)
def _restore_thresholds():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_ingest_thresholds_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(collector.ENV, raising=False)
    assert collector.tune_for_ingest() == collector.INGEST_THRESHOLDS
    assert gc.get_threshold() == collector.INGEST_THRESHOLDS


def test_the_environment_sets_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(collector.ENV, " 700, 10,10 ")
    assert collector.tune_for_ingest() == (700, 10, 10) == gc.get_threshold()


@pytest.mark.parametrize("text", ["700,10", "a,b,c", "700,-1,10", "1,2,3,4"])
def test_a_malformed_setting_is_refused_by_name(text: str) -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match=collector.ENV):
        collector.thresholds_from(text)
    assert gc.get_threshold() == before
