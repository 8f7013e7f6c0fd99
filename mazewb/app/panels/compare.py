"""The Compare agents tab: the maze on screen (with its edits) under two agents side by side, and
the region curve of the whole zoo.

Agent A is the loaded agent (the view's checkpoint, switched on any tab); agent B is chosen here
from the server's zoo (view-state field ``compare``, URL ``cmp``; by default the first zoo agent
other than A). Each vector field outlines that agent's training cheese region; one table holds
the exact outcomes of both. The region curve (``mazewb.train.evaluate.region_curve``) runs every
zoo agent with a stated training region on the same held-out levels 0..N-1 (``curve_mazes``,
URL ``cn``) as a background job, and draws ``mazewb.plots.region_curve_figure``.
"""

from __future__ import annotations

import math
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from mazewb import plots
from mazewb.app import ids
from mazewb.app import widgets as w
from mazewb.app.jobs import JobContext
from mazewb.app.jobview import job_callbacks, job_layout
from mazewb.app.panel import PageConfig, Panel, lazy_view
from mazewb.app.present import present
from mazewb.app.state import MAX_CURVE_MAZES, MAZE_FIELDS, ViewState, from_slice
from mazewb.app.zoo import PREFIX, Zoo
from mazewb.errors import StateError

COMPARE_SELECT, VF_A, VF_B, OUTCOMES = "compare-agent", "compare-vf-a", "compare-vf-b", "compare-outcomes"
CURVE_GRAPH, CURVE_TABLE = "curve-graph", "curve-table"
FIELDS = (*MAZE_FIELDS, "arrows", "compare", "curve_mazes")
KEY_FIELDS = (*MAZE_FIELDS, "arrows", "compare")
COMMON_REGION = 5  # the common test: procgen's cheese outside the top-right 5x5, a decision square
SEEDS_PER_CHUNK = 25  # evaluate's chunk of level seeds: the job's unit of progress and cancelling
MAX_SECONDS = 900.0


def agent_b(checkpoints: list[str], a: str, compare: str | None) -> str:
    """Agent B's checkpoint: the chosen one, else the first zoo agent other than A (A itself
    when the zoo has no other)."""
    if compare is not None:
        return compare
    return next((c for c in checkpoints if c != a), a)


def layout(s: ViewState, config: PageConfig) -> html.Div:  # noqa: ARG001
    return html.Div(
        [
            html.Div(
                [
                    w.field("Agent A", html.Span("the loaded agent (switch it above the maze)", className="hint")),
                    w.field(
                        "Agent B",
                        dcc.Dropdown(
                            id=COMPARE_SELECT, options=[], value=None, clearable=False, style={"width": "340px"}
                        ),
                    ),
                ],
                className="row",
            ),
            html.Div(
                [
                    html.Div(w.graph(VF_A, 500), className="fig2"),
                    html.Div(w.graph(VF_B, 500), className="fig2"),
                ],
                className="figs",
            ),
            w.message(ids.message("compare")),
            w.key_store("compare"),
            w.graph(OUTCOMES, 300),
            html.Div(
                [
                    html.H3("The region curve: where the top-right shard comes from"),
                    html.P(
                        "Every zoo agent with a stated training region, evaluated exactly on the same held-out "
                        f"levels (seeds 0..N-1; the common test keeps those with procgen's own cheese outside the "
                        f"top-right {COMMON_REGION}x{COMMON_REGION} and a decision square), beside its own "
                        "in-distribution P(cheese).",
                        className="hint",
                    ),
                    *job_layout(
                        "curve",
                        "Run the region curve",
                        controls=[
                            w.field("Level seeds N", w.num("curve-n", s.curve_mazes, min_=10, max_=MAX_CURVE_MAZES))
                        ],
                        results=[html.Div(id=CURVE_TABLE), w.graph(CURVE_GRAPH, 460, "press Run the region curve")],
                    ),
                ],
                className="section",
            ),
        ],
        className="tab-content",
    )


def _name(checkpoint: str, label: str) -> str:
    if checkpoint.startswith(PREFIX):
        return checkpoint[len(PREFIX) :]
    return "default" if checkpoint == "default" else label


def compare_view(wb: Any, lp_a: Any, s: ViewState) -> tuple:
    """The two vector fields, the outcomes table and agent B's selector for one state."""
    zoo: Zoo = wb.registry.zoo
    entries = zoo.entries()
    checkpoints = [e.checkpoint for e in entries]
    b = agent_b(checkpoints, s.checkpoint, s.compare)
    lp_b = wb.policy(b)
    maze = s.maze()
    figs, results = [], {}
    for tag, lp, ck in (("A", lp_a, s.checkpoint), ("B", lp_b, b)):
        name = _name(ck, lp.label)
        region = "training region not stated" if lp.region is None else f"trained on region {lp.region}"
        beh = wb.behaviour(lp, maze)
        fig = plots.vector_field_figure(beh.field, s.arrows, title=f"{tag}: {name} ({region})", region=lp.region)
        figs.append(present(fig, 520))
        results[f"{tag}: {name}"] = beh.outcomes
    table = plots.outcomes_table_figure(results, title="How the episode ends under each agent (exact)")
    message, cls = "", "msg"
    if b == s.checkpoint:
        message = "Both sides show the same agent: choose agent B, or add agents to the zoo (see the Model tab)."
        cls = "msg info"
    return (*figs, table, message, cls)


def b_options(wb: Any, s: ViewState) -> tuple[list[dict], str]:
    """Agent B's selector: the zoo (and A, and B, when they are not in it), and B."""
    entries = wb.registry.zoo.entries()
    checkpoints = [e.checkpoint for e in entries]
    b = agent_b(checkpoints, s.checkpoint, s.compare)
    options = [{"label": e.label, "value": e.checkpoint, "disabled": bool(e.error)} for e in entries]
    for extra in (s.checkpoint, b):
        if extra not in {o["value"] for o in options}:
            try:
                label = wb.policy(extra).label
            except Exception:  # noqa: BLE001 - the figures report it
                label = extra
            options.append({"label": label, "value": extra})
    return options, b


class _JobExecutor:
    """``mazewb.executor.LocalExecutor`` that reports each chunk of seeds to a job (its progress
    bar, and the place where a cancel or the time limit stops it)."""

    parallelism = 1

    def __init__(self, ctx: JobContext, total: int) -> None:
        self.ctx, self.total, self.done = ctx, total, 0

    def map(
        self, work: Any, policy: Any, chunks: Any, *, desc: str = "", progress: bool = False, **kwargs: Any
    ) -> list:  # noqa: ARG002, E501
        out = []
        for chunk in chunks:
            self.ctx.progress(self.done, self.total, "evaluating the zoo (chunks of level seeds)")
            out.append(work(policy, chunk, **kwargs))
            self.done += 1
        return out


def curve_agents(zoo: Zoo) -> tuple[list[Any], list[str]]:
    """The zoo agents the region curve can use (a stated region 1..25, a readable card), and
    the names of the others."""
    entries = zoo.entries()
    usable = [e for e in entries if not e.error and e.region is not None and 1 <= e.region <= 25]
    skipped = [e.name for e in entries if e not in usable]
    return usable, skipped


def start_curve(wb: Any, data: Any) -> Any:
    """Validate and return the region-curve job (StateError, said plainly, with < 2 agents)."""
    from mazewb.train.evaluate import region_curve

    s = from_slice(data, FIELDS)
    usable, skipped = curve_agents(wb.registry.zoo)
    if len(usable) < 2:
        have = ", ".join(e.label for e in usable) or "none"
        raise StateError(
            f"The region curve needs at least two zoo agents with a stated training region; this server has "
            f"{len(usable)} ({have}). Add agents trained on other cheese regions to the server's zoo folder "
            "(checkpoints/zoo, or 'mazewb serve --zoo DIR')."
        )
    n = s.curve_mazes

    def job(ctx: JobContext) -> Any:
        policies = []
        for i, e in enumerate(usable):
            ctx.progress(i, len(usable), "loading the zoo")
            policies.append(wb.policy(e.checkpoint).policy)
        total = len(usable) * math.ceil(n / SEEDS_PER_CHUNK)
        table = region_curve(
            policies,
            range(n),
            regions=[e.region for e in usable],
            progress=False,
            common_region=COMMON_REGION,
            executor=_JobExecutor(ctx, total),
        )
        names = {
            str(p.card.get("file") or f"policy {i}"): e.name
            for i, (p, e) in enumerate(zip(policies, usable, strict=True))
        }
        table.insert(0, "agent", [names.get(str(f), str(f)) for f in table["file"]])
        return table, skipped, n

    return job


def show_curve(result: Any) -> tuple:
    table, skipped, n = result
    fig = present(plots.region_curve_figure(table), 460, maze=False)
    cols = [
        ("agent", "agent", "{}"),
        ("region", "training region", "{}"),
        ("in_p_cheese", "in-distribution P(cheese)", "{:.3f}"),
        ("common_mazes", "common-test mazes", "{}"),
        ("common_p_cheese", "P(cheese)", "{:.3f}"),
        ("common_p_top_right", "P(top-right first)", "{:.3f}"),
        ("common_p_cheese_move_at_decision", "P(cheese move | decision square)", "{:.3f}"),
    ]
    head = html.Tr([html.Th(label) for _, label, _ in cols])
    rows = [
        html.Tr([html.Td("-" if _nan(row[c]) else f.format(row[c])) for c, _, f in cols]) for _, row in table.iterrows()
    ]
    note = f"{len(table)} agents on level seeds 0..{n - 1}."
    if skipped:
        note += f" Not in the curve (no stated training region or unreadable): {', '.join(skipped)}."
    return html.Div([html.Table([head, *rows], className="outcomes"), html.P(note, className="hint")]), fig


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def register(app: Dash, wb: Any) -> None:
    lazy_view(
        app,
        wb,
        "compare",
        PANEL,
        [
            Output(VF_A, "figure"),
            Output(VF_B, "figure"),
            Output(OUTCOMES, "figure"),
        ],
        lambda lp, s: compare_view(wb, lp, s),
        key_fields=KEY_FIELDS,
    )

    @app.callback(
        Output(COMPARE_SELECT, "options"),
        Output(COMPARE_SELECT, "placeholder"),
        Input(ids.slice_store("compare"), "data"),
    )
    def show_b(data: Any) -> tuple:
        # options only: the value is the compare field's control (the view-state callback's)
        try:
            options, b = b_options(wb, from_slice(data, FIELDS))
        except Exception:  # noqa: BLE001 - a crafted store or a failed load: the figures report it
            return no_update, no_update
        label = next((o["label"] for o in options if o["value"] == b), b)
        return options, f"{label} (the first other agent)"

    job_callbacks(
        app,
        wb,
        "curve",
        lambda data: start_curve(wb, data),
        [State(ids.slice_store("compare"), "data")],
        show_curve,
        [Output(CURVE_TABLE, "children"), Output(CURVE_GRAPH, "figure")],
        max_seconds=MAX_SECONDS,
    )


PANEL = Panel(name="compare", label="Compare agents", layout=layout, fields=FIELDS, register=register)
