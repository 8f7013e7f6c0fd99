"""Thin adapters for what the analysis layer does not provide (yet).

Each is marked ADAPTER, is a few lines over analysis primitives, and should move into
``mazewb.analysis`` (the app's report lists them) rather than grow here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mazewb import analysis as an
from mazewb.analysis.chain import HORIZON, build_chain


def reach_cheese_from_each(field: an.VectorField, horizon: int = HORIZON) -> np.ndarray:
    """ADAPTER: exact P(reach the cheese within ``horizon`` steps) starting from each square of
    ``field.cells`` (backward recursion on the maze's absorbing chain: one pass over the squares
    per step). Zeros when the maze has no cheese."""
    maze = field.maze
    if maze.cheese is None:
        return np.zeros(len(field.cells))
    chain = build_chain(maze)
    probs = field.chain_probs()
    goal = chain.index(maze.cheese)
    value = np.zeros(len(chain.cells))
    value[goal] = 1.0
    for _ in range(horizon):
        value = (probs * value[chain.next_index]).sum(axis=1)
        value[goal] = 1.0
    where = {sq: i for i, sq in enumerate(chain.cells)}
    return value[[where[(int(r), int(c))] for r, c in field.cells]]


def greedy_table(field: an.VectorField) -> np.ndarray:
    """ADAPTER: a one-hot move table (M, 5) choosing the most likely move at each square, for
    ``sample_rollouts`` to play a greedy episode in the real game (``sample_rollouts`` has no
    greedy mode; the choices come from the vector field's observations, mouse facing left)."""
    probs = field.chain_probs()
    table = np.zeros_like(probs)
    table[np.arange(len(probs)), probs.argmax(axis=1)] = 1.0
    return table


def first_qualifying(
    policy,
    n_mazes: int,
    start_seed: int,
    progress,
    seeds_per_batch: int = 32,  # noqa: ANN001
):  # noqa: ANN201
    """ADAPTER: ``analysis.qualifying_sample`` with a progress callback and cancellation:
    ``progress(found, n_mazes)`` is called after each batch of seeds and may raise to stop."""
    import pandas as pd

    found: list[pd.DataFrame] = []
    count, seed = 0, start_seed
    progress(0, n_mazes)
    while count < n_mazes:
        batch: Sequence[int] = list(range(seed, seed + seeds_per_batch))
        table = an.behaviour_table(policy, batch, seeds_per_batch=seeds_per_batch, progress=False)
        table = table[table["qualifies"].astype(bool)]
        found.append(table)
        count += len(table)
        seed += seeds_per_batch
        progress(min(count, n_mazes), n_mazes)
    return pd.concat(found, ignore_index=True).head(n_mazes).reset_index(drop=True)
