"""Vector fields: the policy's move probabilities with the mouse on every open square.

A vector field of a maze puts the mouse on every open square except the cheese's (rendered by
procgen, mouse facing left as at a level start), runs all of them in one batched forward pass and
reads the five move probabilities (LEFT, DOWN, UP, RIGHT, NOOP). Squares are ``(row, col)`` maze
squares, row 0 at the bottom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mazewb.analysis.forward import (
    BATCH_SIZE,
    Variant,
    mouse_states,
    move_probabilities_grouped,
    move_probabilities_variants,
    observations,
    observations_of_states,
    to_input,
)
from mazewb.errors import AnalysisError
from mazewb.maze.geometry import Square
from mazewb.maze.graph import decision_square, first_move_towards, optimal_moves
from mazewb.maze.grid import Maze
from mazewb.policy import MOVES, ImpalaPolicy

NOOP = MOVES.index("NOOP")


@dataclass(frozen=True, eq=False)
class VectorField:
    """Move probabilities at the open squares of ``maze`` (the cheese square excluded).

    ``cells``: int (N, 2) squares ``(row, col)``, in ``maze.open_cells()`` order.
    ``probs``: float64 (N, 5) probabilities of LEFT, DOWN, UP, RIGHT, NOOP at each square.
    """

    maze: Maze
    cells: np.ndarray
    probs: np.ndarray

    def index(self, square: Square) -> int:
        """Row of ``square`` in ``cells``; KeyError when it is not in the field."""
        hits = np.nonzero((self.cells[:, 0] == square[0]) & (self.cells[:, 1] == square[1]))[0]
        if len(hits) == 0:
            raise KeyError(f"square {tuple(square)} is not in the vector field (wall or cheese?)")
        return int(hits[0])

    def at(self, square: Square) -> np.ndarray:
        """(5,) move probabilities at ``square``."""
        return self.probs[self.index(square)]

    def net(self) -> np.ndarray:
        """(N, 2) net arrows ``(p_right - p_left, p_up - p_down)``: columns are the horizontal
        (towards higher col) and vertical (towards higher row) components, in squares per step
        ignoring walls (the literature's arrow)."""
        p = self.probs
        return np.stack([p[:, 3] - p[:, 0], p[:, 2] - p[:, 1]], axis=1)

    def chain_probs(self) -> np.ndarray:
        """(M, 5) probabilities for every open square in ``maze.open_cells()`` order, as the
        exact chain solver wants them (the cheese square, where the episode ends, gets NOOP)."""
        full = np.zeros((len(self.maze.open_cells()), len(MOVES)))
        full[:, NOOP] = 1.0
        where = {sq: i for i, sq in enumerate(self.maze.open_cells())}
        rows = [where[(int(r), int(c))] for r, c in self.cells]
        full[rows] = self.probs
        return full


def field_squares(maze: Maze) -> list[Square]:
    """The squares of a vector field: every open square but the cheese's, bottom row first."""
    return [sq for sq in maze.open_cells() if sq != maze.cheese]


def vector_fields(
    policy: ImpalaPolicy,
    maze: Maze,
    variants: Sequence[Variant],
    *,
    reuse: bool = True,
    fast: bool | None = None,
    batch_size: int = BATCH_SIZE,
    mode: str | None = None,
) -> list[VectorField]:
    """One vector field per variant (a list of interventions; ``()`` is the unpatched policy).

    The observations are rendered once; with ``reuse`` the layers before the earliest intervened
    hook point run once for all variants (exactly the same numbers as separate passes).
    ``mode``: ``"exact"`` (default: fp32 in the device's fastest exact layout, on a CPU with the
    first block recomputed only around each mouse; within 1e-5 of a plain fp32 NCHW pass),
    ``"fast"`` (the fastest path, maybe approximate: see ``fast_mode_error``), ``"bf16"`` or
    ``"reference"`` (plain fp32 NCHW). ``fast=True/False`` is the deprecated spelling of
    ``mode="bf16"/"exact"``.
    """
    squares = field_squares(maze)
    x = to_input(policy, observations(maze, squares))
    probs = move_probabilities_variants(
        policy, x, variants, reuse=reuse, fast=fast, mode=mode, batch_size=batch_size, shared_background=True
    )
    cells = np.array(squares, dtype=np.int64).reshape(-1, 2)
    return [VectorField(maze, cells, p) for p in probs]


def vector_field(
    policy: ImpalaPolicy,
    maze: Maze,
    interventions: Variant = (),
    *,
    fast: bool | None = None,
    mode: str | None = None,
) -> VectorField:
    """The policy's move probabilities on every open square of ``maze`` but the cheese's, in one
    batched forward pass, with ``interventions`` applied on every pass. ``mode`` as in
    ``vector_fields`` (default ``"exact"``; ``fast`` is its deprecated alias)."""
    return vector_fields(policy, maze, [tuple(interventions)], reuse=False, fast=fast, mode=mode)[0]


@dataclass(frozen=True, eq=False)
class VectorFieldDiff:
    """``patched - original`` on the squares both fields share.

    ``delta``: float64 (N, 5) probability differences; ``tv``: (N,) total-variation distance
    ``0.5 * sum |delta|`` per square (in [0, 1]).
    """

    maze: Maze
    cells: np.ndarray
    delta: np.ndarray
    tv: np.ndarray

    @property
    def mean_tv(self) -> float:
        """Mean over squares of the total-variation distance between the two move distributions."""
        return float(self.tv.mean()) if len(self.tv) else 0.0

    def net(self) -> np.ndarray:
        """(N, 2) difference of the net arrows (horizontal, vertical)."""
        d = self.delta
        return np.stack([d[:, 3] - d[:, 0], d[:, 2] - d[:, 1]], axis=1)


def vector_field_diff(patched: VectorField, original: VectorField) -> VectorFieldDiff:
    """Patched minus original, square by square (squares missing from either field are dropped,
    e.g. when the two mazes' cheeses differ)."""
    where = {(int(r), int(c)): i for i, (r, c) in enumerate(original.cells)}
    rows_p, rows_o = [], []
    for i, (r, c) in enumerate(patched.cells):
        j = where.get((int(r), int(c)))
        if j is not None:
            rows_p.append(i)
            rows_o.append(j)
    delta = patched.probs[rows_p] - original.probs[rows_o]
    return VectorFieldDiff(patched.maze, patched.cells[rows_p], delta, 0.5 * np.abs(delta).sum(axis=1))


@dataclass(frozen=True)
class DecisionChoice:
    """The policy at a maze's decision square.

    ``p_cheese``: probability of the first move towards the cheese; ``p_top_right``: of the
    first move towards the top-right square; ``p_other``: the rest (other moves and NOOP).
    """

    square: Square
    cheese_move: str
    top_right_move: str
    p_cheese: float
    p_top_right: float
    p_other: float

    @property
    def choice(self) -> str:
        """ "cheese", "top_right" or "other": whichever has the largest probability."""
        options = {"cheese": self.p_cheese, "top_right": self.p_top_right, "other": self.p_other}
        return max(options, key=options.__getitem__)


def decision_choice(maze: Maze, square: Square, probs: np.ndarray) -> DecisionChoice:
    """The choice at ``square``, a fork of the shortest paths to the cheese and to the top-right
    square (e.g. the decision square), given the (5,) move probabilities there."""
    if maze.cheese is None:
        raise AnalysisError("a decision needs a maze with a cheese")
    to_cheese = first_move_towards(maze, square, maze.cheese)
    to_corner = first_move_towards(maze, square, maze.top_right)
    if to_cheese is None or to_corner is None:
        raise AnalysisError(f"{tuple(square)} is not on the way to both the cheese and the top-right square")
    pc = float(probs[MOVES.index(to_cheese)])
    pt = float(probs[MOVES.index(to_corner)])
    return DecisionChoice(tuple(square), to_cheese, to_corner, pc, pt, max(0.0, 1.0 - pc - pt))


def step_probabilities(field: VectorField, goal: Square | None) -> np.ndarray:
    """(N,) P(the first move of the shortest path to ``goal``) at each square of ``field.cells``
    (NaN at the goal itself, where the goal cannot be reached, or when ``goal`` is None)."""
    out = np.full(len(field.cells), np.nan)
    if goal is None:
        return out
    moves = optimal_moves(field.maze, goal)
    for i, (r, c) in enumerate(field.cells):
        move = moves.get((int(r), int(c)))
        if move is not None:
            out[i] = field.probs[i, MOVES.index(move)]
    return out


def decision_probabilities(
    policy: ImpalaPolicy,
    mazes: Sequence[Maze],
    interventions: Variant = (),
    *,
    per_maze: Sequence[Variant] | None = None,
    batch_size: int = BATCH_SIZE,
    mode: str | None = None,
) -> list[DecisionChoice | None]:
    """P(cheese | decision square) and P(top-right | decision square) for many mazes at once.

    The observations at every maze's decision square are rendered and run in one batch (None
    for mazes without a decision square). ``interventions`` apply to all mazes; ``per_maze``
    optionally gives one extra variant per maze (e.g. each maze's own cheese vector): mazes
    sharing a variant share a pass, and the layers before the earliest hook run once.
    ``mode`` as in ``vector_fields``.
    """
    if per_maze is not None and len(per_maze) != len(mazes):
        raise ValueError(f"per_maze has {len(per_maze)} entries for {len(mazes)} mazes")
    todo = [(i, m, decision_square(m)) for i, m in enumerate(mazes)]
    todo = [(i, m, ds) for i, m, ds in todo if ds is not None]
    out: list[DecisionChoice | None] = [None] * len(mazes)
    if not todo:
        return out
    states = [s for _, m, ds in todo for s in mouse_states(m, [ds])]
    x = to_input(policy, observations_of_states(states))
    base = tuple(interventions)
    groups: dict[tuple, list[int]] = {}
    for row, (i, _, _) in enumerate(todo):
        extra = tuple(per_maze[i]) if per_maze is not None else ()
        groups.setdefault(base + extra, []).append(row)
    probs = move_probabilities_grouped(policy, x, groups, batch_size=batch_size, mode=mode)
    for row, (i, maze, ds) in enumerate(todo):
        out[i] = decision_choice(maze, ds, probs[row])
    return out


def vector_fields_of_mazes(
    policy: ImpalaPolicy,
    mazes: Sequence[Maze],
    interventions: Variant = (),
    *,
    batch_size: int = BATCH_SIZE,
    mode: str | None = None,
) -> list[VectorField]:
    """The vector field of each maze, all mazes' squares rendered together and run in batches of
    ``batch_size`` observations regardless of maze boundaries (the fast way over many mazes).
    ``interventions`` apply to every maze and must not hold per-item sources. ``mode`` as in
    ``vector_fields``."""
    squares = [field_squares(m) for m in mazes]
    states = [s for m, sq in zip(mazes, squares, strict=True) for s in mouse_states(m, sq)]
    if not states:
        return [VectorField(m, np.zeros((0, 2), dtype=np.int64), np.zeros((0, len(MOVES)))) for m in mazes]
    parts = []
    for begin in range(0, len(states), batch_size):
        x = to_input(policy, observations_of_states(states[begin : begin + batch_size]))
        parts.append(move_probabilities_variants(policy, x, [tuple(interventions)], reuse=False, mode=mode)[0])
    probs = np.concatenate(parts)
    out, lo = [], 0
    for m, sq in zip(mazes, squares, strict=True):
        cells = np.array(sq, dtype=np.int64).reshape(-1, 2)
        out.append(VectorField(m, cells, probs[lo : lo + len(sq)]))
        lo += len(sq)
    return out
