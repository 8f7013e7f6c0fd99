"""Exact episode outcomes under the policy, reach probabilities, and normalized path probabilities.

Once the policy's move probabilities at every open square are known (one vector field), an
episode from ``maze.mouse`` is an absorbing Markov chain, solved exactly by
``mazewb.analysis.chain`` (500-step horizon, blocked moves stay, the cheese ends the episode).
The chain ignores which way the mouse sprite faces (the field is rendered facing left, as at a
level start); in the real game the sprite flips after horizontal moves, a 2-pixel change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mazewb.analysis.chain import (
    HORIZON,
    OUTCOME_DEFINITION,
    OUTCOME_EVENTS,
    ExactOutcomes,
    build_chain,
    exact_outcomes,
    reach_probabilities,
)
from mazewb.analysis.forward import Variant
from mazewb.analysis.vfield import VectorField, vector_field
from mazewb.errors import MazeError
from mazewb.maze.geometry import Square
from mazewb.maze.graph import distances_from, optimal_moves, step
from mazewb.maze.grid import Maze
from mazewb.policy import MOVES, ImpalaPolicy

_OPPOSITE = {"LEFT": "RIGHT", "RIGHT": "LEFT", "UP": "DOWN", "DOWN": "UP"}

__all__ = [
    "OUTCOME_DEFINITION",
    "OUTCOME_EVENTS",
    "ExactOutcomes",
    "cheese_probability_from_each",
    "field_outcomes",
    "normalized_path_probabilities",
    "outcome_table",
    "outcomes",
    "outcomes_from_probs",
    "p_reach_target",
    "reach_map",
]


def outcomes_from_probs(maze: Maze, probs: np.ndarray, horizon: int = HORIZON) -> ExactOutcomes:
    """Exact outcomes from ``maze.mouse`` when the move probabilities are ``probs``: float
    (M, 5) rows in ``maze.open_cells()`` order, columns LEFT, DOWN, UP, RIGHT, NOOP (the row of
    the cheese square is ignored). Any fixed-probability policy, not just a network."""
    return exact_outcomes(maze, probs, horizon=horizon)


def field_outcomes(field: VectorField, horizon: int = HORIZON) -> ExactOutcomes:
    """Exact outcomes of the episode from ``field.maze.mouse`` under a vector field."""
    return exact_outcomes(field.maze, field.chain_probs(), horizon=horizon)


def outcomes(
    policy: ImpalaPolicy, maze: Maze, interventions: Variant = (), *, mode: str | None = None
) -> ExactOutcomes:
    """Exact P(cheese), P(top-right square before the cheese), P(neither), P(timeout) and the
    expected episode length (steps) from ``maze.mouse``, with ``interventions`` on every pass.
    Costs one vector field (one batched forward pass) plus a chain solve of a few milliseconds.
    ``mode`` as in ``vector_fields`` (default ``"exact"``: the chain is exact for the exact
    probabilities; with ``"fast"`` it inherits their measured error)."""
    return field_outcomes(vector_field(policy, maze, interventions, mode=mode))


def reach_map(field: VectorField, targets: Sequence[Square] | None = None) -> np.ndarray:
    """Exact P(the mouse, starting at ``maze.mouse``, reaches each target square within 500
    steps) under ``field``; the cheese ends the episode, so other squares count only when
    reached before it. ``targets`` default to every open square (``maze.open_cells()`` order)."""
    return reach_probabilities(field.maze, field.chain_probs(), targets=targets)


def p_reach_target(field: VectorField, target: Square, horizon: int = HORIZON) -> float:
    """Exact P(the mouse, from ``maze.mouse``, stands on ``target`` within ``horizon`` steps)
    under ``field`` (e.g. the patched field of a retargeting). The episode ends at the cheese,
    so a target other than the cheese counts only when reached before it; the start square
    itself counts at step 0 (1.0)."""
    maze = field.maze
    target = (int(target[0]), int(target[1]))
    if not maze.is_open(target):
        raise MazeError(f"target {target} is not an open square of the {maze.size}x{maze.size} maze")
    return float(reach_probabilities(maze, field.chain_probs(), horizon=horizon, targets=[target])[0])


def outcome_table(results: ExactOutcomes | Mapping[str, ExactOutcomes]) -> pd.DataFrame:
    """The four mutually exclusive outcomes (``OUTCOME_EVENTS``) as a table that adds up to 1:
    one row per outcome plus a ``total`` row, one column per result (``results``: one
    ``ExactOutcomes``, shown as column ``"P"``, or ``{name: outcomes}``, e.g. ``{"no patch":
    base, "patched": patched}``); the row labels are the plain-language outcomes.
    ``OUTCOME_DEFINITION`` says in words what "first" means; show it with the table."""
    named = {"P": results} if isinstance(results, ExactOutcomes) else dict(results)
    labels = [label for _, label in OUTCOME_EVENTS]
    table = pd.DataFrame(
        {name: [float(getattr(out, field)) for field, _ in OUTCOME_EVENTS] for name, out in named.items()},
        index=pd.Index(labels, name="outcome"),
    )
    table.loc["total"] = table.sum(axis=0)
    return table


def cheese_probability_from_each(field: VectorField, horizon: int = HORIZON) -> np.ndarray:
    """Exact P(reach the cheese within ``horizon`` steps) with the mouse starting on each square
    of ``field.cells`` (same order), by backward recursion on the chain: a value map of the
    episode's success. Zeros when the maze has no cheese."""
    maze = field.maze
    if maze.cheese is None:
        return np.zeros(len(field.cells))
    chain = build_chain(maze)
    probs = field.chain_probs()
    goal = chain.index(maze.cheese)
    # value[s] after t rounds: P(cheese within t steps from s); the cheese itself counts as reached.
    value = np.zeros(len(chain.cells))
    value[goal] = 1.0
    for _ in range(horizon):
        value = (probs * value[chain.next_index]).sum(axis=1)
        value[goal] = 1.0
    where = {sq: i for i, sq in enumerate(chain.cells)}
    return value[[where[(int(r), int(c))] for r, c in field.cells]]


def normalized_path_probabilities(field: VectorField, targets: Sequence[Square] | None = None) -> np.ndarray:
    """The literature's normalized path probability of each target: the geometric mean, along
    the shortest path from ``maze.mouse`` to the target, of the probability of the path's move
    at each square before the target (1.0 for the start itself, 0.0 when unreachable or when
    the path crosses the cheese, where the episode ends). ``targets`` default to every open
    square (``maze.open_cells()`` order)."""
    maze = field.maze
    targets = maze.open_cells() if targets is None else [tuple(t) for t in targets]
    probs = {(int(r), int(c)): field.probs[i] for i, (r, c) in enumerate(field.cells)}
    # optimal_moves(maze, start) gives every square's first move back towards the start, i.e.
    # its parent on the path; accumulate log-probabilities outwards in order of distance.
    dist = distances_from(maze, maze.mouse)
    towards_start = optimal_moves(maze, maze.mouse)
    log_sum: dict[Square, float] = {maze.mouse: 0.0}
    for square in sorted(dist, key=dist.__getitem__):
        if square == maze.mouse:
            continue
        back = towards_start[square]
        parent = step(maze, square, back)
        p = probs.get(parent)  # None at the cheese: the episode ends there
        forward = p[MOVES.index(_OPPOSITE[back])] if p is not None else 0.0
        log_sum[square] = log_sum[parent] + (math.log(forward) if forward > 0 else -math.inf)
    out = np.zeros(len(targets))
    for i, t in enumerate(targets):
        if t in log_sum:
            out[i] = 1.0 if dist[t] == 0 else math.exp(log_sum[t] / dist[t])
    return out
