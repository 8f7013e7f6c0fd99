"""Exact outcomes of a maze episode as an absorbing Markov chain over the maze's open squares.

Given the policy's probabilities of the five moves (LEFT, DOWN, UP, RIGHT, NOOP) at every open
square, an episode is a Markov chain: a move into a wall leaves the mouse in place, the cheese
ends the episode, and the game stops after 500 steps. Everything here is exact arithmetic on
that finite-horizon chain: no sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mazewb.maze.geometry import Square
from mazewb.maze.graph import MOVE_DELTAS
from mazewb.maze.grid import Maze

MOVE_ORDER = ("LEFT", "DOWN", "UP", "RIGHT", "NOOP")
HORIZON = 500


@dataclass(frozen=True)
class Chain:
    """The maze's transition structure: ``next_index[i, m]`` is the square reached from open
    square ``cells[i]`` by move ``m`` (canonical order)."""

    cells: tuple[Square, ...]
    next_index: np.ndarray  # (N, 5) int

    def index(self, square: Square) -> int:
        return self.cells.index(tuple(square))


def build_chain(maze: Maze) -> Chain:
    cells = tuple(maze.open_cells())
    where = {sq: i for i, sq in enumerate(cells)}
    nxt = np.empty((len(cells), len(MOVE_ORDER)), dtype=np.int64)
    for i, (r, c) in enumerate(cells):
        for m, move in enumerate(MOVE_ORDER):
            dr, dc = MOVE_DELTAS[move]
            nxt[i, m] = where.get((r + dr, c + dc), i)
    return Chain(cells, nxt)


def hitting_probabilities(
    chain: Chain,
    probs: np.ndarray,
    start: Square,
    targets: list[Square],
    absorbing: list[Square] = (),  # type: ignore[assignment]
    horizon: int = HORIZON,
) -> tuple[np.ndarray, np.ndarray]:
    """For each target X: P(the walk from ``start`` reaches X within ``horizon`` steps, before
    any square in ``absorbing``), and the expected number of steps until X or the horizon.

    ``probs`` is (N, 5), one row per square of ``chain.cells`` (rows at absorbing squares are
    ignored). All targets are solved together: row k of the state matrix holds the walk that
    stops at target k. Returns ``(p_reach (K,), expected_steps (K,))``.
    """
    n = len(chain.cells)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (n, len(MOVE_ORDER)):
        raise ValueError(f"probs must have shape ({n}, 5), got {probs.shape}")
    k = len(targets)
    tgt = np.array([chain.index(t) for t in targets], dtype=np.int64)
    dist = np.zeros((k, n))
    dist[:, chain.index(start)] = 1.0
    absorbed_idx = [chain.index(a) for a in absorbing]
    reached = np.zeros(k)
    alive_steps = np.zeros(k)
    rows = np.arange(k)
    flat_next = chain.next_index.ravel()
    # A target reached at step 0 (the start itself) counts as reached in 0 steps.
    reached += dist[rows, tgt]
    dist[rows, tgt] = 0.0
    dist[:, absorbed_idx] = 0.0
    for _ in range(horizon):
        alive_steps += dist.sum(axis=1)
        flow = dist[:, :, None] * probs[None, :, :]  # (K, N, 5)
        new = _scatter(flow.reshape(k, -1), flat_next, n)
        reached += new[rows, tgt]
        new[rows, tgt] = 0.0
        new[:, absorbed_idx] = 0.0
        dist = new
    return reached, alive_steps


def _scatter(flow: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """``out[k, j] = sum of flow[k, i] over i with index[i] == j`` (a batched bincount)."""
    k = flow.shape[0]
    offset = (np.arange(k)[:, None] * n + index[None, :]).ravel()
    return np.bincount(offset, weights=flow.ravel(), minlength=k * n).reshape(k, n)


@dataclass(frozen=True)
class ExactOutcomes:
    """Exact episode outcomes from ``maze.mouse`` under fixed move probabilities.

    ``p_cheese``: P(reach the cheese within 500 steps), the game's success.
    ``p_top_right``: P(reach the top-right square before the cheese, within 500 steps).
    ``p_neither``: P(neither the cheese nor the top-right square within 500 steps).
    ``p_timeout``: P(the episode times out: no cheese within 500 steps) = 1 - p_cheese.
    ``expected_steps``: expected episode length, E[min(steps to cheese, 500)].
    """

    p_cheese: float
    p_top_right: float
    p_neither: float
    p_timeout: float
    expected_steps: float


def exact_outcomes(maze: Maze, probs: np.ndarray, chain: Chain | None = None, horizon: int = HORIZON) -> ExactOutcomes:
    """Solve the maze's chain exactly; ``probs`` (N, 5) rows follow ``maze.open_cells()``
    (a row for the cheese square, if present, is ignored)."""
    chain = chain or build_chain(maze)
    corner = maze.top_right
    if maze.cheese is None:
        p_cheese, steps = 0.0, float(horizon)
    else:
        reach, alive = hitting_probabilities(chain, probs, maze.mouse, [maze.cheese], horizon=horizon)
        p_cheese, steps = float(reach[0]), float(alive[0])
    if maze.is_open(corner) and corner != maze.cheese:
        blockers = [maze.cheese] if maze.cheese is not None else []
        p_corner = float(hitting_probabilities(chain, probs, maze.mouse, [corner], blockers, horizon)[0][0])
        if maze.cheese is not None:
            both = hitting_probabilities(chain, probs, maze.mouse, [maze.cheese], [corner], horizon)[0][0]
        else:
            both = 0.0
    else:
        p_corner, both = 0.0, p_cheese
    return ExactOutcomes(
        p_cheese=p_cheese,
        p_top_right=p_corner,
        p_neither=max(0.0, 1.0 - p_corner - float(both)),
        p_timeout=1.0 - p_cheese,
        expected_steps=steps,
    )


def reach_probabilities(maze: Maze, probs: np.ndarray, chain: Chain | None = None, horizon: int = HORIZON) -> np.ndarray:
    """P(reach each open square within the horizon) from ``maze.mouse``, the cheese ending the
    episode (so squares beyond it are reached only by walks that avoid it). Returns (N,) in
    ``maze.open_cells()`` order."""
    chain = chain or build_chain(maze)
    blockers = [maze.cheese] if maze.cheese is not None else []
    targets = list(chain.cells)
    out = np.zeros(len(targets))
    reach, _ = hitting_probabilities(chain, probs, maze.mouse, targets, [], horizon)
    if blockers:
        # Walks that would pass through the cheese end there: recompute with it absorbing,
        # except for the cheese itself.
        others = [t for t in targets if t != maze.cheese]
        r2, _ = hitting_probabilities(chain, probs, maze.mouse, others, blockers, horizon)
        out[[targets.index(t) for t in others]] = r2
        out[targets.index(maze.cheese)] = reach[targets.index(maze.cheese)]
        return out
    return reach
