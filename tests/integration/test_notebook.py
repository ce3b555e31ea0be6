"""The notebook ``docs/tapescope_api.ipynb`` runs as written: each code cell, in order, in one
namespace, with top-level ``await`` (as Jupyter runs it), against the bundled replay."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "tapescope_api.ipynb"


def code_cells(path: Path) -> list[str]:
    notebook = json.loads(path.read_text())
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


@pytest.mark.timeout(90)
async def test_every_cell_of_the_api_notebook_runs():
    cells = code_cells(NOTEBOOK)
    assert len(cells) >= 8
    namespace: dict = {}
    try:
        for index, source in enumerate(cells):
            code = compile(
                source, f"{NOTEBOOK.name}[{index}]", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            )
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                await result
    finally:
        tapescope = namespace.get("tapescope")
        if tapescope is not None:
            await tapescope.stop()
    assert namespace["flow"]["count"] == 100
    assert namespace["health"]["status"] == "ok"
