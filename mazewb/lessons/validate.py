"""Checking a lesson without running the agent: every state a valid view, every placeholder
known and meaningful for its step (a decision-square number needs a decision square, a steered
number needs interventions), every figure known. One line per problem, naming file and line."""

from __future__ import annotations

from mazewb import analysis as an
from mazewb.app.state import ViewState, from_query, seed_maze
from mazewb.errors import MazewbError, user_message
from mazewb.lessons.format import Lesson, Step
from mazewb.lessons.render import FIGURES, step_figures
from mazewb.lessons.template import COMPARE, lookup, step_placeholders
from mazewb.maze import Maze
from mazewb.policy import HOOK_NAMES

NEEDS = {
    "steer": "interventions (cv, tv, rt with rtch or 'channels: top', ab or rs in its state)",
    "ds": "a decision square (the cheese off the path from the mouse to the top-right square)",
    "cheese": "a cheese",
    "retarget": "a retarget square (rt) with channels (rtch, or 'channels: top N')",
}


def lesson_problems(lesson: Lesson) -> list[str]:
    """Every problem of every step of ``lesson`` (empty: the lesson is valid)."""
    problems: list[str] = []
    for k, step in enumerate(lesson.steps, start=1):
        problems += [f"{lesson.source}:{step.line}: step {k} ({step.title}): {p}" for p in step_problems(step)]
    return problems


def view_problems(state: ViewState, maze: Maze) -> list[str]:
    """What is wrong with ``state``'s layers and interventions on ``maze``, found without running
    an agent (the layers are the IMPALA's hook points; vectors need source mazes with something
    to take the difference of; a retarget square must be open; resampling needs a source maze of
    the same size). One line each; empty when nothing is."""
    problems: list[str] = []
    for layer, what in ((state.layer, "layer"), (state.steer.layer, "steering layer (sl)")):
        if layer not in HOOK_NAMES:
            problems.append(f"the {what} {layer!r} is not a hook point of the IMPALA network")
    spec = state.steer
    if spec.retarget_square is not None and not maze.is_open(spec.retarget_square):
        problems.append(f"the retarget square {spec.retarget_square} is not an open square of the maze")
    if spec.cheese_coeff:
        src = maze if spec.cheese_source is None else seed_maze(spec.cheese_source)
        if src.cheese is None:
            problems.append("the cheese vector needs a source maze with a cheese")
    if spec.top_right_coeff:
        src = maze if spec.top_right_source is None else seed_maze(spec.top_right_source)
        if not an.top_right_corridor(src):
            problems.append(
                f"the top-right vector of a {src.size}x{src.size} maze is zero; "
                "take it from a smaller maze (tvsrc=SEED)"
            )
    if spec.resample_channels and seed_maze(spec.resample_source).size != maze.size:
        problems.append("resampling needs a source maze (rssrc) of the same size as the maze")
    return problems


def _state_problems(query: str, step: Step, label: str) -> tuple[ViewState | None, dict[str, bool], list[str]]:
    """The state ``query`` parses to (None if it does not), what it has, and its problems."""
    try:
        state = from_query(query)
    except MazewbError as exc:
        return None, {}, [f"{label}: {user_message(exc)}"]
    problems: list[str] = []
    if state.checkpoint != ViewState().checkpoint:
        problems.append(f"{label}: a lesson runs on the loaded agent; remove 'ckpt=' from it")
    try:
        maze = state.maze()
    except MazewbError as exc:
        return None, {}, problems + [f"{label}: {user_message(exc)}"]
    problems += [f"{label}: {p}" for p in view_problems(state, maze)]
    spec = state.steer
    have = {
        "steer": spec.active or (spec.retarget_square is not None and bool(step.channels)),
        "ds": an.decision_square(maze) is not None,
        "cheese": maze.cheese is not None,
        "retarget": spec.retarget_square is not None and bool(spec.retarget_channels or step.channels),
    }
    return state, have, problems


def step_problems(step: Step) -> list[str]:
    state, have, problems = _state_problems(step.state, step, "state")
    if state is None:
        return problems
    compare_have: dict[str, bool] | None = None
    if step.compare:
        other, compare_have, more = _state_problems(step.compare, step, "compare")
        problems += more
        if other is None:
            return problems
    names, _, text_problems = step_placeholders(step)
    problems += text_problems
    for name in names:
        if name.startswith(COMPARE) and compare_have is None:
            problems.append(f"{{{name}}} needs a 'compare:' state, which this step has not")
            continue
        got = compare_have if name.startswith(COMPARE) else have
        for need in sorted(lookup(name).needs):  # type: ignore[union-attr]
            if not got[need]:  # type: ignore[index]
                where = "compare state" if name.startswith(COMPARE) else "state"
                problems.append(f"{{{name}}} needs {NEEDS[need]}, which this step's {where} has not")
    for kind in step_figures(step, state):
        base = kind.removeprefix(COMPARE)
        got = compare_have if kind.startswith(COMPARE) else have
        if base not in FIGURES:
            problems.append(f"figures: unknown figure {kind!r}; known: {', '.join(FIGURES)}")
        elif got is None:
            problems.append(f"figures: {kind!r} needs a 'compare:' state")
        elif base in ("steered", "diff") and not got["steer"]:
            problems.append(f"figures: {kind!r} needs {NEEDS['steer']}")
        elif base == "grid" and not got["ds"]:
            problems.append(f"figures: {kind!r} needs {NEEDS['ds']}")
    return problems
