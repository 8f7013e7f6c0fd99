"""The Behaviour tab: what the policy does at every square (vector field, heatmap), the exact
outcomes of an episode from the mouse's square, and an episode played in the real game."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, html

from mazewb import analysis as an
from mazewb import plots
from mazewb.app import ids
from mazewb.app import widgets as w
from mazewb.app.figures import message_figure
from mazewb.app.guard import guarded
from mazewb.app.panel import Event, EventContext, Outcome, PageConfig, Panel, click_point, lazy_view
from mazewb.app.panels.maze import click_square
from mazewb.app.present import outcomes_table, per_square, present
from mazewb.app.state import MAZE_FIELDS, ViewState, from_slice
from mazewb.errors import AnalysisError, StateError
from mazewb.maze import Maze

VF_GRAPH, HEAT_GRAPH, OUTCOMES = "vf-graph", "heat-graph", "outcomes-table"
EPISODE_RUN, EPISODE_INFO, EPISODE_GRAPH = "episode-run", "episode-info", "episode-graph"
HEAT_LABELS = {
    "step_cheese": "P(step towards cheese)",
    "step_top_right": "P(step towards top-right)",
    "reach_cheese": "P(reach cheese)",
}
FIELDS = (*MAZE_FIELDS, "overlays", "arrows", "heat", "episode", "episode_seed", "steer.retarget_square")
KEY_FIELDS = (*MAZE_FIELDS, "overlays", "arrows", "heat", "steer.retarget_square")


def square_of_point(data: Any) -> tuple[int, int] | None:
    """The maze square of a click on a square-grid figure (x = column, y = row)."""
    point = click_point(data)
    if point is None:
        return None
    x, y = point
    if not (-1 <= x <= 26 and -1 <= y <= 26):
        raise StateError("the click is outside the maze")
    return round(y), round(x)


def on_grid_click(s: ViewState, data: Any, c: EventContext) -> ViewState | Outcome:
    square = square_of_point(data)
    return s if square is None else click_square(s, c.get(ids.CLICK_MODE), square)


EVENTS = (
    Event(VF_GRAPH, "clickData", on_grid_click, states=((ids.CLICK_MODE, "value"),), reset=True),
    Event(HEAT_GRAPH, "clickData", on_grid_click, states=((ids.CLICK_MODE, "value"),), reset=True),
)


def layout(s: ViewState, config: PageConfig) -> html.Div:  # noqa: ARG001
    return html.Div(
        [
            html.Div(
                [
                    w.field(
                        "Arrows",
                        w.pills(**w.ctl(s, "arrows"), choices=[("net move", "net"), ("one per move", "moves")]),
                    ),
                    w.field(
                        "Heatmap",
                        w.select(
                            **w.ctl(s, "heat"),
                            choices=[
                                ("P(step towards the cheese)", "step_cheese"),
                                ("P(step towards the top-right square)", "step_top_right"),
                                ("P(reach the cheese) from each square (exact)", "reach_cheese"),
                            ],
                            width=380,
                        ),
                    ),
                ],
                className="row",
            ),
            html.Div(
                [
                    html.Div(w.graph(VF_GRAPH, 520), className="fig2"),
                    html.Div(w.graph(HEAT_GRAPH, 520), className="fig2"),
                ],
                className="figs",
            ),
            w.message(ids.message("behaviour")),
            w.key_store("behaviour"),
            html.H3("Exact outcomes from the mouse's square"),
            html.Div(id=OUTCOMES),
            html.Div(
                [
                    html.H3("An episode in the real game"),
                    html.Div(
                        [
                            w.pills(
                                **w.ctl(s, "episode"),
                                choices=[("greedy (most likely action)", "greedy"), ("sampled", "sampled")],
                            ),
                            w.field("Sampling seed", w.num(**w.ctl(s, "episode_seed"), min_=0)),
                            html.Button("Play episode", id=EPISODE_RUN, className="primary"),
                        ],
                        className="row",
                    ),
                    html.Div(id=EPISODE_INFO, className="info-line"),
                    w.graph(EPISODE_GRAPH, 520, "press Play episode"),
                ],
                className="section",
            ),
        ],
        className="tab-content",
    )


def behaviour_view(
    wb: Any, lp: Any, maze: Maze, arrows: str, heat: str, region: int | None = None, target: Any = None
) -> tuple:
    """The behaviour tab for one maze: vector field figure, heatmap figure, outcome table (the
    callback's whole work, also timed by ``mazewb bench-app``). ``region``: outline the training
    cheese region; ``target``: box the retarget square."""
    target = target if target is not None and maze.in_bounds(target) else None
    beh = wb.behaviour(lp, maze)
    field = beh.field
    vf = present(
        plots.vector_field_figure(
            field, arrows, title="What the policy does at each square", region=region, target=target
        ),
        540,
    )
    if heat == "reach_cheese":
        values = wb.reach_cheese(lp, maze)
    elif heat == "step_cheese":
        values = an.step_probabilities(field, maze.cheese)
    else:
        values = an.step_probabilities(field, maze.top_right)
    if heat != "step_top_right" and maze.cheese is None:
        hm = message_figure("There is no cheese: click the maze to place one.", 540)
    else:
        hm = present(
            plots.square_heatmap_figure(
                maze,
                per_square(field, values),
                HEAT_LABELS[heat],
                zmin=0.0,
                zmax=1.0,
                label="P",
                region=region,
                target=target,
            ),
            540,
        )
    return vf, hm, outcomes_table({"P": beh.outcomes})


def register(app: Dash, wb: Any) -> None:
    def draw(lp: Any, s: ViewState) -> tuple:
        region = lp.region if "region" in s.overlays else None
        return behaviour_view(wb, lp, s.maze(), s.arrows, s.heat, region, s.steer.retarget_square)

    lazy_view(
        app,
        wb,
        "behaviour",
        PANEL,
        [Output(VF_GRAPH, "figure"), Output(HEAT_GRAPH, "figure"), Output(OUTCOMES, "children")],
        draw,
        key_fields=KEY_FIELDS,
    )

    @app.callback(
        Output(EPISODE_GRAPH, "figure"),
        Output(EPISODE_INFO, "children"),
        Input(EPISODE_RUN, "n_clicks"),
        State(ids.slice_store("behaviour"), "data"),
        prevent_initial_call=True,
    )
    @guarded(2, 1)
    def episode(_: Any, data: Any) -> tuple:
        s = from_slice(data, FIELDS)
        lp = wb.policy(s.checkpoint)
        maze = s.maze()
        if maze.cheese is None:
            raise AnalysisError("place the cheese first: an episode ends when the mouse reaches it")
        if s.episode == "greedy":
            # the most likely move of the (cached) vector field at each square the mouse reaches
            table = wb.behaviour(lp, maze).field.chain_probs()
            traj = an.sample_rollouts(table, maze, 1, seed=s.episode_seed, greedy=True)[0]
            how = "greedy: the most likely move at each square"
        else:
            traj = an.sample_rollouts(lp.policy, maze, 1, seed=s.episode_seed)[0]
            how = f"moves sampled from the policy on the game's observations (seed {s.episode_seed})"
        end = "reached the cheese" if traj.reached_cheese else "did not reach the cheese (timed out)"
        region = lp.region if "region" in s.overlays else None
        fig = plots.trajectory_figure(maze, [traj], title=f"{traj.steps} steps: {end}", animate=True, region=region)
        fig = present(fig, 600)
        fig.update_layout(margin=dict(b=120), showlegend=False)
        return fig, f"Played in procgen's own game, {how}. The mouse {end} after {traj.steps} steps."


def prefetch(wb: Any, s: ViewState) -> None:
    wb.prefetch(s.checkpoint, s.maze())


PANEL = Panel(
    name="behaviour",
    label="Behaviour",
    layout=layout,
    fields=FIELDS,
    events=EVENTS,
    register=register,
    prefetch=prefetch,
)
