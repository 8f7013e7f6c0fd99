"""Differentiable exact returns on a maze's absorbing chain (the RL objective of the fast trainer).

With the policy's move probabilities at every square of a known maze, an episode is a Markov
chain whose only reward is reaching the cheese. The discounted value of every square solves one
linear system, ``V = r + gamma * P V``, where ``P`` holds the moves between non-cheese squares
and ``r`` the probability of stepping onto the cheese. So ``V(s) = E[gamma^(T-1)]``, with ``T``
the number of steps to the cheese from ``s`` (no time limit; the discount stands in for the
game's 500-step timeout). Everything is a torch expression of the move probabilities, so its
gradient is the exact policy gradient: no sampling, no variance.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mazewb.errors import ConfigError
from mazewb.train.data import CHEESE, MazeBatch


def chain_values(probs: Tensor, batch: MazeBatch, gamma: float) -> Tensor:
    """V(s) = E[gamma^(T-1)] for every row of ``batch`` (float64, (N,)), differentiable in
    ``probs`` ((N, 5) move probabilities in LEFT, DOWN, UP, RIGHT, NOOP order)."""
    if not 0.0 < gamma < 1.0:
        raise ConfigError(f"gamma must be in (0, 1), got {gamma}")
    probs = probs.double()
    nxt_all = torch.as_tensor(batch.next_index, device=probs.device)
    values = []
    for k in range(batch.num_mazes):
        a, b = int(batch.starts[k]), int(batch.starts[k + 1])
        p = probs[a:b]
        nxt = nxt_all[a:b]
        n = b - a
        to_cheese = nxt == CHEESE
        r = (p * to_cheese).sum(dim=1)
        rows = torch.arange(n, device=p.device).unsqueeze(1).expand(n, 5)
        keep = ~to_cheese
        cols = (nxt - a).clamp(min=0)
        transient = torch.zeros((n, n), dtype=p.dtype, device=p.device)
        transient = transient.index_put((rows[keep], cols[keep]), p[keep], accumulate=True)
        system = torch.eye(n, dtype=p.dtype, device=p.device) - gamma * transient
        values.append(torch.linalg.solve(system, r))
    return torch.cat(values)


def rl_loss(probs: Tensor, batch: MazeBatch, gamma: float, objective: str = "log_value") -> Tensor:
    """The RL loss to minimise on one batch, averaged over every square as a start.

    ``objective``: ``"log_value"`` (default) minimises ``-mean log V(s)``, about ``(1 - gamma) *``
    the expected number of steps to the cheese, so long mazes are not drowned out by short ones;
    ``"value"`` minimises ``-mean V(s)`` (the expected discounted return, reward 1).
    """
    values = chain_values(probs, batch, gamma)
    if objective == "log_value":
        return -torch.log(values.clamp(min=1e-30)).mean()
    if objective == "value":
        return -values.mean()
    raise ConfigError(f"unknown RL objective {objective!r}: use 'log_value' or 'value'")
