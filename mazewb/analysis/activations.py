"""Activations aligned to the maze: channel maps, their value at each square, differences.

Activation maps are (C, H, W) with rows top-down like the image (H = W = 64, 32, 16 or 8 by
layer). A maze square's value in a map is the value of the activation cell holding the square's
centre (``mazewb.maze.geometry.square_to_cell``): the map is many-to-one and not aligned with the
squares (a 16x16 cell spans about 1.56 tiles), so this is a nearest-cell sample, not an average.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mazewb.analysis.forward import DEFAULT_LAYER, Variant, activations_until, observations, to_input
from mazewb.errors import AnalysisError
from mazewb.maze.geometry import Square, cell_to_squares, square_to_cell
from mazewb.maze.grid import Maze
from mazewb.policy import ImpalaPolicy, run_with_hooks
from mazewb.policy.runtime import resolve_mode, runner


def activations(
    policy: ImpalaPolicy,
    maze: Maze,
    layers: Sequence[str],
    squares: Sequence[Square] | None = None,
    interventions: Variant = (),
    *,
    mode: str | None = None,
) -> dict[str, np.ndarray]:
    """float32 activations (N, *shape) at each of ``layers`` with the mouse on each of ``squares``
    (default: ``[maze.mouse]``), in one batch. With ``interventions`` the values are those after
    the interventions at or before each layer. ``mode`` as in
    ``mazewb.analysis.vector_fields`` (default ``"exact"``)."""
    squares = [maze.mouse] if squares is None else list(squares)
    x = to_input(policy, observations(maze, squares))
    if interventions:
        run = runner(policy, resolve_mode(mode))
        with run.autocast():
            _, _, cache = run_with_hooks(run.net, run.input(x), interventions, cache=list(layers))
    else:
        cache = activations_until(policy, x, list(layers), mode=mode, shared_background=True)
    return {name: cache[name].float().cpu().numpy() for name in layers}


def channel_maps(
    policy: ImpalaPolicy,
    maze: Maze,
    layer: str = DEFAULT_LAYER,
    square: Square | None = None,
    interventions: Variant = (),
    *,
    mode: str | None = None,
) -> np.ndarray:
    """float32 (C, H, W) maps of every channel of ``layer`` with the mouse on ``square``
    (default ``maze.mouse``); rows top-down like the image. ``mode`` as in ``activations``."""
    square = maze.mouse if square is None else square
    acts = activations(policy, maze, [layer], [square], interventions, mode=mode)[layer][0]
    if acts.ndim != 3:
        raise AnalysisError(f"{layer} is a flat layer with shape {acts.shape}; channel maps need a (C, H, W) layer")
    return acts


def square_cell(maze: Maze, square: Square, resolution: int) -> tuple[int, int]:
    """The activation cell ``(row, col)`` (rows top-down) of a ``resolution``-wide map that holds
    the centre of ``square``."""
    return square_to_cell(square, maze.size, resolution)


def cell_squares(maze: Maze, cell: tuple[int, int], resolution: int) -> list[Square]:
    """The maze squares whose centres fall in activation ``cell`` (empty for padding cells)."""
    return cell_to_squares(cell, maze.size, resolution)


def square_values(maze: Maze, amap: np.ndarray) -> np.ndarray:
    """Sample a map at every square: float64 (size, size) indexed ``[row, col]`` with row 0 the
    bottom row, each entry the value of the cell holding the square's centre; NaN on walls.

    ``amap``: (H, W) for one channel, or (C, H, W) for all (then the result is (C, size, size)).
    """
    amap = np.asarray(amap)
    single = amap.ndim == 2
    maps = amap[None] if single else amap
    resolution = maps.shape[-1]
    out = np.full((maps.shape[0], maze.size, maze.size), np.nan)
    for r, c in maze.open_cells():
        ar, ac = square_to_cell((r, c), maze.size, resolution)
        out[:, r, c] = maps[:, ar, ac]
    return out[0] if single else out


def activation_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` for two activation sets of the same shape (e.g. patched minus original maps)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"activation shapes differ: {a.shape} vs {b.shape}")
    return a - b
