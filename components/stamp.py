"""Cheap copies of Dash components for the parts of a panel rebuilt on every refresh.

A Dash component's constructor validates every keyword against the component's props and
costs about 10 µs; a panel of a hundred rows pays that a hundred times per refresh.
``stamp`` instead copies a template built once through the constructor and sets the same
props on the copy, which gives the component the constructor would have built (the props
set are exactly the template's, so the names were validated when the template was made).
"""

from __future__ import annotations

from typing import Any, TypeVar

from dash.development.base_component import Component

C = TypeVar("C", bound=Component)


def stamp(template: C, **props: Any) -> C:
    """A copy of ``template`` with ``props`` replaced; ``props`` must name only props the
    template was built with (their values may be anything the constructor accepts)."""
    missing = props.keys() - template.__dict__.keys()
    if missing:
        raise TypeError(f"{template._type} template was not built with {sorted(missing)}")
    component = object.__new__(type(template))
    component.__dict__.update(template.__dict__)
    component.__dict__.update(props)
    return component
