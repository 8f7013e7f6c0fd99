"""Small layout helpers shared by the panels (layout as data only; no callbacks here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import dcc, html

from mazewb.app.figures import message_figure

GRAPH_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
}


def short_layer(layer: str) -> str:
    return layer.replace("embedder.", "")


def layer_options() -> list[tuple[str, str]]:
    from mazewb.app.state import spatial_layers

    return [(short_layer(n), n) for n in spatial_layers()]


def ctl(state: Any, name: str, i: int = 0) -> dict[str, Any]:
    """``id_`` and ``value`` of the ``i``-th control of the view-state field ``name`` for a first
    view ``state``, both from the table (``mazewb.app.state.FIELDS``): ``w.num(**w.ctl(s, "seed"))``."""
    from mazewb.app.state import BY_NAME, get_field

    f = BY_NAME[name]
    return {"id_": f.controls[i], "value": f.kind.to_controls(get_field(state, name))[i]}


def num(id_: str, value: Any, step: float = 1, min_: float | None = None, max_: float | None = None,
        cls: str = "", debounce: bool = True) -> dcc.Input:  # fmt: skip
    kw: dict[str, Any] = {} if min_ is None else {"min": min_}
    if max_ is not None:
        kw["max"] = max_
    return dcc.Input(id=id_, type="number", value=value, step=step, debounce=debounce, className=cls, **kw)


def text(id_: str, value: str, placeholder: str = "", cls: str = "") -> dcc.Input:
    return dcc.Input(id=id_, type="text", value=value, placeholder=placeholder, debounce=True, className=cls)


def field(label: str, control: Any, hint: str | None = None, cls: str = "") -> html.Div:
    children = [html.Span(label, className="lbl"), control]
    if hint:
        children.append(html.Span(hint, className="hint"))
    return html.Div(children, className=("field " + cls).strip())


def options(pairs: Sequence[tuple[str, Any]]) -> list[dict]:
    return [{"label": label, "value": value} for label, value in pairs]


def pills(id_: str, choices: Sequence[tuple[str, Any]], value: Any) -> dcc.RadioItems:
    """One choice out of a few (``(label, value)`` pairs), shown as a row of pills."""
    return dcc.RadioItems(id=id_, options=options(choices), value=value, className="radio-pills", inline=True)


def select(id_: str, choices: Sequence[tuple[str, Any]], value: Any, width: int) -> dcc.Dropdown:
    """One choice out of many, as a menu ``width`` pixels wide that cannot be cleared."""
    return dcc.Dropdown(id=id_, options=options(choices), value=value, clearable=False, style={"width": f"{width}px"})


def graph(id_: str, height: int, placeholder: str = "computing…") -> dcc.Graph:
    return dcc.Graph(
        id=id_, config=GRAPH_CONFIG, style={"minHeight": f"{height}px"}, figure=message_figure(placeholder, height)
    )


def key_store(view: str) -> dcc.Store:
    """The store of a lazy view (``mazewb.app.panel.lazy_view``) named ``view``."""
    from mazewb.app import ids

    return dcc.Store(id=ids.key_store(view))


def message(id_: str) -> html.Div:
    return html.Div(id=id_, className="msg")
