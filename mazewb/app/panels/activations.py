"""The Activations tab: one channel over the agent's view, every channel of a layer (click one),
integrated-gradients attribution at a square where the choice matters, and a background job
ranking the layer's channels by how well they track the cheese."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dash import Dash, Input, Output, State, html, no_update

from mazewb import analysis as an
from mazewb import plots
from mazewb.app import ids
from mazewb.app import widgets as w
from mazewb.app.figures import activation_overlay_figure
from mazewb.app.guard import guarded
from mazewb.app.jobs import JobContext, JobExecutor
from mazewb.app.jobview import job_callbacks, job_layout
from mazewb.app.panel import Event, EventContext, PageConfig, Panel, click_custom, lazy_view
from mazewb.app.present import channel_grid, present
from mazewb.app.state import MAZE_FIELDS, Choice, Int, ViewState, from_slice
from mazewb.errors import StateError
from mazewb.maze import Maze
from mazewb.maze.graph import decision_square, neighbours, shortest_path
from mazewb.policy import MOVES

ACT_GRAPH, GRID_GRAPH, LAYER_INFO = "act-graph", "act-grid-graph", "layer-info"
ATTR_MOVE, ATTR_BASELINE, ATTR_RUN = "attr-move", "attr-baseline", "attr-run"
ATTR_GRAPH, ATTR_CHANNELS, ATTR_MESSAGE = "attr-graph", "attr-channels-graph", "attr-message"
RANK_N, RANK_GRAPH, RANK_TABLE = "rank-n", "rank-graph", "rank-table"
FIELDS = (*MAZE_FIELDS, "layer", "channel")
RANK_MAZES = Int(4, 500)
ATTR_MOVES = Choice(("auto", *MOVES[:4]))
ATTR_BASELINES = Choice(("no-cheese", "zero"))


def on_grid_click(s: ViewState, data: Any, c: EventContext) -> ViewState:
    """A click on the channel grid selects the channel under the pointer."""
    channel = click_custom(data)
    if channel is None or channel == -1:
        return s
    return replace(s, channel=Int(0, 4095).check(channel, "channel"))


EVENTS = (Event(GRID_GRAPH, "clickData", on_grid_click, reset=True),)


def attribution_square(maze: Maze) -> tuple[tuple[int, int], str]:
    """Where attribution means something by default: the decision square, else the first square
    on the mouse's way (to the cheese, else the top-right) with more than one open move (a
    junction first), else the mouse's square. Returns the square and how it was chosen."""
    ds = decision_square(maze)
    if ds is not None:
        return ds, "the decision square"
    goal = maze.cheese if maze.cheese is not None else maze.top_right
    path = shortest_path(maze, maze.mouse, goal) or [maze.mouse]
    for need in (3, 2):
        for sq in path:
            if sq != goal and len(neighbours(maze, sq)) >= need:
                return sq, "the first square on the way with a choice of moves"
    return maze.mouse, "the mouse's square"


def layout(s: ViewState, config: PageConfig) -> html.Div:  # noqa: ARG001
    return html.Div(
        [
            html.Div(
                [
                    w.field("Layer", w.select(**w.ctl(s, "layer"), choices=w.layer_options(), width=300)),
                    w.field("Channel", w.num(**w.ctl(s, "channel"), min_=0, debounce=False)),
                    html.Span(id=LAYER_INFO, className="hint"),
                ],
                className="row",
            ),
            html.Div(
                [
                    html.Div(w.graph(ACT_GRAPH, 520), className="fig2"),
                    html.Div(w.graph(GRID_GRAPH, 520), className="fig2"),
                ],
                className="figs",
            ),
            w.message(ids.message("act")),
            w.key_store("act"),
            html.Div(
                [
                    html.H3("What in this layer drives the move? (integrated gradients)"),
                    html.Div(
                        [
                            w.field(
                                "Move",
                                w.select(
                                    ATTR_MOVE, [("most likely", "auto")] + [(m, m) for m in MOVES[:4]], "auto", 150
                                ),
                            ),
                            w.field(
                                "Baseline",
                                w.select(
                                    ATTR_BASELINE,
                                    [("same maze, no cheese", "no-cheese"), ("zero activations", "zero")],
                                    "no-cheese",
                                    210,
                                ),
                            ),
                            html.Button("Attribute", id=ATTR_RUN, className="primary"),
                        ],
                        className="row",
                    ),
                    html.Div(id=ATTR_MESSAGE, className="msg"),
                    html.Div(
                        [
                            html.Div(
                                w.graph(ATTR_GRAPH, 460, "press Attribute (at the decision square, layer above)"),
                                className="fig2",
                            ),
                            html.Div(w.graph(ATTR_CHANNELS, 460, ""), className="fig2"),
                        ],
                        className="figs",
                    ),
                ],
                className="section",
            ),
            html.Div(
                [
                    html.H3("Which channels track the cheese?"),
                    *job_layout(
                        "rank",
                        "Rank channels of this layer",
                        controls=[w.field("Mazes", w.num(RANK_N, 64, min_=RANK_MAZES.lo, max_=RANK_MAZES.hi))],
                        results=[
                            w.graph(RANK_GRAPH, 360, "press Rank to score every channel"),
                            html.Div(id=RANK_TABLE),
                        ],
                    ),
                ],
                className="section",
            ),
        ],
        className="tab-content",
    )


def register(app: Dash, wb: Any) -> None:
    def draw(lp: Any, s: ViewState) -> tuple:
        maze = s.maze()
        maps = wb.channel_maps(lp, maze, s.layer)
        if not 0 <= s.channel < maps.shape[0]:
            raise StateError(f"channel must be between 0 and {maps.shape[0] - 1} in {s.layer}")
        short = w.short_layer(s.layer)
        overlay = activation_overlay_figure(
            wb.observation(maze),
            maps[s.channel],
            title=f"{short} · channel {s.channel}, over the agent's view",
            uri=wb.background(maze, "agent"),
        )
        info = f"{maps.shape[0]} channels of {maps.shape[1]}x{maps.shape[2]} cells; mouse on {maze.mouse}"
        return overlay, channel_grid(maps, s.channel), info

    lazy_view(
        app,
        wb,
        "act",
        PANEL,
        [Output(ACT_GRAPH, "figure"), Output(GRID_GRAPH, "figure"), Output(LAYER_INFO, "children")],
        draw,
    )

    @app.callback(
        Output(ATTR_GRAPH, "figure"),
        Output(ATTR_CHANNELS, "figure"),
        Output(ATTR_MESSAGE, "children"),
        Output(ATTR_MESSAGE, "className"),
        Input(ATTR_RUN, "n_clicks"),
        Input(ids.slice_store("activations"), "data"),
        Input(ATTR_MOVE, "value"),
        Input(ATTR_BASELINE, "value"),
        Input(ids.TABS, "value"),
        prevent_initial_call=True,
    )
    @guarded(4, 2, 3)
    def attribution(clicks: Any, data: Any, move: Any, baseline: Any, tab: Any) -> tuple:
        # Once asked for, the attribution follows edits of the maze, layer and settings (never stale).
        if not clicks or tab != "activations" or data is None:
            return (no_update,) * 4
        s = from_slice(data, FIELDS)
        move = ATTR_MOVES.check(move, "move")
        baseline = ATTR_BASELINES.check(baseline, "baseline")
        maze = s.maze()
        lp = wb.policy(s.checkpoint)
        square, why = attribution_square(maze)
        result = an.integrated_gradients(lp.policy, maze, s.layer, square, None if move == "auto" else move, baseline)
        short = w.short_layer(result.layer)
        spatial = present(
            plots.attribution_figure(result, maze, title=f"{short} · attribution to P({result.move}) at {square}"), 460
        )
        channels = present(
            plots.attribution_channels_figure(result, top=16, title="channels by total attribution"), 460, maze=False
        )
        text = (
            f"At {why} {square}: P({result.move}) {result.baseline_prob:.3f} at the baseline -> {result.prob:.3f}; "
            f"the attributions sum to the difference (completeness gap {result.delta:+.1e}). "
            "Red raises the move's probability, blue lowers it."
        )
        return spatial, channels, text, "msg"

    def start_rank(data: Any, n: Any) -> Any:
        s = from_slice(data, FIELDS)
        lp = wb.policy(s.checkpoint)
        n = RANK_MAZES.check(n, "number of mazes for ranking")
        layer = s.layer

        def job(ctx: JobContext) -> Any:
            ex = JobExecutor(ctx, "ranking channels over mazes (chunks)")
            table = an.rank_cheese_channels(lp.policy, layer, range(n), executor=ex, seeds_per_chunk=16)
            return layer, table

        return job

    def show_rank(result: Any) -> tuple:
        layer, table = result
        top = table.head(12)
        rows = [
            html.Tr(
                [
                    html.Th("channel"),
                    html.Th("correlation with the cheese cell"),
                    html.Th("peak near cheese"),
                    html.Th("contrast"),
                ]
            )
        ]
        rows += [
            html.Tr(
                [
                    html.Td(int(r.channel)),
                    html.Td(f"{r.corr:.3f}"),
                    html.Td(f"{r.argmax_hit:.0%}"),
                    html.Td(f"{r.contrast:+.3f}"),
                ]
            )
            for r in top.itertuples()
        ]
        best = ", ".join(str(int(c)) for c in top["channel"].head(5))
        fig = present(plots.channel_ranking_figure(table, top=16), 360, maze=False)
        fig.update_layout(legend=dict(orientation="h", y=-0.25, yanchor="top", x=0.5, xanchor="center"))
        fig.update_layout(margin=dict(b=90))
        text = (
            f"Top channels of {w.short_layer(layer)} over {int(table['n_mazes'].iloc[0])} mazes: "
            f"{best}. Use them on the Steer & patch tab."
        )
        return fig, html.Div([html.P(text), html.Table(rows, className="outcomes")])

    job_callbacks(
        app,
        wb,
        "rank",
        start_rank,
        [State(ids.slice_store("activations"), "data"), State(RANK_N, "value")],
        show_rank,
        [Output(RANK_GRAPH, "figure"), Output(RANK_TABLE, "children")],
        max_seconds=600,
    )


PANEL = Panel(name="activations", label="Activations", layout=layout, fields=FIELDS, events=EVENTS, register=register)
