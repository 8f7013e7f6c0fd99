"""Background-job sections of a panel, from one helper: layout and callbacks.

``job_layout(kind, ...)`` is the section (its controls, Run and Cancel buttons, a progress bar,
a status line, a message line, the results, and the job's store and poll timer);
``job_callbacks(app, wb, kind, ...)`` wires run / poll / cancel. ``start(*states)`` validates
its inputs (the panel's store through the view-state table, other values with the table's
kinds) and returns the job function; ``show(result)`` returns the values of the result
outputs. A new run of the same kind from the same page cancels the previous one; every job has
a time limit and stops when its page stops polling (``mazewb.app.jobs``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from mazewb.app import ids
from mazewb.app.guard import explain
from mazewb.app.jobs import JobContext


def job_layout(
    kind: str,
    run_label: str,
    controls: Sequence[Any] = (),
    results: Sequence[Any] = (),
    extra_buttons: Sequence[Any] = (),
    poll_ms: int = 700,
) -> list:
    """The components of a job section (a list, to put in a panel's layout)."""
    return [
        html.Div(
            [
                *controls,
                html.Button(run_label, id=ids.job(kind, "run"), className="primary"),
                html.Button("Cancel", id=ids.job(kind, "cancel"), className="danger"),
                *extra_buttons,
            ],
            className="row",
        ),
        html.Div(
            html.Div(id=ids.job(kind, "bar"), className="progress-inner", style={"width": "0%"}),
            className="progress-outer",
        ),
        html.Div(id=ids.job(kind, "status"), className="hint"),
        html.Div(id=ids.message(kind), className="msg"),
        *results,
        dcc.Store(id=ids.job(kind, "job")),
        dcc.Interval(id=ids.job(kind, "poll"), interval=poll_ms, disabled=True),
    ]


def _bar(frac: float) -> dict:
    return {"width": f"{100 * max(0.0, min(1.0, frac)):.0f}%"}


def job_callbacks(
    app: Dash,
    wb: Any,
    kind: str,
    start: Callable[..., Callable[[JobContext], Any]],
    start_states: Sequence[State],
    show: Callable[[Any], tuple],
    result_outputs: Sequence[Output],
    max_seconds: float | None = None,
) -> None:
    """Wire run / poll / cancel of the job section ``kind`` (see the module docstring)."""
    msg, cls = ids.message(kind), "className"
    n_show = len(result_outputs)

    @app.callback(
        Output(ids.job(kind, "job"), "data"),
        Output(ids.job(kind, "poll"), "disabled"),
        Output(msg, "children", allow_duplicate=True),
        Output(msg, cls, allow_duplicate=True),
        Input(ids.job(kind, "run"), "n_clicks"),
        State(ids.job(kind, "job"), "data"),
        *start_states,
        prevent_initial_call=True,
    )
    def run(_: Any, previous: Any, *states: Any) -> tuple:
        try:
            wb.jobs.cancel(previous)  # one job of a kind per page
            fn = start(*states)
            job_id = wb.jobs.submit(kind, fn, max_seconds=max_seconds)
        except Exception as exc:  # noqa: BLE001 - shown in the page, bugs logged
            return no_update, True, explain(exc), "msg error"
        return job_id, False, "", "msg"

    @app.callback(
        Output(ids.job(kind, "status"), "children"),
        Output(ids.job(kind, "poll"), "disabled", allow_duplicate=True),
        Output(msg, "children", allow_duplicate=True),
        Output(msg, cls, allow_duplicate=True),
        Output(ids.job(kind, "bar"), "style"),
        *result_outputs,
        Input(ids.job(kind, "poll"), "n_intervals"),
        State(ids.job(kind, "job"), "data"),
        prevent_initial_call=True,
    )
    def poll(_: Any, job_id: Any) -> tuple:
        rest = (no_update,) * n_show
        job = wb.jobs.get(job_id)
        if job is None:
            return "", True, "This job is no longer known to the server; run it again.", "msg error", _bar(0), *rest
        c = job.ctx
        frac = c.done / c.total if c.total else 0.0
        status = f"{c.note or 'working'}: {c.done} of {c.total}" if c.total else (c.note or "working…")
        if job.state == "running":
            return status, False, no_update, no_update, _bar(frac), *rest
        if job.state == "cancelled":
            return "cancelled", True, "Cancelled.", "msg info", _bar(0), *rest
        if job.state == "failed":
            return "failed", True, job.error, "msg error", _bar(0), *rest
        try:
            shown = show(job.result)
        except Exception as exc:  # noqa: BLE001
            return "failed", True, explain(exc), "msg error", _bar(0), *rest
        took = (job.finished or 0) - job.started
        return f"done in {took:.1f} s", True, "", "msg", _bar(1), *shown

    @app.callback(
        Output(msg, "children", allow_duplicate=True),
        Output(msg, cls, allow_duplicate=True),
        Input(ids.job(kind, "cancel"), "n_clicks"),
        State(ids.job(kind, "job"), "data"),
        prevent_initial_call=True,
    )
    def cancel(_: Any, job_id: Any) -> tuple:
        if wb.jobs.cancel(job_id):
            return "Cancelling…", "msg info"
        return "No job of this kind is running.", "msg info"
