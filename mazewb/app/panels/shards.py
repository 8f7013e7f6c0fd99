"""The Shards tab: the cheese vector and the top-right vector added together over a grid of
coefficients, and what the policy then does at this maze's decision square (a background job)."""

from __future__ import annotations

from typing import Any

import numpy as np
from dash import Dash, Output, State, dcc, html

from mazewb import analysis as an
from mazewb import plots
from mazewb.app import ids
from mazewb.app import widgets as w
from mazewb.app.figures import message_figure
from mazewb.app.jobs import JobContext
from mazewb.app.jobview import job_callbacks, job_layout
from mazewb.app.panel import PageConfig, Panel
from mazewb.app.present import present
from mazewb.app.state import MAX_GRID_STEPS, MAZE_FIELDS, ViewState, from_slice
from mazewb.errors import AnalysisError, StateError
from mazewb.maze.graph import decision_square

GRAPH, WITH_OUTCOMES = "shards-graph", "shards-outcomes"
FIELDS = (*MAZE_FIELDS, "grid_cheese", "grid_top_right", "grid_steps", "steer.layer")


def layout(s: ViewState, config: PageConfig) -> html.Div:  # noqa: ARG001
    controls = [
        w.field("Cheese coeff from", w.num(**w.ctl(s, "grid_cheese", 0), step=0.5)),
        w.field("to", w.num(**w.ctl(s, "grid_cheese", 1), step=0.5)),
        w.field("Top-right coeff from", w.num(**w.ctl(s, "grid_top_right", 0), step=0.5)),
        w.field("to", w.num(**w.ctl(s, "grid_top_right", 1), step=0.5)),
        w.field("Steps", w.num(**w.ctl(s, "grid_steps"), min_=2, max_=MAX_GRID_STEPS)),
        dcc.Checklist(
            id=WITH_OUTCOMES,
            options=[{"label": "exact outcomes too (a vector field per cell: slower)", "value": "yes"}],
            value=[],
            className="radio-pills",
        ),
    ]
    return html.Div(
        [
            html.P(
                "How the shards combine: the cheese vector and the top-right vector added together with a grid of "
                "coefficients, and what the policy then does at this maze's decision square.",
                className="hint",
            ),
            *job_layout("shards", "Compute grid", controls, [w.graph(GRAPH, 460, "press Compute grid")], poll_ms=600),
        ],
        className="tab-content",
    )


def register(app: Dash, wb: Any) -> None:
    def start(data: Any, with_outcomes: Any) -> Any:
        s = from_slice(data, FIELDS)
        lp = wb.policy(s.checkpoint)
        maze = s.maze()
        if maze.cheese is None:
            raise AnalysisError("place the cheese first: the shards grid steers with this maze's cheese vector")
        if with_outcomes not in (None, [], ["yes"]):
            raise StateError("the 'exact outcomes' box must be ticked or not")
        cheese = np.linspace(*s.grid_cheese, s.grid_steps).round(3).tolist()
        corner = np.linspace(*s.grid_top_right, s.grid_steps).round(3).tolist()
        layer, outcomes = s.steer.layer, bool(with_outcomes)

        def job(ctx: JobContext) -> Any:
            import pandas as pd

            parts = []
            for i, c in enumerate(cheese):
                ctx.progress(i, len(cheese), "cheese coefficients done")
                parts.append(an.steering_sweep(lp.policy, [maze], [c], corner, layer, with_outcomes=outcomes))
            ctx.progress(len(cheese), len(cheese), "cheese coefficients done")
            return maze, pd.concat(parts, ignore_index=True)

        return job

    def show(result: Any) -> tuple:
        maze, table = result
        if decision_square(maze) is None and "p_cheese" not in table:
            return (
                message_figure(
                    "This maze has no decision square (the cheese is on the way to the top-right). "
                    "Tick 'exact outcomes' or move the cheese.",
                    460,
                ),
            )
        height = 800 if "p_cheese" in table else 420
        fig = present(
            plots.steering_grid_figure(table, title="How the shards combine on this maze"), height, maze=False
        )
        fig.update_layout(margin=dict(l=70, r=30, t=70, b=60))
        return (fig,)

    job_callbacks(
        app,
        wb,
        "shards",
        start,
        [State(ids.slice_store("shards"), "data"), State(WITH_OUTCOMES, "value")],
        show,
        [Output(GRAPH, "figure")],
        max_seconds=600,
    )


PANEL = Panel(name="shards", label="Shards", layout=layout, fields=FIELDS, register=register)
