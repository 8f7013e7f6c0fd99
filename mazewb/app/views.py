"""Callbacks of the tabs: behaviour, activations, steering, shards, statistics, channel ranking.

Each reads the small stores written by the view-state callback, asks ``Workbench`` for cached
analysis results and draws them with the figure functions. Tabs compute only while visible
and only when their inputs changed (the key of what they show is kept in a store). Long work
(grids, statistics, ranking) runs as background jobs polled by the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from dash import Dash, Input, Output, State, dcc, html, no_update

from mazewb import analysis as an
from mazewb import plots
from mazewb.app.compute import Workbench, effective
from mazewb.app.figures import FONT, activation_overlay_figure, message_figure, scatter_figure
from mazewb.app.jobs import JobContext
from mazewb.app.state import SteerSpec
from mazewb.maze import Maze
from mazewb.maze.graph import decision_square

OUTCOME_ROWS = (
    ("p_cheese", "P(reach the cheese)"),
    ("p_top_right", "P(top-right square first)"),
    ("p_neither", "P(neither)"),
    ("p_timeout", "P(time out, 500 steps)"),
    ("expected_steps", "expected steps"),
)
HEAT_LABELS = {
    "step_cheese": "P(step towards cheese)",
    "step_top_right": "P(step towards top-right)",
    "reach_cheese": "P(reach cheese)",
}


MARKER_NAMES = {"cheese", "top-right square", "decision square", "mouse"}


def present(fig, height: int, maze: bool = True, legend: bool = True):  # noqa: ANN001, ANN201
    """App styling of a ``mazewb.plots`` figure: size, large type, room for the modebar above
    the picture; for maze figures no axes and a legend of the markers only."""
    fig.update_layout(
        height=height,
        width=None,
        font=FONT,
        title=dict(font=dict(size=17), x=0.5, xanchor="center"),
        margin=dict(l=10, r=10, t=48, b=10),
        paper_bgcolor="white",
        plot_bgcolor="white",
        dragmode=False,
    )
    compact(fig)
    if maze:
        fig.update_xaxes(visible=False, fixedrange=True)
        fig.update_yaxes(visible=False, fixedrange=True)
        fig.update_traces(showlegend=False)
        if legend:
            fig.update_traces(showlegend=True, selector=lambda t: t.name in MARKER_NAMES)
            fig.update_layout(legend=dict(orientation="h", y=-0.02, yanchor="top", x=0.5, xanchor="center"))
            fig.update_layout(margin=dict(b=40))
    return fig


def compact(fig) -> None:  # noqa: ANN001
    """Long line traces (arrows: coordinates with None breaks) as float32 arrays with NaN breaks,
    which plotly sends as base64 typed arrays: about half the bytes of JSON number lists, and the
    same picture (NaN breaks a line like None)."""
    for trace in fig.data:
        if trace.type != "scatter" or trace.x is None or len(trace.x) < 200:
            continue
        for axis in ("x", "y"):
            values = getattr(trace, axis)
            if isinstance(values, tuple | list):
                setattr(trace, axis, np.array([np.nan if v is None else v for v in values], dtype=np.float32))


def per_square(field: an.VectorField, values: np.ndarray) -> np.ndarray:
    """(size, size) grid ``[row, col]`` of values given per square of the field (NaN elsewhere)."""
    size = field.maze.size
    grid = np.full((size, size), np.nan)
    grid[field.cells[:, 0], field.cells[:, 1]] = values
    return grid


def _fmt(key: str, value: float) -> str:
    return f"{value:.1f}" if key == "expected_steps" else f"{value:.3f}"


def outcomes_table(before: an.ExactOutcomes, after: an.ExactOutcomes | None = None) -> html.Table:
    head = ["", "original", "patched", "change"] if after is not None else ["", ""]
    rows = [html.Tr([html.Th(h) for h in head])]
    for key, label in OUTCOME_ROWS:
        b = getattr(before, key)
        cells = [html.Td(label), html.Td(_fmt(key, b))]
        if after is not None:
            a = getattr(after, key)
            cells += [html.Td(_fmt(key, a)), html.Td(("+" if a - b >= 0 else "−") + _fmt(key, abs(a - b)))]
        rows.append(html.Tr(cells))
    return html.Table(rows, className="outcomes")


def behaviour_view(wb: Workbench, lp: Any, maze: Maze, arrows: str, heat: str) -> tuple[Any, Any, Any]:
    """The behaviour tab for one maze: vector field figure, heatmap figure, outcome table (the
    callback's whole work, also timed by ``mazewb bench-app``)."""
    beh = wb.behaviour(lp, maze)
    field = beh.field
    vf = present(plots.vector_field_figure(field, arrows, title="What the policy does at each square"), 540)
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
                maze, per_square(field, values), HEAT_LABELS[heat], zmin=0.0, zmax=1.0, label="P"
            ),
            540,
        )
    return vf, hm, outcomes_table(beh.outcomes)


def register(app: Dash, wb: Workbench, guarded: Callable) -> None:  # noqa: C901
    def maze_of(st_maze: dict) -> Maze:
        return Maze.from_json(st_maze["maze"])

    # ------------------------------------------------------------------ behaviour
    def tab_view(name: str, tab: str, outputs: list[Output]) -> Callable:
        """Register ``draw(lp, maze, data)`` as the lazy callback of a tab: it runs only while
        ``tab`` is shown and only when the maze or the tab's store ``st-{name}`` changed (the key
        of what it shows is kept in ``key-{name}``); it returns the values of ``outputs``, and
        failures become a message in ``{name}-message``."""

        def wrap(draw: Callable[[Any, Maze, dict], tuple]) -> Callable:
            n = len(outputs) + 3

            @app.callback(
                *outputs,
                Output(f"{name}-message", "children"),
                Output(f"{name}-message", "className"),
                Output(f"key-{name}", "data"),
                Input("st-maze", "data"),
                Input(f"st-{name}", "data"),
                Input("tabs", "value"),
                State(f"key-{name}", "data"),
            )
            @guarded(n, n - 3, n - 2)
            def show(st_maze, data, current, last):  # noqa: ANN001, ANN202
                if not st_maze or not data or current != tab:
                    return (no_update,) * n
                key = [st_maze, data]
                if key == last:
                    return (no_update,) * n
                return (*draw(wb.policy(st_maze["checkpoint"]), maze_of(st_maze), data), "", "msg", key)

            return draw

        return wrap

    @tab_view(
        "behaviour",
        "behaviour",
        [Output("vf-graph", "figure"), Output("heat-graph", "figure"), Output("outcomes-table", "children")],
    )
    def behaviour(lp, maze, st_beh):  # noqa: ANN001, ANN202
        return behaviour_view(wb, lp, maze, st_beh["arrows"], st_beh["heat"])

    # ------------------------------------------------------------------ episode
    @app.callback(
        Output("episode-graph", "figure"),
        Output("episode-info", "children"),
        Input("episode-run", "n_clicks"),
        State("st-maze", "data"),
        State("episode-mode", "value"),
        State("episode-seed", "value"),
        prevent_initial_call=True,
    )
    @guarded(2, 1)
    def episode(_, st_maze, mode, seed):  # noqa: ANN001, ANN202
        lp = wb.policy(st_maze["checkpoint"])
        maze = maze_of(st_maze)
        seed = int(seed or 0)
        if maze.cheese is None:
            raise ValueError("place the cheese first: an episode ends when the mouse reaches it")
        if mode == "greedy":
            # the most likely move of the (cached) vector field at each square the mouse reaches
            table = wb.behaviour(lp, maze).field.chain_probs()
            traj = an.sample_rollouts(table, maze, 1, seed=seed, greedy=True)[0]
            how = "greedy: the most likely move at each square"
        else:
            traj = an.sample_rollouts(lp.policy, maze, 1, seed=seed)[0]
            how = f"moves sampled from the policy on the game's observations (seed {seed})"
        end = "reached the cheese" if traj.reached_cheese else "did not reach the cheese (timed out)"
        fig = present(plots.trajectory_figure(maze, [traj], title=f"{traj.steps} steps: {end}", animate=True), 600)
        fig.update_layout(margin=dict(b=120), showlegend=False)
        return fig, f"Played in procgen's own game, {how}. The mouse {end} after {traj.steps} steps."

    # ------------------------------------------------------------------ activations
    @tab_view(
        "act",
        "activations",
        [Output("act-graph", "figure"), Output("act-grid-graph", "figure"), Output("layer-info", "children")],
    )
    def activations(lp, maze, st_act):  # noqa: ANN001, ANN202
        layer, channel = st_act["layer"], int(st_act["channel"])
        maps = wb.channel_maps(lp, maze, layer)
        if not 0 <= channel < maps.shape[0]:
            raise ValueError(f"{layer} has channels 0 to {maps.shape[0] - 1}")
        short = layer.replace("embedder.", "")
        overlay = activation_overlay_figure(
            wb.observation(maze),
            maps[channel],
            title=f"{short} · channel {channel}, over the agent's view",
            uri=wb.background(maze, "agent"),
        )
        grid = channel_grid(maps, channel)
        info = f"{maps.shape[0]} channels of {maps.shape[1]}x{maps.shape[2]} cells; mouse on {maze.mouse}"
        return overlay, grid, info

    @app.callback(
        Output("attr-graph", "figure"),
        Output("attr-channels-graph", "figure"),
        Output("attr-message", "children"),
        Output("attr-message", "className"),
        Input("attr-run", "n_clicks"),
        Input("st-maze", "data"),
        Input("st-act", "data"),
        Input("attr-move", "value"),
        Input("attr-baseline", "value"),
        Input("tabs", "value"),
        prevent_initial_call=True,
    )
    @guarded(4, 2, 3)
    def attribution(clicks, st_maze, st_act, move, baseline, tab):  # noqa: ANN001, ANN202
        # Once asked for, the attribution follows edits of the maze, layer and settings (never stale).
        if not clicks or tab != "activations" or not st_maze or not st_act:
            return (no_update,) * 4
        maze = maze_of(st_maze)
        lp = wb.policy(st_maze["checkpoint"])
        result = an.integrated_gradients(
            lp.policy, maze, st_act["layer"], None, None if move == "auto" else move, baseline
        )
        short = result.layer.replace("embedder.", "")
        spatial = present(
            plots.attribution_figure(result, maze, title=f"{short} · attribution to P({result.move})"), 460
        )
        channels = present(
            plots.attribution_channels_figure(result, top=16, title="channels by total attribution"), 460, maze=False
        )
        text = (
            f"P({result.move}) at {maze.mouse}: {result.baseline_prob:.3f} at the baseline -> {result.prob:.3f}; "
            f"the attributions sum to the difference (completeness gap {result.delta:+.1e}). "
            "Red raises the move's probability, blue lowers it."
        )
        return spatial, channels, text, "msg"

    # ------------------------------------------------------------------ steering and patching
    @app.callback(
        Output("steer-original", "figure"),
        Output("steer-patched", "figure"),
        Output("steer-diff", "figure"),
        Output("steer-outcomes", "children"),
        Output("steer-message", "children"),
        Output("steer-message", "className"),
        Output("rt-square-info", "children"),
        Output("key-steer", "data"),
        Input("st-maze", "data"),
        Input("st-steer", "data"),
        Input("st-behaviour", "data"),
        Input("tabs", "value"),
        State("key-steer", "data"),
    )
    @guarded(8, 4, 5)
    def steer(st_maze, st_steer, st_beh, tab, last):  # noqa: ANN001, ANN202
        if not st_maze or st_steer is None:
            return (no_update,) * 8
        spec = SteerSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in st_steer.items()})
        target = spec.retarget_square
        rt_info = (
            f"target square {tuple(target)}" if target else "no target: pick 'set retarget square' and click the maze"
        )
        if tab != "steer":
            return (no_update,) * 6 + (rt_info, no_update)
        arrows = (st_beh or {}).get("arrows", "net")
        key = [st_maze, st_steer, arrows]
        if key == last:
            return (no_update,) * 6 + (rt_info, no_update)
        lp = wb.policy(st_maze["checkpoint"])
        maze = maze_of(st_maze)
        original, patched, notes = wb.patched(lp, maze, spec)
        of = original.field
        h = 420
        fig_o = present(plots.vector_field_figure(of, arrows), h, legend=False)
        if patched is None:
            text = "No intervention is active: set a coefficient or channels above (or use a preset)."
            empty = message_figure("no intervention", h)
            msg = " ".join(notes) or text
            return fig_o, empty, empty, outcomes_table(original.outcomes), msg, "msg info", rt_info, key
        pf = patched.field
        diff = an.vector_field_diff(pf, of)
        fig_p = present(plots.vector_field_figure(pf, arrows), h, legend=False)
        fig_d = present(plots.vector_field_diff_figure(diff, title=" "), h, legend=False)
        fig_d.update_traces(
            colorbar=dict(
                orientation="h",
                thickness=10,
                len=0.8,
                y=-0.02,
                yanchor="top",
                title=dict(text="change (TV)", side="top"),
            ),
            selector=dict(type="heatmap"),
        )
        fig_d.update_layout(margin=dict(b=70))
        parts = [f"Mean change per square (total variation): {diff.mean_tv:.3f}."]
        ds = decision_square(maze)
        if ds is not None:
            b, a = _decision(of, ds), _decision(pf, ds)
            parts.append(f"At the decision square {ds}: P(towards cheese) {b:.2f} → {a:.2f}.")
        eff = effective(spec)
        parts.append("Active: " + describe(eff) + ".")
        return (
            fig_o,
            fig_p,
            fig_d,
            outcomes_table(original.outcomes, patched.outcomes),
            " ".join(notes + parts),
            "msg info",
            rt_info,
            key,
        )

    # ------------------------------------------------------------------ background jobs
    def job_callbacks(
        kind: str,
        start: Callable[..., Callable[[JobContext], Any]],
        start_states: list[State],
        show: Callable[[Any], tuple],
        n_show: int,
        result_outputs: list[Output],
    ) -> None:
        """Wire run / poll / cancel for a kind of job: ``start(*states)`` returns the job
        function; ``show(result)`` returns the values for ``result_outputs``."""

        @app.callback(
            Output(f"{kind}-job", "data"),
            Output(f"{kind}-poll", "disabled"),
            Output(f"{kind}-message", "children", allow_duplicate=True),
            Output(f"{kind}-message", "className", allow_duplicate=True),
            Input(f"{kind}-run", "n_clicks"),
            *start_states,
            prevent_initial_call=True,
        )
        def run(_, *states):  # noqa: ANN001, ANN202
            try:
                fn = start(*states)
            except Exception as exc:  # noqa: BLE001
                from mazewb.app.callbacks import explain

                return no_update, True, explain(exc), "msg error"
            return wb.jobs.submit(kind, fn), False, "", "msg"

        @app.callback(
            Output(f"{kind}-status", "children"),
            Output(f"{kind}-poll", "disabled", allow_duplicate=True),
            Output(f"{kind}-message", "children", allow_duplicate=True),
            Output(f"{kind}-message", "className", allow_duplicate=True),
            Output(f"{kind}-bar", "style"),
            *result_outputs,
            Input(f"{kind}-poll", "n_intervals"),
            State(f"{kind}-job", "data"),
            prevent_initial_call=True,
        )
        def poll(_, job_id):  # noqa: ANN001, ANN202
            job = wb.jobs.get(job_id)
            rest = (no_update,) * n_show
            if job is None:
                return "", True, "This job is no longer known to the server; run it again.", "msg error", _bar(0), *rest
            ctx = job.ctx
            frac = ctx.done / ctx.total if ctx.total else 0.0
            status = f"{ctx.note or 'working'}: {ctx.done} of {ctx.total}" if ctx.total else (ctx.note or "working…")
            if job.state == "running":
                return status, False, no_update, no_update, _bar(frac), *rest
            if job.state == "cancelled":
                return "cancelled", True, "Cancelled.", "msg info", _bar(0), *rest
            if job.state == "failed":
                return "failed", True, job.error, "msg error", _bar(0), *rest
            try:
                shown = show(job.result)
            except Exception as exc:  # noqa: BLE001
                from mazewb.app.callbacks import explain

                return "failed", True, explain(exc), "msg error", _bar(0), *rest
            took = (job.finished or 0) - job.started
            return f"done in {took:.1f} s", True, "", "msg", _bar(1), *shown

    def _bar(frac: float) -> dict:
        return {"width": f"{100 * frac:.0f}%"}

    # shards: the (cheese coeff, top-right coeff) grid at the decision square
    def start_shards(st_maze, st_shards, st_steer, with_outcomes):  # noqa: ANN001, ANN202
        lp = wb.policy(st_maze["checkpoint"])
        maze = maze_of(st_maze)
        if maze.cheese is None:
            raise ValueError("place the cheese first: the shards grid steers with this maze's cheese vector")
        steps = int(st_shards["steps"])
        cheese = np.linspace(*st_shards["cheese"], steps).round(3).tolist()
        corner = np.linspace(*st_shards["top_right"], steps).round(3).tolist()
        layer = (st_steer or {}).get("layer") or an.DEFAULT_LAYER
        outcomes = bool(with_outcomes)

        def job(ctx: JobContext):  # noqa: ANN202
            import pandas as pd

            parts = []
            for i, c in enumerate(cheese):
                ctx.progress(i, len(cheese), "cheese coefficients done")
                parts.append(an.steering_sweep(lp.policy, [maze], [c], corner, layer, with_outcomes=outcomes))
            ctx.progress(len(cheese), len(cheese), "cheese coefficients done")
            return maze, pd.concat(parts, ignore_index=True)

        return job

    def show_shards(result):  # noqa: ANN001, ANN202
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
        "shards",
        start_shards,
        [
            State("st-maze", "data"),
            State("st-shards", "data"),
            State("st-steer", "data"),
            State("shards-outcomes", "value"),
        ],
        show_shards,
        1,
        [Output("shards-graph", "figure")],
    )

    # statistics over many mazes
    def start_stats(st_maze, n, start):  # noqa: ANN001, ANN202
        lp = wb.policy(st_maze["checkpoint"])
        n = int(n) if n is not None else 0
        if not 10 <= n <= 100_000:
            raise ValueError("the number of mazes must be between 10 and 100000")
        start = int(start or 0)
        if start < 0:
            raise ValueError("the first seed must be 0 or more")

        def job(ctx: JobContext):  # noqa: ANN202
            table = an.qualifying_sample(
                lp.policy, n, start, progress=False, on_batch=lambda d, t: ctx.progress(d, t, "qualifying mazes")
            )
            ctx.note = "fitting regressions"
            stats = an.behaviour_regressions(table)
            return table, stats

        return job

    def show_stats(result):  # noqa: ANN001, ANN202
        table, stats = result
        s = stats.summary
        rows = [
            ("mazes (train / held out)", f"{stats.n_train + stats.n_test} ({stats.n_train} / {stats.n_test})"),
            ("chooses cheese at the decision square", f"{s['fraction_chooses_cheese']:.1%}"),
            ("median P(cheese | decision square)", f"{s['median_p_cheese_ds']:.3f}"),
            ("held-out accuracy: L1 logistic regression", f"{stats.accuracy:.1%}"),
            ("held-out accuracy: majority baseline", f"{stats.baseline:.1%}"),
            (
                "linear model of logit P(cheese): R² train / test",
                f"{stats.linear_r2_train:.2f} / {stats.linear_r2_test:.2f}",
            ),
        ]
        if "mean_p_cheese" in s:
            rows.append(("mean exact P(reach the cheese)", f"{s['mean_p_cheese']:.3f}"))
        summary = html.Table([html.Tr([html.Td(a), html.Td(b)]) for a, b in rows], className="card")
        coef = html.Table(
            [html.Tr([html.Th("feature"), html.Th("logistic coef"), html.Th("linear coef"), html.Th("VIF")])]
            + [
                html.Tr(
                    [
                        html.Td(f),
                        html.Td(f"{stats.coefficients[f]:+.3f}"),
                        html.Td(f"{stats.linear_coefficients[f]:+.3f}"),
                        html.Td("∞" if math.isinf(stats.vif[f]) else f"{stats.vif[f]:.1f}"),
                    ]
                )
                for f in stats.coefficients.abs().sort_values(ascending=False).index
            ],
            className="outcomes",
        )
        top = stats.coefficients.abs().idxmax()
        fig1 = present(plots.behaviour_figure(stats), 460, maze=False)
        fig1.update_layout(
            title=dict(text="What predicts going for the cheese", font=dict(size=17)),
            showlegend=False,
            margin=dict(l=160, r=30, t=80, b=50),
        )
        fig1.update_yaxes(showticklabels=False, row=1, col=2)
        fig2 = scatter_figure(
            table[top],
            table["p_cheese_ds"],
            top,
            "P(cheese | decision square)",
            f"P(cheese | decision square) against {top}",
        )
        return html.Div([summary, html.H3("Regression coefficients (z-scored features)"), coef]), fig1, fig2

    job_callbacks(
        "stats",
        start_stats,
        [State("st-maze", "data"), State("stats-n", "value"), State("stats-start", "value")],
        show_stats,
        3,
        [Output("stats-table", "children"), Output("stats-graph", "figure"), Output("stats-graph2", "figure")],
    )

    @app.callback(
        Output("stats-message", "children", allow_duplicate=True),
        Output("stats-message", "className", allow_duplicate=True),
        Input("stats-cancel", "n_clicks"),
        State("stats-job", "data"),
        prevent_initial_call=True,
    )
    def cancel_stats(_, job_id):  # noqa: ANN001, ANN202
        if wb.jobs.cancel(job_id):
            return "Cancelling…", "msg info"
        return "No statistics job is running.", "msg info"

    @app.callback(
        Output("stats-download", "data"),
        Output("stats-message", "children", allow_duplicate=True),
        Output("stats-message", "className", allow_duplicate=True),
        Input("stats-download-btn", "n_clicks"),
        State("stats-job", "data"),
        prevent_initial_call=True,
    )
    def download_stats(_, job_id):  # noqa: ANN001, ANN202
        job = wb.jobs.get(job_id)
        if job is None or job.state != "done":
            return no_update, "Run the statistics first; the CSV is the table of mazes it produces.", "msg error"
        table, _ = job.result
        return dcc.send_data_frame(table.to_csv, "mazewb-behaviour-stats.csv", index=False), "", "msg"

    # ranking of cheese-tracking channels
    def start_rank(st_maze, st_act, n):  # noqa: ANN001, ANN202
        lp = wb.policy(st_maze["checkpoint"])
        layer = st_act["layer"]
        n = int(n or 0)
        if not 4 <= n <= 2000:
            raise ValueError("the number of mazes for ranking must be between 4 and 2000")

        def job(ctx: JobContext):  # noqa: ANN202
            ctx.progress(0, n, "ranking channels over mazes")
            table = an.rank_cheese_channels(lp.policy, layer, range(n))
            ctx.progress(n, n, "ranking channels over mazes")
            return layer, table

        return job

    def show_rank(result):  # noqa: ANN001, ANN202
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
        return (
            fig,
            html.Div(
                [
                    html.P(
                        f"Top channels of {layer.replace('embedder.', '')} over {int(table['n_mazes'].iloc[0])} mazes: "
                        f"{best}. Use them on the Steer & patch tab."
                    ),
                    html.Table(rows, className="outcomes"),
                ]
            ),
        )

    job_callbacks(
        "rank",
        start_rank,
        [State("st-maze", "data"), State("st-act", "data"), State("rank-n", "value")],
        show_rank,
        2,
        [Output("rank-graph", "figure"), Output("rank-table", "children")],
    )


def channel_grid(maps: np.ndarray, selected: int) -> Any:
    """``plots.channel_grid_figure`` in a near-square layout, with the selected channel framed and
    hover / click reporting the channel under the pointer (``customdata``)."""
    c, h, w = maps.shape
    columns = int(math.ceil(math.sqrt(c)))
    fig = plots.channel_grid_figure(
        maps, columns=columns, title=f"all {c} channels, each scaled to its own range (click one)"
    )
    gap = 1
    chan = np.full(fig.data[0].z.shape if hasattr(fig.data[0].z, "shape") else np.shape(fig.data[0].z), -1)
    for k in range(c):
        r, q = divmod(k, columns)
        chan[r * (h + gap) : r * (h + gap) + h + gap, q * (w + gap) : q * (w + gap) + w + gap] = k
    fig.data[0].update(
        customdata=chan, hoverinfo="z", hovertemplate="channel %{customdata}<extra></extra>", showscale=False
    )
    r, q = divmod(selected, columns)
    fig.add_shape(
        type="rect",
        x0=q * (w + gap) - 0.5,
        y0=r * (h + gap) - 0.5,
        x1=q * (w + gap) + w - 0.5,
        y1=r * (h + gap) + h - 0.5,
        line=dict(color="#111", width=3),
    )
    fig = present(fig, 540, maze=False)
    fig.update_xaxes(fixedrange=True)
    fig.update_yaxes(fixedrange=True)
    return fig


def _decision(field: an.VectorField, ds: tuple[int, int]) -> float:
    """P(the step towards the cheese) at the decision square ``ds`` under ``field``."""
    return float(an.step_probabilities(field, field.maze.cheese)[field.index(ds)])


def describe(spec: SteerSpec) -> str:
    parts = []
    if spec.cheese_coeff:
        src = "this maze" if spec.cheese_source is None else f"seed {spec.cheese_source}"
        parts.append(f"cheese vector × {spec.cheese_coeff:g} (from {src})")
    if spec.top_right_coeff:
        src = "this maze" if spec.top_right_source is None else f"seed {spec.top_right_source}"
        parts.append(f"top-right vector × {spec.top_right_coeff:g} (from {src})")
    if spec.retarget_square is not None and spec.retarget_channels:
        parts.append(
            f"channels {list(spec.retarget_channels)} set to {spec.retarget_value:g} at {spec.retarget_square}"
        )
    if spec.ablate_channels:
        parts.append(f"{spec.ablate_mode}-ablation of channels {list(spec.ablate_channels)}")
    if spec.resample_channels:
        parts.append(f"channels {list(spec.resample_channels)} resampled from seed {spec.resample_source}")
    return "; ".join(parts) + f" at {spec.layer.replace('embedder.', '')}"
