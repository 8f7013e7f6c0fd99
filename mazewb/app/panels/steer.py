"""The Steer & patch tab: add the cheese / top-right vectors, retarget, ablate or resample
channels, and see the vector field and the exact outcomes before and after."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dash import Dash, Output, html

from mazewb import analysis as an
from mazewb import plots
from mazewb.analysis.spec import SteerSpec, effective_spec
from mazewb.app import ids
from mazewb.app import widgets as w
from mazewb.app.figures import message_figure
from mazewb.app.panel import Event, PageConfig, Panel, lazy_view
from mazewb.app.present import decision_p_cheese, describe, outcomes_table, present
from mazewb.app.state import FIELDS as STATE_FIELDS
from mazewb.app.state import MAZE_FIELDS, ViewState
from mazewb.maze.graph import decision_square

PRESET_CHEESE, PRESET_TOP_RIGHT, STEER_CLEAR, RT_CLEAR = "preset-cheese", "preset-top-right", "steer-clear", "rt-clear"
RT_INFO, OUTCOMES = "rt-square-info", "steer-outcomes"
ORIGINAL, PATCHED, DIFF = "steer-original", "steer-patched", "steer-diff"
STEER_FIELDS = tuple(f.name for f in STATE_FIELDS if f.name.startswith("steer."))
FIELDS = (*MAZE_FIELDS, *STEER_FIELDS, "arrows", "overlays")


def _steer(s: ViewState, **changes: Any) -> ViewState:
    return replace(s, steer=replace(s.steer, **changes))


EVENTS = (
    Event(PRESET_CHEESE, "n_clicks", lambda s, v, c: replace(_steer(s, cheese_coeff=-1.0), tab="steer")),
    Event(PRESET_TOP_RIGHT, "n_clicks", lambda s, v, c: replace(_steer(s, top_right_coeff=1.0), tab="steer")),
    Event(STEER_CLEAR, "n_clicks", lambda s, v, c: replace(s, steer=SteerSpec(layer=s.steer.layer))),
    Event(RT_CLEAR, "n_clicks", lambda s, v, c: _steer(s, retarget_square=None)),
)


def layout(s: ViewState, config: PageConfig) -> html.Div:  # noqa: ARG001
    src = "seed, or blank for this maze"
    return html.Div(
        [
            html.Div(
                [
                    w.field("Layer", w.select(**w.ctl(s, "steer.layer"), choices=w.layer_options(), width=300)),
                    html.Button("Cheese vector −1", id=PRESET_CHEESE),
                    html.Button("Top-right vector +1", id=PRESET_TOP_RIGHT),
                    html.Button("Clear all", id=STEER_CLEAR, className="danger"),
                ],
                className="row",
            ),
            html.Div(
                [
                    w.field("Cheese vector coeff", w.num(**w.ctl(s, "steer.cheese_coeff"), step=0.1)),
                    w.field(
                        "from",
                        w.text(**w.ctl(s, "steer.cheese_source"), placeholder="this maze"),
                        src,
                        cls="src",
                    ),  # fmt: skip
                    w.field("Top-right vector coeff", w.num(**w.ctl(s, "steer.top_right_coeff"), step=0.1)),
                    w.field(
                        "from",
                        w.text(**w.ctl(s, "steer.top_right_source"), placeholder="this maze"),
                        src,
                        cls="src",
                    ),  # fmt: skip
                ],
                className="row",
            ),
            html.Div(
                [
                    w.field(
                        "Retarget channels",
                        w.text(**w.ctl(s, "steer.retarget_channels"), placeholder="e.g. 55"),
                        "e.g. 8,55,77",
                    ),
                    w.field("value", w.num(**w.ctl(s, "steer.retarget_value"), step=0.1)),
                    html.Span(id=RT_INFO, className="hint"),
                    html.Button("Clear target", id=RT_CLEAR),
                ],
                className="row",
            ),
            html.Div(
                [
                    w.field("Ablate channels", w.text(**w.ctl(s, "steer.ablate_channels"), placeholder="e.g. 55")),
                    w.field(
                        "mode", w.pills(**w.ctl(s, "steer.ablate_mode"), choices=[("zero", "zero"), ("mean", "mean")])
                    ),
                    w.field(
                        "Resample channels",
                        w.text(**w.ctl(s, "steer.resample_channels"), placeholder="e.g. 7,8"),
                    ),
                    w.field("from seed", w.num(**w.ctl(s, "steer.resample_source"), min_=0)),
                ],
                className="row",
            ),
            w.message(ids.message("steer")),
            w.key_store("steer"),
            html.Div(
                [
                    html.Div([html.H3("Outcomes before and after"), html.Div(id=OUTCOMES)], className="steer-table"),
                ],
                className="figs",
            ),
            html.Div(
                [
                    html.Div([html.Div("Original", className="lbl"), w.graph(ORIGINAL, 400)], className="fig3"),
                    html.Div([html.Div("Patched", className="lbl"), w.graph(PATCHED, 400)], className="fig3"),
                    html.Div([html.Div("Patched − original", className="lbl"), w.graph(DIFF, 400)], className="fig3"),
                ],
                className="figs",
            ),
        ],
        className="tab-content",
    )


def steer_view(wb: Any, lp: Any, s: ViewState) -> tuple:
    """The Steer tab for one state: three figures, the outcome table, the target line, the message."""
    maze = s.maze()
    spec = s.steer
    target = spec.retarget_square if spec.retarget_square is not None and maze.in_bounds(spec.retarget_square) else None
    rt_info = f"target square {target}" if target else "no target: pick 'set retarget square' and click the maze"
    region = lp.region if "region" in s.overlays else None
    original, patched, notes = wb.patched(lp, maze, spec)
    of = original.field
    h = 400
    fig_o = present(plots.vector_field_figure(of, s.arrows, target=target, region=region), h, legend=False)
    if patched is None:
        text = "No intervention is active: set a coefficient or channels above (or use a preset)."
        empty = message_figure("no intervention", h)
        return (
            fig_o,
            empty,
            empty,
            outcomes_table({"original": original.outcomes}),
            rt_info,
            " ".join(notes) or text,
            "msg info",
        )
    pf = patched.field
    diff = an.vector_field_diff(pf, of)
    fig_p = present(plots.vector_field_figure(pf, s.arrows, target=target, region=region), h, legend=False)
    fig_d = present(plots.vector_field_diff_figure(diff, title=" ", target=target, region=region), h, legend=False)
    fig_d.update_traces(
        colorbar=dict(
            orientation="h", thickness=10, len=0.8, y=-0.02, yanchor="top", title=dict(text="change (TV)", side="top")
        ),
        selector=dict(type="heatmap"),
    )
    fig_d.update_layout(margin=dict(b=70))
    eff = effective_spec(spec)
    extra = {}
    if eff.retarget_square is not None and maze.is_open(eff.retarget_square):
        sq = eff.retarget_square
        extra[f"P(reach the target {sq})"] = [an.p_reach_target(of, sq), an.p_reach_target(pf, sq)]
    parts = [f"Mean change per square (total variation): {diff.mean_tv:.3f}."]
    ds = decision_square(maze)
    if ds is not None and maze.cheese is not None:
        parts.append(
            f"At the decision square {ds}: P(towards cheese) {decision_p_cheese(of, ds):.2f} → "
            f"{decision_p_cheese(pf, ds):.2f}."
        )
    parts.append("Active: " + describe(eff) + ".")
    table = outcomes_table({"original": original.outcomes, "patched": patched.outcomes}, extra)
    return fig_o, fig_p, fig_d, table, rt_info, " ".join(notes + parts), "msg info"


def register(app: Dash, wb: Any) -> None:
    lazy_view(
        app,
        wb,
        "steer",
        PANEL,
        [
            Output(ORIGINAL, "figure"),
            Output(PATCHED, "figure"),
            Output(DIFF, "figure"),
            Output(OUTCOMES, "children"),
            Output(RT_INFO, "children"),
        ],
        lambda lp, s: steer_view(wb, lp, s),
    )


def prefetch(wb: Any, s: ViewState) -> None:
    wb.prefetch(s.checkpoint, s.maze(), s.steer)


PANEL = Panel(
    name="steer",
    label="Steer & patch",
    layout=layout,
    fields=FIELDS,
    events=EVENTS,
    register=register,
    prefetch=prefetch,
)
