"""procgen's 15 maze actions collapsed to 5 moves.

In procgen's maze a horizontal component wins over a vertical one, so the 15 actions act as
only five distinct moves (see reference/MAZE.md, "Actions"). The canonical move order everywhere
in mazewb is ``LEFT, DOWN, UP, RIGHT, NOOP``. The probability of a move is the sum of the
probabilities of its action indices under the full 15-way softmax.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

MOVES: tuple[str, ...] = ("LEFT", "DOWN", "UP", "RIGHT", "NOOP")
"""The five moves in canonical order; move index i is ``MOVES[i]``."""

NUM_ACTIONS = 15
"""Number of procgen actions (logits per observation)."""

MOVE_ACTIONS: dict[str, tuple[int, ...]] = {
    "LEFT": (0, 1, 2),
    "DOWN": (3,),
    "UP": (5,),
    "RIGHT": (6, 7, 8),
    "NOOP": (4, 9, 10, 11, 12, 13, 14),
}
"""procgen action indices that produce each move."""

CANONICAL_ACTION: dict[str, int] = {"LEFT": 1, "DOWN": 3, "UP": 5, "RIGHT": 7, "NOOP": 4}
"""One representative procgen action per move, used to step the environment."""

ACTION_TO_MOVE: tuple[int, ...] = tuple(
    next(m for m, name in enumerate(MOVES) if a in MOVE_ACTIONS[name]) for a in range(NUM_ACTIONS)
)
"""Move index (into ``MOVES``) of each of the 15 procgen actions."""


def _action_move_matrix() -> np.ndarray:
    """(15, 5) float32 0/1 matrix: entry [a, m] is 1 when action a produces move m."""
    matrix = np.zeros((NUM_ACTIONS, len(MOVES)), dtype=np.float32)
    for action, move in enumerate(ACTION_TO_MOVE):
        matrix[action, move] = 1.0
    return matrix


ACTION_MOVE_MATRIX: np.ndarray = _action_move_matrix()
ACTION_MOVE_MATRIX.flags.writeable = False

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def move_probs(logits: ArrayOrTensor) -> ArrayOrTensor:
    """Move probabilities from action logits.

    ``logits``: (..., 15) action logits, a torch tensor or a numpy array. Returns (..., 5)
    probabilities in ``MOVES`` order, the same type as the input (a tensor stays on its
    device), each row summing to 1 up to float rounding. Computed in float32 (or float64 if
    the input is float64) from the full 15-way softmax.
    """
    if logits.shape[-1] != NUM_ACTIONS:
        raise ValueError(
            f"move_probs expects logits of shape (..., {NUM_ACTIONS}), got {tuple(logits.shape)}"
        )
    if isinstance(logits, np.ndarray):
        dtype = np.float64 if logits.dtype == np.float64 else np.float32
        z = logits.astype(dtype, copy=False)
        z = z - z.max(axis=-1, keepdims=True)  # stable softmax
        p = np.exp(z)
        p /= p.sum(axis=-1, keepdims=True)
        return p @ ACTION_MOVE_MATRIX.astype(dtype)
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    p = torch.softmax(logits.to(dtype), dim=-1)
    matrix = torch.tensor(ACTION_MOVE_MATRIX, dtype=dtype, device=logits.device)
    return p @ matrix
