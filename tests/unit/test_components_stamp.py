"""Stamped components serialise exactly like the ones their constructors build."""

from __future__ import annotations

import pytest
from dash import html
from plotly.io.json import to_json_plotly

from components.stamp import stamp


def test_stamp_equals_the_constructor():
    template = html.Div("", className="row")
    built = html.Div(["a", html.Span("b")], className="tape-row buy tier-1")
    copy = stamp(template, children=["a", html.Span("b")], className="tape-row buy tier-1")
    assert type(copy) is html.Div
    assert to_json_plotly(copy) == to_json_plotly(built)
    assert template.children == "" and template.className == "row"


def test_stamp_rejects_props_the_template_lacks():
    with pytest.raises(TypeError):
        stamp(html.Td(""), className="num")
