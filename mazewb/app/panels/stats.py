"""The Statistics tab: over many random mazes with a decision square, which maze features
predict that the policy steps towards the cheese there (a background job), with the result's
warnings and a glossary of the features."""

from __future__ import annotations

import math
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from mazewb import analysis as an
from mazewb import plots
from mazewb.app import ids
from mazewb.app import widgets as w
from mazewb.app.figures import scatter_figure
from mazewb.app.guard import guarded
from mazewb.app.jobs import JobContext
from mazewb.app.jobview import job_callbacks, job_layout
from mazewb.app.panel import PageConfig, Panel
from mazewb.app.present import present
from mazewb.app.state import MAX_STATS_MAZES, ViewState, from_slice

TABLE, GRAPH, GRAPH2, WARNINGS = "stats-table", "stats-graph", "stats-graph2", "stats-warnings"
DOWNLOAD_BUTTON, DOWNLOAD = "stats-download-btn", "stats-download"
FIELDS = ("checkpoint", "stats_mazes", "stats_start")
DEFAULT_REGION = 5  # when the model card does not say
SEEDS_PER_BATCH = 8  # small batches: progress (and cancelling) every few seconds on a busy CPU


def layout(s: ViewState, config: PageConfig) -> html.Div:  # noqa: ARG001
    controls = [
        w.field("Mazes", w.num(**w.ctl(s, "stats_mazes"), min_=10, max_=MAX_STATS_MAZES)),
        w.field("First seed", w.num(**w.ctl(s, "stats_start"), min_=0)),
    ]
    return html.Div(
        [
            html.P(
                "Behavioural statistics over many random mazes with a decision square: which maze features predict "
                "that the policy steps towards the cheese there? Runs in the background; you can keep working.",
                className="hint",
            ),
            *job_layout(
                "stats",
                "Run statistics",
                controls,
                results=[
                    html.Div(id=WARNINGS),
                    html.Div(id=TABLE),
                    html.Div([w.graph(GRAPH, 460, "run the statistics"), w.graph(GRAPH2, 420, " ")]),
                ],
                extra_buttons=[html.Button("Download CSV", id=DOWNLOAD_BUTTON), dcc.Download(id=DOWNLOAD)],
            ),
        ],
        className="tab-content",
    )


def warnings_box(stats: an.BehaviourStats) -> Any:
    if not stats.warnings:
        return None
    return html.Div(
        [html.B("Read these numbers with care:"), html.Ul([html.Li(t) for t in stats.warnings])],
        className="msg warn",
    )


def show(result: Any) -> tuple:
    table, stats, region = result
    s = stats.summary
    rows = [
        ("mazes (train / held out)", f"{stats.n_train + stats.n_test} ({stats.n_train} / {stats.n_test})"),
        ("training cheese region used to pick the mazes", f"top-right {region}x{region}"),
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
    feats = stats.table()
    order = stats.coefficients.abs().sort_values(ascending=False).index
    coef = html.Table(
        [
            html.Tr(
                [
                    html.Th("feature"),
                    html.Th("meaning"),
                    html.Th("logistic coef"),
                    html.Th("linear coef"),
                    html.Th("VIF"),
                ]
            )
        ]
        + [
            html.Tr(
                [
                    html.Td(f),
                    html.Td(feats.loc[f, "meaning"], className="meaning"),
                    html.Td(f"{stats.coefficients[f]:+.3f}"),
                    html.Td(f"{stats.linear_coefficients[f]:+.3f}"),
                    html.Td("∞" if math.isinf(stats.vif[f]) else f"{stats.vif[f]:.1f}"),
                ]
            )
            for f in order
        ],
        className="outcomes glossary",
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
    body = html.Div([summary, html.H3("Regression coefficients (z-scored features)"), coef])
    return warnings_box(stats), body, fig1, fig2


def register(app: Dash, wb: Any) -> None:
    def start(data: Any) -> Any:
        s = from_slice(data, FIELDS)
        lp = wb.policy(s.checkpoint)
        region = lp.region if lp.region is not None else DEFAULT_REGION
        n, first = s.stats_mazes, s.stats_start

        def job(ctx: JobContext) -> Any:
            table = an.qualifying_sample(
                lp.policy,
                n,
                first,
                region=region,
                seeds_per_batch=SEEDS_PER_BATCH,
                progress=False,
                on_batch=lambda d, t: ctx.progress(d, t, "qualifying mazes"),
            )
            ctx.note = "fitting regressions"
            return table, an.behaviour_regressions(table), region

        return job

    job_callbacks(
        app,
        wb,
        "stats",
        start,
        [State(ids.slice_store("stats"), "data")],
        show,
        [Output(WARNINGS, "children"), Output(TABLE, "children"), Output(GRAPH, "figure"), Output(GRAPH2, "figure")],
    )

    msg = ids.message("stats")

    @app.callback(
        Output(DOWNLOAD, "data"),
        Output(msg, "children", allow_duplicate=True),
        Output(msg, "className", allow_duplicate=True),
        Input(DOWNLOAD_BUTTON, "n_clicks"),
        State(ids.job("stats", "job"), "data"),
        prevent_initial_call=True,
    )
    @guarded(3, 1, 2)
    def download(_: Any, job_id: Any) -> tuple:
        job = wb.jobs.get(job_id)
        if job is None or job.state != "done":
            return no_update, "Run the statistics first; the CSV is the table of mazes it produces.", "msg error"
        table = job.result[0]
        return dcc.send_data_frame(table.to_csv, "mazewb-behaviour-stats.csv", index=False), "", "msg"


PANEL = Panel(name="stats", label="Statistics", layout=layout, fields=FIELDS, register=register)
