"""The page: the top bar, the maze panel on the left, the other panels as tabs on the right, and
the stores. Built from the panel registry (``mazewb.app.panels.PANELS``); layout as data only."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module

from dash import dcc, html

from mazewb.app import ids
from mazewb.app.panel import PageConfig, Panel
from mazewb.app.panels import PANELS
from mazewb.app.state import ViewState


def load_panels(names: Sequence[str] = PANELS) -> list[Panel]:
    """The ``PANEL`` of each registered panel module, in page order."""
    panels = []
    for name in names:
        panel = import_module(f"mazewb.app.panels.{name}").PANEL
        if panel.name != name:
            raise ValueError(f"mazewb/app/panels/{name}.py defines a panel named {panel.name!r}")
        panels.append(panel)
    return panels


def topbar() -> html.Div:
    return html.Div(
        [
            html.H1("mazewb"),
            html.Span("look inside a maze-solving policy", className="tagline"),
            html.Div(className="spacer"),
            html.Span(id=ids.MODEL_BADGE, className="badge"),
            html.Span(id=ids.REGION_BADGE, className="badge region"),
            html.Span(id=ids.DEVICE_BADGE, className="badge"),
            html.Div(
                [
                    dcc.Clipboard(
                        id="share-copy",
                        target_id=ids.SHARE_URL,
                        title="copy a link to this view",
                        style={"color": "#fff", "fontSize": "18px", "cursor": "pointer"},
                    ),
                    html.Span("share link", className="tagline"),
                    html.Span(id=ids.SHARE_URL, style={"display": "none"}),
                ],
                className="share",
            ),
            html.Div(
                [
                    html.Span("Export figures:", className="tagline"),
                    html.Button("PNG", id=ids.EXPORT_PNG),
                    html.Button("SVG", id=ids.EXPORT_SVG),
                ],
                className="share",
            ),
        ],
        className="topbar",
    )


def page(panels: Sequence[Panel], s: ViewState | None = None, config: PageConfig | None = None) -> html.Div:
    """The whole page for the first view ``s`` (stores empty: the view-state callback fills them)."""
    s = s or ViewState()
    config = config or PageConfig()
    side, tabs = panels[0], panels[1:]
    stores = [dcc.Store(id=ids.VIEW), dcc.Store(id=ids.TYPED)]
    stores += [dcc.Store(id=ids.slice_store(p.name)) for p in panels if p.fields]
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh=False),
            *stores,
            topbar(),
            html.Div(id=ids.UNTRAINED_BANNER),
            html.Div(id=ids.NOTICE, className="notice"),
            html.Div(
                [
                    side.layout(s, config),
                    html.Div(
                        dcc.Tabs(
                            id=ids.TABS,
                            value=s.tab,
                            children=[dcc.Tab(label=p.label, value=p.name, children=p.layout(s, config)) for p in tabs],
                        ),
                        className="panel work-col",
                    ),
                ],
                className="main",
            ),
            html.Div(id=ids.EXPORT_DUMMY, style={"display": "none"}),
        ]
    )
