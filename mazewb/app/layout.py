"""The page: the maze panel on the left, tabs of views on the right. Layout as data only.

Every control that is part of the shareable view has an id listed in ``CONTROLS`` with the
``ViewState`` field it mirrors; ``mazewb.app.callbacks`` keeps them, the view state and the URL
in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import dcc, html

from mazewb.app.figures import message_figure
from mazewb.app.state import ViewState
from mazewb.policy import HOOK_NAMES, MOVES
from mazewb.policy.impala import ImpalaPolicy

GRAPH_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
}


def spatial_layers() -> list[str]:
    """Hook points with a (C, H, W) map (the same names at every scale), input excluded."""
    shapes = ImpalaPolicy(scale=1).hook_points()
    return [n for n in HOOK_NAMES if len(shapes[n]) == 3 and n != "embedder.block1.conv_in0"]


def _short(layer: str) -> str:
    return layer.replace("embedder.", "")


def _layer_options() -> list[tuple[str, str]]:
    return [(_short(n), n) for n in spatial_layers()]


def _num(id_: str, value, step=1, min_=None, max_=None, cls: str = "", debounce: bool = True):  # noqa: ANN001, ANN202
    kw = {} if min_ is None else {"min": min_}
    if max_ is not None:
        kw["max"] = max_
    return dcc.Input(id=id_, type="number", value=value, step=step, debounce=debounce, className=cls, **kw)


def _text(id_: str, value: str, placeholder: str = "", cls: str = "") -> dcc.Input:
    return dcc.Input(id=id_, type="text", value=value, placeholder=placeholder, debounce=True, className=cls)


def _field(label: str, control, hint: str | None = None) -> html.Div:  # noqa: ANN001
    children = [html.Span(label, className="lbl"), control]
    if hint:
        children.append(html.Span(hint, className="hint"))
    return html.Div(children, className="field")


def _options(pairs: Sequence[tuple[str, Any]]) -> list[dict]:
    return [{"label": label, "value": value} for label, value in pairs]


def _pills(id_: str, options: Sequence[tuple[str, Any]], value: Any) -> dcc.RadioItems:
    """One choice out of a few (``(label, value)`` pairs), shown as a row of pills."""
    return dcc.RadioItems(id=id_, options=_options(options), value=value, className="radio-pills", inline=True)


def _select(id_: str, options: Sequence[tuple[str, Any]], value: Any, width: int) -> dcc.Dropdown:
    """One choice out of many (``(label, value)`` pairs), as a menu ``width`` pixels wide that
    cannot be cleared."""
    return dcc.Dropdown(id=id_, options=_options(options), value=value, clearable=False, style={"width": f"{width}px"})


def _graph(id_: str, height: int, placeholder: str = "computing…") -> dcc.Graph:
    return dcc.Graph(
        id=id_, config=GRAPH_CONFIG, style={"minHeight": f"{height}px"}, figure=message_figure(placeholder, height)
    )


def maze_panel(s: ViewState) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    _field("Level seed", _num("seed", s.seed, min_=0)),
                    html.Button("◀ prev", id="seed-prev", title="previous seed (of the chosen size)"),
                    html.Button("next ▶", id="seed-next", title="next seed (of the chosen size)"),
                    html.Button("random", id="seed-random"),
                    _field(
                        "Size",
                        _select("size", [("any", "any")] + [(f"{n}x{n}", n) for n in range(3, 26, 2)], "any", 100),
                    ),
                ],
                className="row",
            ),
            html.Div(
                [
                    html.Span("Click to", className="lbl"),
                    _pills(
                        "click-mode",
                        [
                            ("move cheese", "cheese"),
                            ("move mouse", "mouse"),
                            ("toggle wall", "wall"),
                            ("set retarget square", "target"),
                        ],
                        "cheese",
                    ),
                ],
                className="row",
            ),
            _graph("maze-graph", 552),
            html.Div(id="maze-key", className="key"),
            html.Div(id="maze-info", className="info-line"),
            html.Div(
                [
                    _pills(
                        "view",
                        [("game frame (512x512)", "frame"), ("agent's view (64x64)", "agent")],
                        s.view,
                    ),
                    dcc.Checklist(
                        id="overlays",
                        options=[
                            {"label": "paths", "value": "paths"},
                            {"label": "decision square", "value": "decision"},
                        ],
                        value=list(s.overlays),
                        className="radio-pills",
                        inline=True,
                    ),
                ],
                className="row",
            ),
            html.Div(
                [
                    html.Button("Remove cheese", id="remove-cheese"),
                    html.Button("Undo all edits", id="reset-edits"),
                    html.Button("Export maze JSON", id="export-maze"),
                    dcc.Download(id="download-maze"),
                ],
                className="row",
            ),
            dcc.Upload(
                id="import-maze",
                children=html.Div(["Import a maze: drop a maze JSON file here or ", html.B("choose one")]),
                className="upload",
                max_size=200_000,
                multiple=False,
            ),
            html.Div(id="maze-message", className="msg"),
        ],
        className="panel maze-col",
    )


def behaviour_tab(s: ViewState) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    _field(
                        "Arrows",
                        _pills("arrows", [("net move", "net"), ("one per move", "moves")], s.arrows),
                    ),
                    _field(
                        "Heatmap",
                        _select(
                            "heat",
                            [
                                ("P(step towards the cheese)", "step_cheese"),
                                ("P(step towards the top-right square)", "step_top_right"),
                                ("P(reach the cheese) from each square (exact)", "reach_cheese"),
                            ],
                            s.heat,
                            380,
                        ),
                    ),
                ],
                className="row",
            ),
            html.Div(
                [
                    html.Div(_graph("vf-graph", 520), className="fig2"),
                    html.Div(_graph("heat-graph", 520), className="fig2"),
                ],
                className="figs",
            ),
            html.Div(id="behaviour-message", className="msg"),
            html.H3("Exact outcomes from the mouse's square"),
            html.Div(id="outcomes-table"),
            html.Div(
                [
                    html.H3("An episode in the real game"),
                    html.Div(
                        [
                            _pills(
                                "episode-mode",
                                [("greedy (most likely action)", "greedy"), ("sampled", "sampled")],
                                s.episode,
                            ),
                            _field("Sampling seed", _num("episode-seed", s.episode_seed, min_=0)),
                            html.Button("Play episode", id="episode-run", className="primary"),
                        ],
                        className="row",
                    ),
                    html.Div(id="episode-info", className="info-line"),
                    _graph("episode-graph", 520, "press Play episode"),
                ],
                className="section",
            ),
        ],
        className="tab-content",
    )


def activations_tab(s: ViewState) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    _field(
                        "Layer",
                        _select("layer", _layer_options(), s.layer, 300),
                    ),
                    _field("Channel", _num("channel", s.channel, min_=0, debounce=False)),
                    html.Span(id="layer-info", className="hint"),
                ],
                className="row",
            ),
            html.Div(
                [
                    html.Div(_graph("act-graph", 520), className="fig2"),
                    html.Div(_graph("act-grid-graph", 520), className="fig2"),
                ],
                className="figs",
            ),
            html.Div(id="act-message", className="msg"),
            html.Div(
                [
                    html.H3("What in this layer drives the move? (integrated gradients)"),
                    html.Div(
                        [
                            _field(
                                "Move",
                                _select(
                                    "attr-move", [("most likely", "auto")] + [(m, m) for m in MOVES[:4]], "auto", 150
                                ),
                            ),
                            _field(
                                "Baseline",
                                _select(
                                    "attr-baseline",
                                    [("same maze, no cheese", "no-cheese"), ("zero activations", "zero")],
                                    "no-cheese",
                                    210,
                                ),
                            ),
                            html.Button("Attribute", id="attr-run", className="primary"),
                        ],
                        className="row",
                    ),
                    html.Div(id="attr-message", className="msg"),
                    html.Div(
                        [
                            html.Div(
                                _graph("attr-graph", 460, "press Attribute (mouse square, layer above)"),
                                className="fig2",
                            ),
                            html.Div(_graph("attr-channels-graph", 460, ""), className="fig2"),
                        ],
                        className="figs",
                    ),
                ],
                className="section",
            ),
            html.Div(
                [
                    html.H3("Which channels track the cheese?"),
                    html.Div(
                        [
                            _field("Mazes", _num("rank-n", 64, min_=4, max_=2000)),
                            html.Button("Rank channels of this layer", id="rank-run", className="primary"),
                        ],
                        className="row",
                    ),
                    html.Div(
                        html.Div(id="rank-bar", className="progress-inner", style={"width": "0%"}),
                        className="progress-outer",
                    ),
                    html.Div(id="rank-status", className="hint"),
                    html.Div(id="rank-message", className="msg"),
                    _graph("rank-graph", 360, "press Rank to score every channel"),
                    html.Div(id="rank-table"),
                    dcc.Store(id="rank-job"),
                    dcc.Interval(id="rank-poll", interval=700, disabled=True),
                ],
                className="section",
            ),
        ],
        className="tab-content",
    )


def steer_tab(s: ViewState) -> html.Div:
    sp = s.steer
    src_hint = "blank: this maze"
    return html.Div(
        [
            html.Div(
                [
                    _field(
                        "Layer",
                        _select("steer-layer", _layer_options(), sp.layer, 300),
                    ),
                    html.Button("Cheese vector −1", id="preset-cheese"),
                    html.Button("Top-right vector +1", id="preset-top-right"),
                    html.Button("Clear all", id="steer-clear", className="danger"),
                ],
                className="row",
            ),
            html.Div(
                [
                    _field("Cheese vector coeff", _num("cv-coeff", sp.cheese_coeff, step=0.1)),
                    _field(
                        "from seed",
                        _text("cv-source", "" if sp.cheese_source is None else str(sp.cheese_source), src_hint),
                    ),
                    _field("Top-right vector coeff", _num("tv-coeff", sp.top_right_coeff, step=0.1)),
                    _field(
                        "from seed",
                        _text("tv-source", "" if sp.top_right_source is None else str(sp.top_right_source), src_hint),
                    ),
                ],
                className="row",
            ),
            html.Div(
                [
                    _field(
                        "Retarget channels",
                        _text("rt-channels", ",".join(map(str, sp.retarget_channels)), "e.g. 55 or 8,55,77"),
                    ),
                    _field("value", _num("rt-value", sp.retarget_value, step=0.1)),
                    html.Span(id="rt-square-info", className="hint"),
                    html.Button("Clear target", id="rt-clear"),
                ],
                className="row",
            ),
            html.Div(
                [
                    _field("Ablate channels", _text("ab-channels", ",".join(map(str, sp.ablate_channels)), "e.g. 55")),
                    _field(
                        "mode",
                        _pills("ab-mode", [("zero", "zero"), ("mean", "mean")], sp.ablate_mode),
                    ),
                    _field(
                        "Resample channels",
                        _text("rs-channels", ",".join(map(str, sp.resample_channels)), "e.g. 7,8,42"),
                    ),
                    _field("from seed", _num("rs-source", sp.resample_source, min_=0)),
                ],
                className="row",
            ),
            html.Div(id="steer-message", className="msg"),
            html.Div(
                [
                    html.Div([html.Div("Original", className="lbl"), _graph("steer-original", 420)], className="fig3"),
                    html.Div([html.Div("Patched", className="lbl"), _graph("steer-patched", 420)], className="fig3"),
                    html.Div(
                        [html.Div("Patched − original", className="lbl"), _graph("steer-diff", 420)], className="fig3"
                    ),
                ],
                className="figs",
            ),
            html.H3("Outcomes before and after"),
            html.Div(id="steer-outcomes"),
        ],
        className="tab-content",
    )


def shards_tab(s: ViewState) -> html.Div:
    return html.Div(
        [
            html.P(
                "How the shards combine: the cheese vector and the top-right vector added together with a grid of "
                "coefficients, and what the policy then does at this maze's decision square.",
                className="hint",
            ),
            html.Div(
                [
                    _field("Cheese coeff from", _num("gc-lo", s.grid_cheese[0], step=0.5)),
                    _field("to", _num("gc-hi", s.grid_cheese[1], step=0.5)),
                    _field("Top-right coeff from", _num("gt-lo", s.grid_top_right[0], step=0.5)),
                    _field("to", _num("gt-hi", s.grid_top_right[1], step=0.5)),
                    _field("Steps", _num("gn", s.grid_steps, min_=2, max_=11)),
                    dcc.Checklist(
                        id="shards-outcomes",
                        options=[{"label": "exact outcomes too (a vector field per cell: slower)", "value": "yes"}],
                        value=[],
                        className="radio-pills",
                    ),
                    html.Button("Compute grid", id="shards-run", className="primary"),
                ],
                className="row",
            ),
            html.Div(
                html.Div(id="shards-bar", className="progress-inner", style={"width": "0%"}), className="progress-outer"
            ),
            html.Div(id="shards-status", className="hint"),
            html.Div(id="shards-message", className="msg"),
            _graph("shards-graph", 460, "press Compute grid"),
            dcc.Store(id="shards-job"),
            dcc.Interval(id="shards-poll", interval=600, disabled=True),
        ],
        className="tab-content",
    )


def stats_tab(s: ViewState) -> html.Div:
    return html.Div(
        [
            html.P(
                "Behavioural statistics over many random mazes with a decision square: which maze features predict "
                "that the policy steps towards the cheese there? Runs in the background; you can keep working.",
                className="hint",
            ),
            html.Div(
                [
                    _field("Mazes", _num("stats-n", s.stats_mazes, min_=10, max_=100_000)),
                    _field("First seed", _num("stats-start", s.stats_start, min_=0)),
                    html.Button("Run statistics", id="stats-run", className="primary"),
                    html.Button("Cancel", id="stats-cancel", className="danger"),
                    html.Button("Download CSV", id="stats-download-btn"),
                    dcc.Download(id="stats-download"),
                ],
                className="row",
            ),
            html.Div(
                html.Div(id="stats-bar", className="progress-inner", style={"width": "0%"}), className="progress-outer"
            ),
            html.Div(id="stats-status", className="hint"),
            html.Div(id="stats-message", className="msg"),
            html.Div(id="stats-table"),
            html.Div(
                [_graph("stats-graph", 460, "run the statistics"), _graph("stats-graph2", 420, " ")],
            ),
            dcc.Store(id="stats-job"),
            dcc.Interval(id="stats-poll", interval=700, disabled=True),
        ],
        className="tab-content",
    )


def model_tab(s: ViewState, path_loading: bool = True) -> html.Div:
    paths_off = (
        []
        if path_loading
        else [
            html.P(
                "Loading a file by its path on the server is switched off: this server can be reached from "
                "other machines (the operator can allow it with 'mazewb serve --allow-path-loading'). "
                "Upload the checkpoint instead.",
                id="ckpt-path-off",
                className="hint",
            )
        ]
    )
    return html.Div(
        [
            html.H3("Loaded checkpoint"),
            html.Div(id="model-card"),
            html.Div(
                [
                    html.H3("Load another checkpoint"),
                    html.Div(
                        [
                            _field("File on the server", _text("ckpt-path", "", "/path/to/model.pt", cls="wide")),
                            html.Button("Load", id="ckpt-load", className="primary"),
                            html.Button("Back to the bundled agent", id="ckpt-default"),
                        ],
                        className="row",
                    ),
                    *paths_off,
                    dcc.Upload(
                        id="ckpt-upload",
                        children=html.Div(
                            [
                                "Or upload a checkpoint (.pt / .pth, up to 64 MB): drop it here or ",
                                html.B("choose a file"),
                            ]
                        ),
                        className="upload",
                        max_size=64 * 2**20,
                        multiple=False,
                    ),
                    html.P(
                        "Files are read with torch's weights-only loader: tensors and plain data, never arbitrary "
                        "pickled code. Langosco et al.'s .pth files and mazewb checkpoints are accepted.",
                        className="hint",
                    ),
                ],
                className="section",
            ),
            html.Div(id="model-message", className="msg"),
        ],
        className="tab-content",
    )


def page(s: ViewState | None = None, path_loading: bool = True) -> html.Div:
    """The whole page for the initial view ``s``; ``path_loading``: the server accepts
    checkpoints by server path (otherwise the Model tab says it does not)."""
    s = s or ViewState()
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="st-view"),
            dcc.Store(id="st-maze"),
            dcc.Store(id="st-ckpt"),
            dcc.Store(id="st-display"),
            dcc.Store(id="st-behaviour"),
            dcc.Store(id="st-act"),
            dcc.Store(id="st-steer"),
            dcc.Store(id="st-shards"),
            dcc.Store(id="key-behaviour"),
            dcc.Store(id="key-act"),
            dcc.Store(id="key-steer"),
            html.Div(
                [
                    html.H1("mazewb"),
                    html.Span("look inside a maze-solving policy", className="tagline"),
                    html.Div(className="spacer"),
                    html.Span(id="model-badge", className="badge"),
                    html.Span(id="device-badge", className="badge"),
                    html.Div(
                        [
                            dcc.Clipboard(
                                id="share-copy",
                                target_id="share-url",
                                title="copy a link to this view",
                                style={"color": "#fff", "fontSize": "18px", "cursor": "pointer"},
                            ),
                            html.Span("share link", className="tagline"),
                            html.Span(id="share-url", style={"display": "none"}),
                        ],
                        className="share",
                    ),
                    html.Div(
                        [
                            html.Span("Export figures:", className="tagline"),
                            html.Button("PNG", id="export-png"),
                            html.Button("SVG", id="export-svg"),
                        ],
                        className="share",
                    ),
                ],
                className="topbar",
            ),
            html.Div(id="untrained-banner"),
            html.Div(id="notice", className="notice"),
            html.Div(
                [
                    maze_panel(s),
                    html.Div(
                        dcc.Tabs(
                            id="tabs",
                            value=s.tab,
                            children=[
                                dcc.Tab(label="Behaviour", value="behaviour", children=behaviour_tab(s)),
                                dcc.Tab(label="Activations", value="activations", children=activations_tab(s)),
                                dcc.Tab(label="Steer & patch", value="steer", children=steer_tab(s)),
                                dcc.Tab(label="Shards", value="shards", children=shards_tab(s)),
                                dcc.Tab(label="Statistics", value="stats", children=stats_tab(s)),
                                dcc.Tab(label="Model", value="model", children=model_tab(s, path_loading)),
                            ],
                        ),
                        className="panel work-col",
                    ),
                ],
                className="main",
            ),
            html.Div(id="export-dummy", style={"display": "none"}),
        ]
    )
