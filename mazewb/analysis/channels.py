"""Finding the channels that track the cheese, for any checkpoint.

Over many random procgen levels (mouse at its start, cheese wherever the level put it), each
channel of a layer is scored on how well its map follows the cheese's activation cell (the cell
holding the cheese square's centre, ``mazewb.maze.geometry.square_to_cell``):

- ``corr``: mean over mazes of the Pearson correlation between the channel's (H x W) map and
  the one-hot map of the cheese cell (1 when the map peaks at exactly that cell and is flat
  elsewhere; 0 for a map that ignores the cheese).
- ``argmax_hit``: fraction of mazes whose map's largest value lies within one cell (Chebyshev)
  of the cheese cell; chance is about 9 / (number of cells inside the maze).
- ``contrast``: mean over mazes of (value at the cheese cell - mean of the map), in the
  layer's activation units.

Levels where the cheese's cell lies within one cell of the mouse's are skipped, so channels
that follow the mouse are not mistaken for cheese channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mazewb.analysis.forward import (
    BATCH_SIZE,
    DEFAULT_LAYER,
    activations_until,
    mouse_states,
    observations_of_states,
    to_input,
)
from mazewb.errors import AnalysisError
from mazewb.executor import Executor, LocalExecutor, chunked
from mazewb.maze.geometry import square_to_cell
from mazewb.maze.grid import Maze
from mazewb.policy import ImpalaPolicy


def cheese_tracking_mazes(seeds: Sequence[int], resolution: int) -> list[Maze]:
    """The levels among ``seeds`` whose cheese cell is more than one cell from the mouse's."""
    out = []
    for s in seeds:
        maze = Maze.from_seed(int(s))
        if maze.cheese is None:
            continue
        cr, cc = square_to_cell(maze.cheese, maze.size, resolution)
        mr, mc = square_to_cell(maze.mouse, maze.size, resolution)
        if max(abs(cr - mr), abs(cc - mc)) > 1:
            out.append(maze)
    return out


def rank_cheese_channels(
    policy: ImpalaPolicy,
    layer: str = DEFAULT_LAYER,
    seeds: Sequence[int] = range(200),
    *,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    executor: Executor | None = None,
    seeds_per_chunk: int = 64,
) -> pd.DataFrame:
    """Score every channel of ``layer`` on tracking the cheese over the levels ``seeds``.

    Returns one row per channel, best first (by ``corr``): ``channel``, ``corr``,
    ``argmax_hit``, ``contrast``, and ``n_mazes`` (levels used): the means over levels of
    ``channel_batch``'s rows, which ``executor`` computes in chunks of ``seeds_per_chunk`` seeds.
    """
    shape = policy.hook_points()[layer]
    if len(shape) != 3:
        raise AnalysisError(f"{layer} is flat {shape}: channel ranking needs a (C, H, W) layer")
    executor = executor or LocalExecutor()
    chunks = chunked([int(s) for s in seeds], seeds_per_chunk)
    parts = executor.map(
        channel_batch, policy, chunks, desc="ranking channels", progress=progress, layer=layer, batch_size=batch_size
    )
    per_maze = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if per_maze.empty:
        raise AnalysisError("no usable levels among the seeds (cheese too close to the mouse in all)")
    table = per_maze.groupby("channel", sort=True)[["corr", "argmax_hit", "contrast"]].mean().reset_index()
    table["n_mazes"] = per_maze["seed"].nunique()
    return table.sort_values("corr", ascending=False, kind="stable").reset_index(drop=True)


def channel_batch(
    policy: ImpalaPolicy, seeds: Sequence[int], *, layer: str = DEFAULT_LAYER, batch_size: int = BATCH_SIZE
) -> pd.DataFrame:
    """The unit of work of ``rank_cheese_channels``: one row per (usable level among ``seeds``,
    channel of ``layer``) with ``seed``, ``channel``, ``corr``, ``argmax_hit`` (0 or 1) and
    ``contrast`` of that level's map. The pass stops at ``layer``."""
    n_channels, _, width = policy.hook_points()[layer]
    mazes = cheese_tracking_mazes(list(seeds), width)
    parts = []
    for lo in range(0, len(mazes), batch_size):
        chunk = mazes[lo : lo + batch_size]
        states = [s for m in chunk for s in mouse_states(m, [m.mouse])]
        x = to_input(policy, observations_of_states(states))
        acts = activations_until(policy, x, [layer], batch_size=batch_size)[layer].double().cpu().numpy()
        cells = np.array([square_to_cell(m.cheese, m.size, width) for m in chunk])  # type: ignore[arg-type]
        scores = channel_scores_per_maze(acts, cells)  # (M, 3, C)
        parts.append(
            pd.DataFrame(
                {
                    "seed": np.repeat([m.seed for m in chunk], n_channels),
                    "channel": np.tile(np.arange(n_channels), len(chunk)),
                    "corr": scores[:, 0].ravel(),
                    "argmax_hit": scores[:, 1].ravel(),
                    "contrast": scores[:, 2].ravel(),
                }
            )
        )
    columns = ["seed", "channel", "corr", "argmax_hit", "contrast"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def channel_scores(acts: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Mean ``corr``, ``argmax_hit`` and ``contrast`` (rows of the result, (3, C)) of activation
    maps ``acts`` (M, C, H, W) against the cheese cells ``cells`` (M, 2) ``(row, col)``."""
    return channel_scores_per_maze(acts, cells).mean(axis=0)


def channel_scores_per_maze(acts: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """``corr``, ``argmax_hit`` and ``contrast`` of each map: (M, 3, C) for ``acts`` (M, C, H, W)
    and the cheese cells ``cells`` (M, 2) ``(row, col)``."""
    m, c, height, width = acts.shape
    flat = acts.reshape(m, c, height * width).astype(np.float64)
    at = flat[np.arange(m), :, cells[:, 0] * width + cells[:, 1]]  # (M, C)
    mean = flat.mean(axis=2)
    centred_at = at - mean
    # Pearson correlation with a one-hot map: (a_k - mean) / (||a - mean|| * sqrt(1 - 1/HW)).
    norm = np.sqrt(((flat - mean[:, :, None]) ** 2).sum(axis=2)) * np.sqrt(1.0 - 1.0 / (height * width))
    corr = np.where(norm > 0, centred_at / np.where(norm > 0, norm, 1.0), 0.0)
    peak = flat.argmax(axis=2)
    near = (np.abs(peak // width - cells[:, :1]) <= 1) & (np.abs(peak % width - cells[:, 1:]) <= 1)
    return np.stack([corr, near.astype(np.float64), centred_at], axis=1)
