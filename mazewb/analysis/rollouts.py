"""Sampled episodes in the real procgen game, for animation and to check the exact numbers.

``sample_rollouts`` plays ``n`` episodes of one maze side by side in a ``MazeVecEnv`` (procgen's
own game logic: walls, the cheese, the 500-step timeout, the sprite turning), choosing moves from
the policy's output on the game's own observations (with any interventions) or from a fixed table
of move probabilities per square. The mouse's square after every step is read back from the
game's state, so the trajectories are the game's, not a simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mazewb.analysis.forward import Variant, probs_from_logits, to_input
from mazewb.env import MAX_EPISODE_STEPS, MazeVecEnv
from mazewb.errors import AnalysisError, InterventionError
from mazewb.maze.bridge import maze_to_state_bytes
from mazewb.maze.geometry import Square, world_to_square
from mazewb.maze.graph import step
from mazewb.maze.grid import Maze
from mazewb.maze.procgen_state import parse_state
from mazewb.policy import CANONICAL_ACTION, MOVES, ImpalaPolicy, ReplaceChannels, run_with_hooks

_ACTIONS = np.array([CANONICAL_ACTION[m] for m in MOVES], dtype=np.int32)


@dataclass(frozen=True)
class Trajectory:
    """One episode: ``squares[t]`` is the mouse's square after t steps (``squares[0]`` the
    start), ``moves[t]`` the move index (``MOVES`` order) chosen at step t. ``reached_cheese``:
    the game paid the cheese reward (the episode's success); otherwise it timed out after 500."""

    squares: tuple[Square, ...]
    moves: tuple[int, ...]
    reached_cheese: bool

    @property
    def steps(self) -> int:
        return len(self.moves)

    def reached_first(self, square: Square, before: Square | None) -> bool:
        """True when the mouse stood on ``square`` before ever standing on ``before``."""
        for sq in self.squares:
            if sq == before:
                return False
            if sq == square:
                return True
        return False


Policy = ImpalaPolicy | np.ndarray


def _mouse_square(state: bytes, size: int) -> Square:
    mouse = parse_state(state).entities[0]
    return world_to_square((int(mouse["y"]), int(mouse["x"])), size)


def sample_rollouts(
    policy: Policy,
    maze: Maze,
    n_episodes: int,
    interventions: Variant = (),
    *,
    seed: int = 0,
    max_steps: int = MAX_EPISODE_STEPS,
    greedy: bool = False,
) -> list[Trajectory]:
    """Play ``n_episodes`` episodes of ``maze`` from ``maze.mouse`` in the real game, in parallel.

    ``policy``: an ``ImpalaPolicy`` (moves sampled from its move probabilities on each real
    observation, with ``interventions`` applied on every pass) or a fixed table: float (M, 5)
    move probabilities per square in ``maze.open_cells()`` order. ``max_steps`` below 500 stops
    early (such episodes count as not reaching the cheese). ``greedy``: always take the most
    likely move instead of sampling. Deterministic for a given ``seed``.
    """
    if n_episodes < 1:
        raise AnalysisError(f"n_episodes must be positive, got {n_episodes}")
    if isinstance(policy, np.ndarray):
        table = np.asarray(policy, dtype=np.float64)
        if table.shape != (len(maze.open_cells()), len(MOVES)):
            raise ValueError(f"a probability table must be ({len(maze.open_cells())}, 5), got {table.shape}")
        row_of = {sq: i for i, sq in enumerate(maze.open_cells())}
    else:
        table, row_of = None, {}
        for iv in interventions:
            if isinstance(iv, ReplaceChannels) and len(iv.source.shape) == len(policy.hook_points()[iv.hook]) + 1:
                raise InterventionError("per-item ReplaceChannels sources do not fit rollouts (the batch changes)")
    rng = np.random.default_rng(seed)
    env = MazeVecEnv(n_episodes, seed=seed)
    try:
        obs = env.set_states([maze_to_state_bytes(maze)] * n_episodes)
        squares: list[list[Square]] = [[maze.mouse] for _ in range(n_episodes)]
        moves: list[list[int]] = [[] for _ in range(n_episodes)]
        success = np.zeros(n_episodes, dtype=bool)
        alive = np.ones(n_episodes, dtype=bool)
        for _ in range(min(max_steps, MAX_EPISODE_STEPS)):
            idx = np.nonzero(alive)[0]
            if len(idx) == 0:
                break
            if table is not None:
                probs = table[[row_of[squares[i][-1]] for i in idx]]
            else:
                logits, _, _ = run_with_hooks(policy, to_input(policy, obs[idx]), interventions)
                probs = probs_from_logits(logits)
            if greedy:
                chosen = probs.argmax(axis=1)
            else:  # inverse-CDF sampling, one uniform per episode
                cdf = np.cumsum(probs, axis=1)
                chosen = np.minimum((cdf < rng.random(len(idx))[:, None] * cdf[:, -1:]).sum(axis=1), len(MOVES) - 1)
            actions = np.full(n_episodes, CANONICAL_ACTION["NOOP"], dtype=np.int32)
            actions[idx] = _ACTIONS[chosen]
            obs, _, terminated, truncated, _ = env.step(actions)
            states = env.get_states()
            for i, move in zip(idx, chosen, strict=True):
                moves[i].append(int(move))
                if terminated[i]:
                    # The game paid the reward: the mouse is on the cheese (and procgen has
                    # already moved on to a new level, so the state no longer shows this maze).
                    squares[i].append(maze.cheese)  # type: ignore[arg-type]
                    success[i] = True
                    alive[i] = False
                elif truncated[i]:
                    # Timed out: procgen has reset to a new level; the last move is applied by
                    # the game's rule (blocked moves stay) to record where the episode ended.
                    squares[i].append(step(maze, squares[i][-1], MOVES[move]))
                    alive[i] = False
                else:
                    squares[i].append(_mouse_square(states[i], maze.size))
    finally:
        env.close()
    return [Trajectory(tuple(s), tuple(m), bool(ok)) for s, m, ok in zip(squares, moves, success, strict=True)]


@dataclass(frozen=True)
class RolloutSummary:
    """Frequencies over sampled episodes, with their standard errors (binomial / of the mean).

    Same definitions as ``ExactOutcomes``: ``p_top_right`` counts episodes that stood on the
    top-right square before the cheese; ``mean_steps`` is the mean episode length."""

    n: int
    p_cheese: float
    p_top_right: float
    p_neither: float
    mean_steps: float
    se_cheese: float
    se_top_right: float
    se_steps: float


def summarize_rollouts(trajectories: Sequence[Trajectory], maze: Maze) -> RolloutSummary:
    """Outcome frequencies of sampled episodes of ``maze``."""
    n = len(trajectories)
    cheese = np.array([t.reached_cheese for t in trajectories], dtype=float)
    corner_counts = maze.top_right != maze.cheese and maze.is_open(maze.top_right)
    corner = np.array(
        [corner_counts and t.reached_first(maze.top_right, maze.cheese) for t in trajectories], dtype=float
    )
    cheese_first = np.array(
        [
            t.reached_cheese and not (corner_counts and t.reached_first(maze.top_right, maze.cheese))
            for t in trajectories
        ],
        dtype=float,
    )
    steps = np.array([t.steps for t in trajectories], dtype=float)

    def se(p: float) -> float:
        return float(np.sqrt(max(p * (1 - p), 1e-12) / n))

    return RolloutSummary(
        n=n,
        p_cheese=float(cheese.mean()),
        p_top_right=float(corner.mean()),
        p_neither=float(1.0 - corner.mean() - cheese_first.mean()),
        mean_steps=float(steps.mean()),
        se_cheese=se(float(cheese.mean())),
        se_top_right=se(float(corner.mean())),
        se_steps=float(steps.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
    )
