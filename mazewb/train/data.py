"""Training batches built from whole known mazes, rendered by the real game.

A batch is a handful of procgen levels (hard mode). In each, the cheese is moved to a uniformly
random open square of the maze's top-right ``region x region`` (Langosco et al.'s ``rand_region``;
never the mouse's start square), and the mouse is rendered on every other open square, facing
left or right at random (the game sets the facing from the last horizontal move). Each square is
labelled with the first move of its shortest path to the cheese, and the batch carries each maze's
transition structure so the exact chain objective (``mazewb.train.exact``) can use it.

Batches are produced in worker processes (``BatchProducer``) so rendering overlaps with the
network's work in the training process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from mazewb.maze.bridge import make_procgen_env, maze_from_state
from mazewb.maze.geometry import Square
from mazewb.maze.graph import MOVE_DELTAS, optimal_moves, top_right_region
from mazewb.maze.grid import Maze
from mazewb.maze.procgen_state import parse_state
from mazewb.maze.render import Renderer

MOVE_ORDER = ("LEFT", "DOWN", "UP", "RIGHT", "NOOP")
HELD_OUT_SEEDS = 1_000_000
"""Level seeds below this are held out for evaluation; training never uses them."""
CHEESE = -1
"""``next_index`` entry for a move that reaches the cheese (the episode ends there)."""


def place_cheese(maze: Maze, region: int, rng: np.random.Generator) -> Maze:
    """``maze`` with the cheese on a uniformly random open square of its top-right
    ``region x region`` (``region=0``: the top-right square), never on the mouse's square."""
    if region <= 0:
        candidates = [maze.top_right] if maze.top_right != maze.mouse else []
    else:
        candidates = sorted(top_right_region(maze, region) - {maze.mouse})
    if not candidates:
        raise ValueError(f"no square for the cheese in the top-right {region}x{region} of a {maze.size} maze")
    return maze.with_cheese(candidates[int(rng.integers(len(candidates)))])


@dataclass(frozen=True)
class MazeBatch:
    """Observations of several whole mazes, concatenated.

    ``obs``: uint8 (N, 64, 64, 3), the mouse on every open non-cheese square of each maze.
    ``target``: int64 (N,) index (LEFT, DOWN, UP, RIGHT) of the first move towards the cheese.
    ``next_index``: int64 (N, 5) row reached by each move (LEFT, DOWN, UP, RIGHT, NOOP), a row of
    the same maze in this batch, or ``CHEESE``.
    ``starts``: int64 (M + 1,) row offsets: maze k owns rows ``starts[k]:starts[k+1]``.
    ``mouse``: int64 (M,) row of each maze's start square (bottom-left).
    ``sizes``: int64 (M,) maze sizes in squares.
    """

    obs: np.ndarray
    target: np.ndarray
    next_index: np.ndarray
    starts: np.ndarray
    mouse: np.ndarray
    sizes: np.ndarray

    @property
    def num_squares(self) -> int:
        return int(self.target.shape[0])

    @property
    def num_mazes(self) -> int:
        return int(self.sizes.shape[0])

    @property
    def groups(self) -> np.ndarray:
        """int64 (N,): the maze (0..M-1) of each row."""
        return np.repeat(np.arange(self.num_mazes, dtype=np.int64), np.diff(self.starts))


def maze_rows(maze: Maze) -> tuple[list[Square], np.ndarray, np.ndarray]:
    """The squares rendered for ``maze`` (open, not the cheese), their shortest-path move
    indices towards the cheese, and their (n, 5) local transition rows (``CHEESE`` for the cheese)."""
    assert maze.cheese is not None
    cells = [c for c in maze.open_cells() if c != maze.cheese]
    where = {c: i for i, c in enumerate(cells)}
    where[maze.cheese] = CHEESE
    best = optimal_moves(maze, maze.cheese)
    target = np.array([MOVE_ORDER.index(best[c]) for c in cells], dtype=np.int64)
    nxt = np.empty((len(cells), len(MOVE_ORDER)), dtype=np.int64)
    for i, (r, c) in enumerate(cells):
        for m, move in enumerate(MOVE_ORDER):
            dr, dc = MOVE_DELTAS[move]
            nxt[i, m] = where.get((r + dr, c + dc), i)
    return cells, target, nxt


def build_batch(
    mazes: list[Maze], renderer: Renderer, rng: np.random.Generator | None, facing_right: bool = False
) -> MazeBatch:
    """Render and label ``mazes`` (each with its cheese placed). Facing is random when ``rng`` is
    given, else ``facing_right`` for every square."""
    states, targets, nexts, starts, mouse, sizes = [], [], [], [0], [], []
    for maze in mazes:
        cells, target, nxt = maze_rows(maze)
        facing = rng.random(len(cells)) < 0.5 if rng is not None else facing_right
        states += renderer.states(maze, cells, facing)
        offset = starts[-1]
        nexts.append(np.where(nxt == CHEESE, CHEESE, nxt + offset))
        targets.append(target)
        mouse.append(offset + cells.index(maze.mouse))
        starts.append(offset + len(cells))
        sizes.append(maze.size)
    return MazeBatch(
        # One rendering call for all mazes: the env pool is used in full batches.
        obs=renderer.observations_from_states(states),
        target=np.concatenate(targets),
        next_index=np.concatenate(nexts),
        starts=np.array(starts, dtype=np.int64),
        mouse=np.array(mouse, dtype=np.int64),
        sizes=np.array(sizes, dtype=np.int64),
    )


def random_levels(rng: np.random.Generator, count: int = 64) -> list[Maze]:
    """``count`` random procgen hard-mode levels (unlimited-levels distribution), skipping the
    held-out seeds below ``HELD_OUT_SEEDS``. About 0.4 ms per level."""
    env = make_procgen_env(
        num=count, env_name="maze", distribution_mode="hard", start_level=0, num_levels=0,
        rand_seed=int(rng.integers(2**31 - 1)),
    )
    try:
        states = env.callmethod("get_state")
    finally:
        env.close()
    out = []
    for data in states:
        st = parse_state(data)
        seed = int(st.scalars["current_level_seed"])
        if seed >= HELD_OUT_SEEDS:
            out.append(maze_from_state(st, seed=seed))
    return out


def keep_probability(size: int, large_maze_bias: float) -> float:
    """Probability of training on a level of ``size`` squares: ``(size / 25) ** large_maze_bias``
    (0: every level, procgen's own size distribution; 2: a 13x13 maze is kept 27% of the time)."""
    return (size / 25) ** large_maze_bias


def training_levels(
    rng: np.random.Generator,
    region: int,
    batch_squares: int,
    max_size: Callable[[], int] = lambda: 25,
    large_maze_bias: float = 0.0,
) -> Iterator[list[Maze]]:
    """Endless lists of training mazes, each of at least ``batch_squares`` rendered squares: random
    levels no larger than ``max_size()`` (read per draw of 64 levels, so a curriculum can grow it),
    kept with ``keep_probability``, the cheese placed in the top-right ``region``. The trainer's
    workers and ``mazewb bench-train`` draw their batches here."""
    pending: list[Maze] = []
    squares = 0
    while True:
        limit = max_size()
        for maze in random_levels(rng):
            if maze.size > limit or maze.size < 2:
                continue
            if large_maze_bias and rng.random() >= keep_probability(maze.size, large_maze_bias):
                continue
            maze = place_cheese(maze, region, rng)
            pending.append(maze)
            squares += len(maze.open_cells()) - 1
            if squares >= batch_squares:
                yield pending
                pending, squares = [], 0


def _produce(
    out: mp.Queue,  # type: ignore[valid-type]
    seed: int,
    region: int,
    batch_squares: int,
    max_size: mp.Value,  # type: ignore[valid-type]
    stop: mp.Event,  # type: ignore[valid-type]
    large_maze_bias: float = 0.0,
) -> None:
    """Worker loop: fill ``out`` with MazeBatch objects until ``stop`` is set."""
    import torch

    torch.set_num_threads(1)  # the worker renders; the training process owns the cores' math
    rng = np.random.default_rng(seed)
    renderer = Renderer(batch=64)
    parent = os.getppid()
    for pending in training_levels(rng, region, batch_squares, lambda: int(max_size.value), large_maze_bias):
        if stop.is_set() or os.getppid() != parent:  # also end when the trainer died
            break
        batch = build_batch(pending, renderer, rng)
        while not stop.is_set() and os.getppid() == parent:
            try:
                out.put(batch, timeout=0.5)
                break
            except queue.Full:
                continue
    renderer.close()


class BatchProducer:
    """Worker processes producing ``MazeBatch`` objects into a bounded queue.

    ``max_size`` (the curriculum's largest maze size) can be changed while running; batches
    already queued keep their mazes. ``seed`` makes each worker's stream deterministic.
    ``large_maze_bias`` > 0 trains more on large mazes (see ``keep_probability``).
    """

    def __init__(
        self,
        seed: int,
        region: int,
        batch_squares: int,
        max_size: int = 25,
        workers: int = 1,
        queue_size: int = 6,
        large_maze_bias: float = 0.0,
    ) -> None:
        ctx = mp.get_context("spawn")  # procgen and torch threads do not survive fork well
        self._queue: mp.Queue = ctx.Queue(maxsize=queue_size)
        self._max_size = ctx.Value("i", max_size)
        self._stop = ctx.Event()
        self._procs = [
            ctx.Process(
                target=_produce,
                args=(
                    self._queue, seed * 1000 + i, region, batch_squares, self._max_size, self._stop, large_maze_bias
                ),
                daemon=True,
            )
            for i in range(workers)
        ]
        for p in self._procs:
            p.start()

    def set_max_size(self, size: int) -> None:
        self._max_size.value = int(size)

    def get(self, timeout: float = 300.0) -> MazeBatch:
        """The next batch; raises RuntimeError if the workers died."""
        while True:
            try:
                return self._queue.get(timeout=min(timeout, 5.0))
            except queue.Empty:
                if not any(p.is_alive() for p in self._procs):
                    raise RuntimeError("all batch workers died (see stderr)") from None
                timeout -= 5.0
                if timeout <= 0:
                    raise RuntimeError("timed out waiting for a training batch") from None

    def close(self) -> None:
        self._stop.set()
        try:  # drain so the workers' final put() calls return
            while True:
                self._queue.get_nowait()
        except (queue.Empty, OSError, ValueError):
            pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._queue.close()
