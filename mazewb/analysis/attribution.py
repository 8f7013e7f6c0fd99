"""Attribution: integrated gradients of a move's probability with respect to a layer's activations.

For the mouse on one square, the activation ``a`` at ``layer`` is moved along the straight line from
a baseline ``b`` to ``a``; the gradient of P(move) with respect to the activation is integrated
along that line (Gauss-Legendre quadrature) and multiplied by ``a - b``. The result has the
layer's shape, and its sum equals ``P(move | a) - P(move | b)`` up to the quadrature error
(completeness; ``Attribution.delta`` reports the gap). This is captum's ``LayerIntegratedGradients``
on the layer's output, computed with the policy's own staged forward pass.

Baselines: ``"no-cheese"`` (the activation of the same maze without the cheese, mouse on the same
square: what the cheese's presence contributes), ``"zero"`` (all-zero activations), or another
``Maze`` of the same size (its activation with the mouse on the same square).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mazewb.analysis.forward import DEFAULT_LAYER, activations_until, observations, to_input
from mazewb.errors import AnalysisError
from mazewb.maze.geometry import Square
from mazewb.maze.grid import Maze
from mazewb.policy import CUT_POINTS, HOOK_NAMES, MOVES, ImpalaPolicy, move_probs

BASELINES = ("no-cheese", "zero")
DEFAULT_STEPS = 32


@dataclass(frozen=True)
class Attribution:
    """Integrated gradients of P(``move``) at ``layer`` with the mouse on ``square``.

    ``values``: float64 attributions with the layer's shape ((C, H, W) maps, rows top-down, or
    a flat vector). ``prob`` / ``baseline_prob``: P(move) at the activation and at the baseline.
    """

    layer: str
    move: str
    square: Square
    baseline: str
    steps: int
    values: np.ndarray
    prob: float
    baseline_prob: float

    @property
    def delta(self) -> float:
        """Completeness gap: sum of attributions minus ``prob - baseline_prob`` (0 when exact)."""
        return float(self.values.sum() - (self.prob - self.baseline_prob))

    def spatial(self) -> np.ndarray:
        """(H, W) attribution of each activation cell, summed over channels."""
        if self.values.ndim != 3:
            raise AnalysisError(f"{self.layer} is a flat layer; it has no spatial map")
        return self.values.sum(axis=0)

    def channel_totals(self) -> np.ndarray:
        """(C,) attribution of each channel (summed over its cells), or the flat values."""
        return self.values.reshape(self.values.shape[0], -1).sum(axis=1)


def _layer_activation(policy: ImpalaPolicy, maze: Maze, square: Square, layer: str) -> torch.Tensor:
    x = to_input(policy, observations(maze, [square]))
    return activations_until(policy, x, [layer])[layer].float()


def _baseline_activation(
    policy: ImpalaPolicy, maze: Maze, square: Square, layer: str, baseline: str | Maze, act: torch.Tensor
) -> tuple[torch.Tensor, str]:
    if isinstance(baseline, Maze):
        if baseline.size != maze.size:
            raise AnalysisError(
                f"the baseline maze is {baseline.size}x{baseline.size}, the maze {maze.size}x{maze.size}"
            )
        if not baseline.is_open(square):
            raise AnalysisError(f"square {square} is a wall in the baseline maze")
        return _layer_activation(policy, baseline, square, layer), "maze"
    if baseline == "zero":
        return torch.zeros_like(act), baseline
    if baseline == "no-cheese":
        if maze.cheese is None:
            raise AnalysisError("the maze has no cheese, so the 'no-cheese' baseline equals the input; pick another")
        return _layer_activation(policy, maze.without_cheese(), square, layer), baseline
    raise AnalysisError(f"baseline must be a Maze or one of {BASELINES}, got {baseline!r}")


def integrated_gradients(
    policy: ImpalaPolicy,
    maze: Maze,
    layer: str = DEFAULT_LAYER,
    square: Square | None = None,
    move: str | None = None,
    baseline: str | Maze = "no-cheese",
    steps: int = DEFAULT_STEPS,
) -> Attribution:
    """Integrated gradients of P(``move``) (default: the policy's most likely move) with respect to
    the activation at ``layer`` with the mouse on ``square`` (default ``maze.mouse``), from
    ``baseline`` to the actual activation, with ``steps`` quadrature points. Always fp32."""
    if layer not in HOOK_NAMES:
        raise AnalysisError(f"unknown layer {layer!r}; see policy.hook_points()")
    if not isinstance(steps, int) or not 1 <= steps <= 512:
        raise AnalysisError(f"steps must be an integer from 1 to 512, got {steps!r}")
    if move is not None and move not in MOVES:
        raise AnalysisError(f"move must be one of {MOVES}, got {move!r}")
    square = maze.mouse if square is None else square
    if not maze.is_open(square):
        raise AnalysisError(f"square {square} is not an open square of the maze")
    x = to_input(policy, observations(maze, [square]))
    act = activations_until(policy, x, [layer])[layer].float()
    base, baseline_name = _baseline_activation(policy, maze, square, layer, baseline, act)

    # Gauss-Legendre nodes and weights on [0, 1]; the integrand is piecewise smooth (ReLUs).
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32, device=act.device)
    alpha_weights = torch.tensor(weights / 2, dtype=torch.float32, device=act.device)
    shape = (steps,) + (1,) * (act.ndim - 1)
    ends = torch.cat([base, act])  # the two end points, for prob and baseline_prob
    with torch.enable_grad():
        path = (base + alphas.view(shape) * (act - base)).detach().requires_grad_(True)
        points = torch.cat([path, ends])

        def replace(name: str, a: torch.Tensor) -> torch.Tensor:
            return points if name == layer else a

        if layer in CUT_POINTS:  # continue from the layer: the layers before it cost nothing
            logits, _ = policy.forward_stages(start=(layer, points))
        else:
            logits, _ = policy.forward_stages(x.expand(len(points), -1, -1, -1), on_output=replace)
        probs = move_probs(logits.float())
        move_index = int(probs[-1].argmax()) if move is None else MOVES.index(move)
        target = probs[:steps, move_index]
        (grads,) = torch.autograd.grad(target.sum(), path)
    mean_grad = (alpha_weights.view(shape) * grads).sum(dim=0)
    values = ((act - base)[0] * mean_grad).double().cpu().numpy()
    return Attribution(
        layer=layer,
        move=MOVES[move_index],
        square=square,
        baseline=baseline_name,
        steps=steps,
        values=values,
        prob=float(probs[-1, move_index].detach()),
        baseline_prob=float(probs[-2, move_index].detach()),
    )
