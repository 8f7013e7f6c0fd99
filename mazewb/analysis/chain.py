"""Exact outcomes of a maze episode as an absorbing Markov chain over the maze's open squares.

Given the policy's probabilities of the five moves (LEFT, DOWN, UP, RIGHT, NOOP) at every open
square, an episode is a Markov chain: a move into a wall leaves the mouse in place, the cheese
ends the episode, and the game stops after 500 steps. Everything here is exact arithmetic on
that finite-horizon chain (float64): no sampling.

Many chains are solved together: row k of the state matrix is the walk that stops at target k
(with its own absorbing squares and, optionally, its own move probabilities). One step moves the
probability mass of every chain with a gather over each square's incoming moves, so a step costs
about ``5 * K * N`` multiply-adds for K chains of N squares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mazewb.maze.geometry import Square
from mazewb.maze.graph import MOVE_DELTAS
from mazewb.maze.grid import Maze

MOVE_ORDER = ("LEFT", "DOWN", "UP", "RIGHT", "NOOP")
HORIZON = 500
_NEGLIGIBLE = 1e-15  # surviving mass below which further steps cannot change a result visibly


@dataclass(frozen=True)
class Chain:
    """The maze's transition structure: ``next_index[i, m]`` is the square reached from open
    square ``cells[i]`` by move ``m`` (canonical order); a blocked move stays at ``i``."""

    cells: tuple[Square, ...]
    next_index: np.ndarray  # (N, 5) int

    def index(self, square: Square) -> int:
        return self.cells.index(tuple(square))


def build_chain(maze: Maze) -> Chain:
    """The chain of ``maze``: its open squares in ``maze.open_cells()`` order and their moves."""
    cells = tuple(maze.open_cells())
    where = {sq: i for i, sq in enumerate(cells)}
    nxt = np.empty((len(cells), len(MOVE_ORDER)), dtype=np.int64)
    for i, (r, c) in enumerate(cells):
        for m, move in enumerate(MOVE_ORDER):
            dr, dc = MOVE_DELTAS[move]
            nxt[i, m] = where.get((r + dr, c + dc), i)
    return Chain(cells, nxt)


def _incoming(chain: Chain) -> tuple[np.ndarray, np.ndarray]:
    """For every square j and every move m, the square i that move m takes to j.

    Returns ``(source (5, N), stays (N, 5))``: ``source[m, j]`` is the neighbour i != j with
    ``next_index[i, m] == j`` (or N, a padding column that always holds zero mass, when there
    is none); moves 0-3 have at most one such neighbour on a grid. ``stays[i, m]`` is True when
    move m leaves square i where it is (NOOP or a blocked move).
    """
    n = len(chain.cells)
    source = np.full((len(MOVE_ORDER), n), n, dtype=np.int64)
    stays = chain.next_index == np.arange(n)[:, None]
    for m in range(len(MOVE_ORDER)):
        moving = ~stays[:, m]
        source[m, chain.next_index[moving, m]] = np.nonzero(moving)[0]
    return source, stays


def hitting_probabilities(
    chain: Chain,
    probs: np.ndarray,
    start: Square,
    targets: Sequence[Square],
    absorbing: Sequence[Square] = (),
    horizon: int = HORIZON,
    absorbing_per_target: Sequence[Sequence[Square]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each target X_k: P(the walk from ``start`` reaches X_k within ``horizon`` steps, before
    any of its absorbing squares), and E[min(steps until X_k or an absorbing square, horizon)].

    ``probs``: (N, 5) move probabilities, one row per square of ``chain.cells``, shared by all
    targets; or (K, N, 5), one table per target (e.g. a different intervention per target).
    ``absorbing``: squares that end every walk (e.g. the cheese); ``absorbing_per_target``:
    in addition, one list of such squares per target.
    A target equal to ``start`` is reached at step 0. Returns ``(p_reach (K,), expected_steps (K,))``.
    """
    n = len(chain.cells)
    k = len(targets)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape == (n, len(MOVE_ORDER)):
        probs = np.broadcast_to(probs, (k, n, len(MOVE_ORDER)))
    elif probs.shape != (k, n, len(MOVE_ORDER)):
        raise ValueError(f"probs must have shape ({n}, 5) or ({k}, {n}, 5), got {probs.shape}")
    if absorbing_per_target is not None and len(absorbing_per_target) != k:
        raise ValueError(f"absorbing_per_target needs one list per target: {len(absorbing_per_target)} for {k}")
    per_target = [
        [*absorbing, *(absorbing_per_target[row] if absorbing_per_target is not None else ())] for row in range(k)
    ]

    # Mass is stored square-major, (N + 1, K), so that gathering a square's incoming moves
    # copies contiguous rows (several times faster than gathering columns).
    # Absorbed mass (targets, absorbing squares) is removed by a 0/1 mask after every step.
    live = np.ones((n, k))
    cols = np.arange(k)
    tgt = np.array([chain.index(t) for t in targets], dtype=np.int64)
    for col, squares in enumerate(per_target):
        for sq in squares:
            live[chain.index(sq), col] = 0.0
    live[tgt, cols] = 0.0

    source, stays = _incoming(chain)
    probs_t = np.concatenate([probs.transpose(2, 1, 0), np.zeros((len(MOVE_ORDER), 1, k))], axis=1)
    # weight[m][j]: probability (per chain) that the walk at source[m, j] moves onto j with move m.
    weight = [probs_t[m][source[m]] for m in range(4)]
    stay = (probs * stays[None]).sum(axis=2).T

    dist = np.zeros((n + 1, k))  # row n: the always-empty padding square
    dist[chain.index(start)] = 1.0
    reached = dist[tgt, cols].copy()
    dist[:n] *= live
    alive_steps = np.zeros(k)
    for _ in range(horizon):
        mass = dist[:n].sum(axis=0)
        if mass.max() < _NEGLIGIBLE:
            break
        alive_steps += mass
        new = dist[:n] * stay
        for m in range(4):
            new += dist[source[m]] * weight[m]
        reached += new[tgt, cols]
        dist[:n] = new * live
    # Sums of 500 float64 steps can overshoot 1 by an ulp or two; probabilities stay in [0, 1].
    return np.clip(reached, 0.0, 1.0), alive_steps


OUTCOME_EVENTS: tuple[tuple[str, str], ...] = (
    ("p_cheese_direct", "reaches the cheese without visiting the top-right square first"),
    ("p_top_right_then_cheese", "visits the top-right square first, then reaches the cheese"),
    ("p_top_right_then_timeout", "visits the top-right square first, then times out"),
    ("p_neither", "times out without visiting either"),
)
"""The four ways an episode can end, as ``(ExactOutcomes field, plain-language label)``: every
episode ends in exactly one of them, so their probabilities add up to 1."""
OUTCOME_DEFINITION = (
    "An episode starts on the mouse's square, lasts at most 500 steps and ends when the mouse "
    "reaches the cheese. It ends in exactly one of the four ways listed, so they add up to 1. "
    '"Visits the top-right square first" means the mouse stands on the maze\'s top-right square '
    "(row size-1, column size-1) before it ever reaches the cheese; it may still reach the cheese "
    "afterwards. When the cheese is on the top-right square (or that square is a wall) the two "
    "top-right rows are 0."
)


@dataclass(frozen=True)
class ExactOutcomes:
    """Exact episode outcomes from ``maze.mouse`` under fixed move probabilities.

    The four mutually exclusive outcomes (they sum to 1, see ``OUTCOME_EVENTS``):
    ``p_cheese_direct``: reach the cheese within 500 steps without standing on the top-right
    square before; ``p_top_right_then_cheese``: stand on the top-right square, then reach the
    cheese, all within 500 steps; ``p_top_right_then_timeout``: stand on the top-right square,
    then time out; ``p_neither``: time out without standing on either.

    The older, overlapping summaries, kept for compatibility:
    ``p_cheese``: P(reach the cheese within 500 steps), the game's success
    (= direct + top-right then cheese).
    ``p_top_right``: P(reach the top-right square before the cheese, within 500 steps)
    (= top-right then cheese + top-right then timeout).
    ``p_timeout``: P(the episode times out: no cheese within 500 steps) = 1 - p_cheese.
    ``expected_steps``: expected episode length, E[min(steps to cheese, 500)].
    """

    p_cheese: float
    p_top_right: float
    p_neither: float
    p_timeout: float
    expected_steps: float
    # Defaults only so that older positional construction still works; NaN says "not computed".
    p_cheese_direct: float = math.nan
    p_top_right_then_cheese: float = math.nan
    p_top_right_then_timeout: float = math.nan

    def partition(self) -> dict[str, float]:
        """The four mutually exclusive outcomes, ``{label: probability}`` in ``OUTCOME_EVENTS``
        order; the values add up to 1 (to float rounding)."""
        return {label: float(getattr(self, name)) for name, label in OUTCOME_EVENTS}


def _partition_walk(
    chain: Chain, probs: np.ndarray, start: Square, cheese: Square | None, corner: Square | None, horizon: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """One exact walk over (square, has the mouse stood on ``corner`` yet): column 0 is the walk
    before the corner, column 1 after it; mass reaching the corner in column 0 moves to column
    1, mass reaching the cheese leaves the walk. Returns ``(reached_cheese (2,), still_walking
    (2,), expected_steps)`` by column. No mass is created or lost, so the four numbers add up
    to 1 by construction (not by subtraction)."""
    n = len(chain.cells)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (n, len(MOVE_ORDER)):
        raise ValueError(f"probs must have shape ({n}, 5), got {probs.shape}")
    source, stays = _incoming(chain)
    padded = np.concatenate([probs.T, np.zeros((len(MOVE_ORDER), 1))], axis=1)
    weight = [padded[m][source[m]][:, None] for m in range(4)]
    stay = (probs * stays).sum(axis=1)[:, None]
    c = chain.index(cheese) if cheese is not None else None
    t = chain.index(corner) if corner is not None else None
    s = chain.index(start)
    dist = np.zeros((n + 1, 2))  # row n: the always-empty padding square
    dist[s, 1 if s == t else 0] = 1.0
    ended = np.zeros(2)
    if s == c:  # the mouse starts on the cheese: the episode is over at step 0
        ended += dist[s]
        dist[s] = 0.0
    steps = 0.0
    for _ in range(horizon):
        mass = dist[:n].sum()
        if mass < _NEGLIGIBLE:
            break
        steps += mass
        new = dist[:n] * stay
        for m in range(4):
            new += dist[source[m]] * weight[m]
        if c is not None:
            ended += new[c]
            new[c] = 0.0
        if t is not None:
            new[t, 1] += new[t, 0]
            new[t, 0] = 0.0
        dist[:n] = new
    return ended, dist[:n].sum(axis=0), steps


def exact_outcomes(maze: Maze, probs: np.ndarray, chain: Chain | None = None, horizon: int = HORIZON) -> ExactOutcomes:
    """Solve the maze's chain exactly; ``probs`` (N, 5) rows follow ``maze.open_cells()``
    (a row for the cheese square, if present, is ignored)."""
    chain = chain or build_chain(maze)
    corner = maze.top_right
    cheese = maze.cheese
    corner_counts = maze.is_open(corner) and corner != cheese
    ended, walking, steps = _partition_walk(
        chain, probs, maze.mouse, cheese, corner if corner_counts else None, horizon
    )
    # Sums of 500 float64 steps can overshoot 1 by an ulp or two; probabilities stay in [0, 1].
    direct, corner_then_cheese = (float(v) for v in np.clip(ended, 0.0, 1.0))
    neither, corner_then_timeout = (float(v) for v in np.clip(walking, 0.0, 1.0))
    return ExactOutcomes(
        p_cheese=min(1.0, direct + corner_then_cheese),
        p_top_right=min(1.0, corner_then_cheese + corner_then_timeout),
        p_neither=neither,
        p_timeout=min(1.0, neither + corner_then_timeout),
        expected_steps=float(steps) if cheese is not None else float(horizon),
        p_cheese_direct=direct,
        p_top_right_then_cheese=corner_then_cheese,
        p_top_right_then_timeout=corner_then_timeout,
    )


def reach_probabilities(
    maze: Maze,
    probs: np.ndarray,
    chain: Chain | None = None,
    horizon: int = HORIZON,
    targets: Sequence[Square] | None = None,
) -> np.ndarray:
    """P(the mouse reaches each target square within the horizon) from ``maze.mouse``; the
    cheese ends the episode, so a square other than the cheese counts only if reached first.

    ``probs``: (N, 5) rows in ``maze.open_cells()`` order, or (K, N, 5) one table per target
    (retargeting: a different intervention per target). ``targets``: default every open square.
    Returns (K,) in target order.
    """
    chain = chain or build_chain(maze)
    targets = list(chain.cells) if targets is None else [tuple(t) for t in targets]
    cheese = maze.cheese
    absorbing = [[cheese] if cheese is not None and t != cheese else [] for t in targets]
    reach, _ = hitting_probabilities(chain, probs, maze.mouse, targets, horizon=horizon, absorbing_per_target=absorbing)
    return reach
