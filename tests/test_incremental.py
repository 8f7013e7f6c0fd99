"""The exact incremental path (``mazewb.policy.incremental``) against the full forward pass."""

from __future__ import annotations

import pytest
import torch

from mazewb import Maze, load_policy
from mazewb.analysis.forward import to_input
from mazewb.maze import render_observations
from mazewb.policy import ImpalaPolicy
from mazewb.policy.incremental import activation_at_stop


def _policies() -> list[ImpalaPolicy]:
    torch.manual_seed(3)
    return [load_policy(), ImpalaPolicy(scale=4).eval()]


@pytest.mark.parametrize("seed", [17, 0])
def test_incremental_probabilities_match_the_full_pass(seed: int) -> None:
    maze = Maze.from_seed(seed)
    cells = [c for c in maze.open_cells() if c != maze.cheese]
    for policy in _policies():
        x = to_input(policy, render_observations(maze, cells))
        with torch.no_grad():
            plan, act, _ = activation_at_stop(policy, x)
            assert plan.stop is not None and len(plan.windowed) > len(x) // 2  # the windows were used
            full_logits, _ = policy(x.contiguous())
            logits, _ = policy.forward_stages(start=(plan.stop, act))
        dp = (logits.softmax(-1) - full_logits[plan.windowed].softmax(-1)).abs().max().item()
        assert dp < 1e-5, (policy.scale, seed, dp)
