"""``python -m app``: the command's modules are imported with the cyclic garbage collector
off, what they made is frozen afterwards, and the command itself runs with collection on
(a long-running command must collect its own garbage)."""

from __future__ import annotations

import gc
import types

import app.__main__ as entry


def test_command_imported_without_collection_then_frozen_and_run_with_it(monkeypatch):
    seen: dict[str, object] = {}

    def main(args: list[str]) -> int:
        seen["enabled_in_main"] = gc.isenabled()
        seen["frozen_in_main"] = gc.get_freeze_count()
        seen["args"] = args
        return 0

    def import_module(name: str) -> types.ModuleType:
        seen["enabled_in_import"] = gc.isenabled()
        seen["module"] = name
        kept = [[i] for i in range(1000)]  # objects a module's import would keep
        seen["kept"] = kept
        return types.SimpleNamespace(main=main)  # type: ignore[return-value]

    monkeypatch.setattr(entry.importlib, "import_module", import_module)
    assert gc.isenabled()
    try:
        assert entry.main(["history", "info"]) == 0
        assert seen["module"] == "app.cli.history" and seen["args"] == ["info"]
        assert seen["enabled_in_import"] is False
        assert seen["enabled_in_main"] is True
        assert seen["frozen_in_main"] >= 1000  # the import's objects are never walked again
        assert gc.isenabled()
    finally:
        gc.unfreeze()
