"""A lesson step made live: its state resolved for the loaded policy, its text with the numbers
filled in, its expectation checked, its figures drawn. ``render_step`` is all a player needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import plotly.graph_objects as go

from mazewb import analysis as an
from mazewb import plots
from mazewb.app.state import ViewState, from_query, to_query
from mazewb.errors import MazewbError, user_message
from mazewb.lessons.format import Lesson, LessonError, Step
from mazewb.lessons.numbers import (
    COMMON_REGION,
    PLACEHOLDERS,
    RANK_SEEDS,
    ZOO_SEEDS,
    Placeholder,
    StepContext,
    format_value,
    ranked_channels,
    shown_value,
)
from mazewb.lessons.template import COMPARE, expectation_names, fill, holds, lookup, step_placeholders
from mazewb.maze import Maze
from mazewb.policy import ImpalaPolicy

FIGURES = {
    "maze": "the maze, the training region outlined",
    "field": "the agent's vector field (its move probabilities on every square)",
    "steered": "the vector field under the step's interventions",
    "diff": "how the interventions change the vector field",
    "channel": "the shown channel's activation map over the maze",
    "ranking": "the live ranking of cheese-tracking channels",
    "grid": "the shards grid: decision-square probabilities over (cheese, top-right) coefficients",
    "zoo": "P(top-right first) and P(cheese) on the common test against each agent's training region (needs the zoo)",
}
TAB_FIGURES = {
    "behaviour": ("field",),
    "activations": ("channel",),
    "steer": ("steered", "diff"),
    "shards": ("grid",),
    "stats": ("field",),
    "model": ("maze",),
}


@dataclass(frozen=True)
class StepFigure:
    kind: str  # a key of FIGURES
    title: str
    figure: go.Figure = field(compare=False)


@dataclass(frozen=True)
class StepView:
    """Everything a player shows for step ``k`` (1-based, as in ``?lesson=NAME&step=K``)."""

    lesson: str
    lesson_title: str
    k: int
    steps: int
    title: str
    caption: str  # Markdown, numbers filled in
    look_for: str
    question: str
    answer: str
    notice: str  # the 'confirmed' or 'otherwise' text ('' without an expectation)
    expected: bool | None  # did the expectation hold for this agent? None: the step has none
    query: str  # the step's view as a URL query ('?seed=...'), live channels filled in
    state: ViewState
    numbers: dict[str, str]  # every placeholder the step uses -> the text shown
    figures: tuple[StepFigure, ...]


def step_figures(step: Step, state: ViewState) -> tuple[str, ...]:
    if step.figures is not None:
        return step.figures
    figures = TAB_FIGURES.get(state.tab, ("field",))
    if state.tab == "steer" and not state.steer.active:
        return ("field",)
    return figures


def resolve_state(
    step: Step, policy: ImpalaPolicy, rank_seeds: Sequence[int] = RANK_SEEDS, query: str | None = None
) -> ViewState:
    """The step's view state (or ``query``, e.g. its compare state) with live channels filled in:
    with ``channels: top N`` the shown channel is the best-ranked cheese channel of the shown
    layer, and a retarget sets the top N of the steering layer."""
    state = from_query(step.state if query is None else query)
    if step.channels:
        state = replace(state, channel=ranked_channels(policy, state.layer, 1, rank_seeds)[0])
        if state.steer.retarget_square is not None:
            channels = tuple(sorted(ranked_channels(policy, state.steer.layer, step.channels, rank_seeds)))
            state = replace(state, steer=replace(state.steer, retarget_channels=channels))
    return state


def render_step(
    lesson: Lesson,
    k: int,
    policy: ImpalaPolicy,
    *,
    rank_seeds: Sequence[int] = RANK_SEEDS,
    zoo: Path | None = None,
    figures: bool = True,
) -> StepView:
    """Step ``k`` (1-based) of ``lesson`` for ``policy``: every number computed now, from this
    agent. ``zoo``: folder of agents trained on other regions (default ``checkpoints/zoo``);
    ``figures=False`` skips drawing (the numbers only). Raises ``LessonError`` naming the step."""
    if not 1 <= k <= len(lesson.steps):
        raise LessonError(f"lesson {lesson.name!r} has steps 1 to {len(lesson.steps)}, not {k}")
    step = lesson.steps[k - 1]
    try:
        return _render(lesson, k, step, policy, rank_seeds, zoo, figures)
    except MazewbError as exc:
        raise LessonError(f"{lesson.name}, step {k} ({step.title}): {user_message(exc)}") from None


def _render(
    lesson: Lesson,
    k: int,
    step: Step,
    policy: ImpalaPolicy,
    rank_seeds: Sequence[int],
    zoo: Path | None,
    draw: bool,
) -> StepView:
    state = resolve_state(step, policy, rank_seeds)
    ctx = StepContext(policy, state, rank_seeds=rank_seeds, zoo=zoo)
    contexts = {"": ctx}
    if step.compare:
        other = resolve_state(step, policy, rank_seeds, step.compare)
        contexts[COMPARE] = StepContext(policy, other, rank_seeds=rank_seeds, zoo=zoo)
    for c in contexts.values():
        n_channels = policy.hook_points()[c.state.layer][0]
        if c.state.channel >= n_channels:
            raise LessonError(
                f"channel {c.state.channel} does not exist: {c.state.layer} has channels 0 to {n_channels - 1}"
            )

    def context(name: str) -> StepContext:
        return contexts[COMPARE] if name.startswith(COMPARE) else ctx

    wanted, comparisons, problems = step_placeholders(step)
    if problems:
        raise LessonError(problems[0])
    values = {name: _placeholder(name).value(context(name)) for name in wanted}
    numbers = {name: format_value(_placeholder(name).kind, v) for name, v in values.items()}
    expected: bool | None = None
    notice = ""
    if comparisons:
        shown = {name: shown_value(_placeholder(name).kind, values[name]) for name in expectation_names(comparisons)}
        expected = holds(comparisons, shown)
        notice = fill(step.confirmed if expected else step.otherwise, numbers)
    kinds = step_figures(step, state)
    figs = tuple(_figure(kind.removeprefix(COMPARE), context(kind)) for kind in kinds) if draw else ()
    return StepView(
        lesson=lesson.name,
        lesson_title=lesson.title,
        k=k,
        steps=len(lesson.steps),
        title=fill(step.title, numbers),
        caption=fill(step.caption, numbers),
        look_for=fill(step.look_for, numbers),
        question=fill(step.question, numbers),
        answer=fill(step.answer, numbers),
        notice=notice,
        expected=expected,
        query=to_query(state),
        state=state,
        numbers=numbers,
        figures=tuple(f for f in figs if f is not None),
    )


def _placeholder(name: str) -> Placeholder:
    found = lookup(name)
    if found is None:
        raise LessonError(f"unknown placeholder {{{name}}}")
    return found


# --- figures ------------------------------------------------------------------------------------------


def _outline_region(fig: go.Figure, maze: Maze, n: int) -> go.Figure:
    """Outline the top-right ``n x n`` squares where the cheese was during training."""
    lo = maze.size - min(n, maze.size) - 0.5
    hi = maze.size - 0.5
    fig.add_shape(type="rect", x0=lo, y0=lo, x1=hi, y1=hi, line={"color": "#d62728", "width": 3, "dash": "dash"})
    fig.add_annotation(x=hi, y=hi, text="training region", showarrow=False, yshift=12, xanchor="right")
    return fig


def _figure(kind: str, ctx: StepContext) -> StepFigure | None:
    maze, state = ctx.maze, ctx.state
    n = PLACEHOLDERS["region_size"].value(ctx)
    where = f"seed {state.seed}, {maze.size}x{maze.size}"
    if kind == "maze":
        title = f"The maze ({where})"
        return StepFigure(kind, title, _outline_region(plots.maze_figure(maze, title), maze, n))
    if kind == "field":
        out = ctx.outcomes()
        title = f"The agent's moves ({where}): P(cheese) {out.p_cheese:.3f}, P(top-right first) {out.p_top_right:.3f}"
        fig = plots.vector_field_figure(ctx.field(), mode=state.arrows, title=title)
        return StepFigure(kind, title, _outline_region(fig, maze, n))
    if kind == "steered":
        out = ctx.outcomes(True)
        title = f"Under the interventions: P(cheese) {out.p_cheese:.3f}, P(top-right first) {out.p_top_right:.3f}"
        fig = plots.vector_field_figure(ctx.field(True), mode=state.arrows, title=title)
        return StepFigure(kind, title, _outline_region(fig, maze, n))
    if kind == "diff":
        diff = an.vector_field_diff(ctx.field(True), ctx.field())
        title = f"Change of the moves (mean total variation {diff.mean_tv:.3f})"
        return StepFigure(kind, title, plots.vector_field_diff_figure(diff, title))
    if kind == "channel":
        short = state.layer.removeprefix("embedder.")
        title = f"{short}, channel {state.channel}, over the maze"
        return StepFigure(kind, title, plots.channel_map_figure(ctx.channel_map, maze, title, aligned=True))
    if kind == "ranking":
        ranking = ctx.ranking()
        title = (
            f"Cheese-tracking channels of {state.layer.removeprefix('embedder.')} ({int(ranking['n_mazes'][0])} levels)"
        )
        return StepFigure(kind, title, plots.channel_ranking_figure(ranking, top=12, title=title))
    if kind == "grid":
        title = "How the shards combine on this maze (at the decision square)"
        return StepFigure(kind, title, plots.steering_grid_figure(ctx.sweep, title=title))
    if kind == "zoo":
        return _zoo_figure(ctx)
    raise LessonError(f"unknown figure {kind!r}; known: {', '.join(FIGURES)}")


def _zoo_figure(ctx: StepContext) -> StepFigure | None:
    """The region curve of the loaded agent and the zoo on the common test; None without a zoo
    (the step's text says so)."""
    if not ctx.zoo_policies:
        return None
    agents = [a for a in ctx.zoo_agents if a.region is not None]
    if not agents:
        return None
    x = [a.region for a in agents]
    names = [a.name + (" (loaded)" if a.loaded else "") for a in agents]
    fig = go.Figure(
        [
            go.Scatter(
                x=x,
                y=[getattr(a, column) for a in agents],
                name=label,
                mode="lines+markers",
                marker={"size": [14 if a.loaded else 9 for a in agents], "color": colour},
                line={"color": colour},
                customdata=names,
                hovertemplate="%{customdata}<br>region %{x}: %{y:.3f}<extra></extra>",
            )
            for column, label, colour in (
                ("p_top_right", "P(top-right first)", plots.ARROW_COLOUR),
                ("p_cheese", "P(cheese)", "#d9a400"),
            )
        ]
    )
    title = (
        f"Agents by training region, on {len(ZOO_SEEDS)} common-test mazes "
        f"(cheese outside the top-right {COMMON_REGION} x {COMMON_REGION})"
    )
    fig.update_layout(
        title=title,
        xaxis={"title": "cheese region the agent was trained with (top-right N x N)", "tickvals": sorted(set(x))},
        yaxis={"title": "mean exact probability", "range": [0, 1.02]},
    )
    return StepFigure("zoo", title, fig)
