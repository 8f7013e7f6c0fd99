"""Patching: zero and mean ablation, resampling channel sets from other mazes, and the change
they cause in behaviour.

Change is measured two ways: the mean over the maze's open squares (cheese excluded) of the
total-variation distance between the original and the patched move distributions (in [0, 1]; the
literature's "mean change" is a similar but not identical per-square average), and the policy's
choice at the decision square (P(cheese | decision square) before and after, and whether the most
likely option among cheese / top-right / other changed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mazewb.analysis.cache import LRU, policy_identity
from mazewb.analysis.forward import (
    DEFAULT_LAYER,
    Variant,
    activations_until,
    mouse_states,
    observations_of_states,
    to_input,
)
from mazewb.analysis.vfield import (
    DecisionChoice,
    VectorField,
    decision_choice,
    field_squares,
    vector_field_diff,
    vector_fields,
)
from mazewb.errors import AnalysisError
from mazewb.maze.geometry import Square
from mazewb.maze.graph import decision_square, euclidean
from mazewb.maze.grid import Maze
from mazewb.policy import Ablate, ImpalaPolicy, ReplaceChannels

MAX_MEANS = 16
"""Mean activations kept in memory (one layer's full shape each: at most a few MB)."""
_MEAN_CACHE: LRU[tuple[str, str, int, int], np.ndarray] = LRU(MAX_MEANS)


# --- ablation ---------------------------------------------------------------------------------------


def zero_ablation(layer: str = DEFAULT_LAYER, channels: Sequence[int] | None = None) -> Ablate:
    """Set ``channels`` (None: all) of ``layer`` to zero on every forward pass."""
    return Ablate(layer, None if channels is None else tuple(channels), "zero")


def random_observation_states(n_observations: int, seed: int = 0) -> list[bytes]:
    """States of ``n_observations`` random observations: procgen hard-mode levels drawn from
    ``seed``'s generator, the mouse on a uniformly random open square facing a random way."""
    rng = np.random.default_rng(seed)
    states: list[bytes] = []
    per_maze = 8  # several squares per level: cheaper than one level per observation
    while len(states) < n_observations:
        maze = Maze.from_seed(int(rng.integers(0, 2**31 - 2)))
        cells = [sq for sq in maze.open_cells() if sq != maze.cheese]
        picks = rng.choice(len(cells), size=min(per_maze, len(cells), n_observations - len(states)), replace=False)
        facing = [bool(f) for f in rng.integers(0, 2, len(picks))]
        states += mouse_states(maze, [cells[int(p)] for p in picks], facing)
    return states


def mean_activation(
    policy: ImpalaPolicy, layer: str = DEFAULT_LAYER, n_observations: int = 512, seed: int = 0
) -> np.ndarray:
    """float32 mean activation at ``layer`` (its full shape without batch) over random
    observations (``random_observation_states``). Computed once per (weights, layer, n, seed)
    and kept in memory (the ``MAX_MEANS`` most recently used), read-only."""
    key = (policy_identity(policy), layer, n_observations, seed)
    cached = _MEAN_CACHE.get(key)
    if cached is not None:
        return cached
    x = to_input(policy, observations_of_states(random_observation_states(n_observations, seed)))
    mean = activations_until(policy, x, [layer])[layer].double().mean(dim=0).float().cpu().numpy()
    mean.flags.writeable = False
    _MEAN_CACHE.put(key, mean)
    return mean


def mean_ablation(
    policy: ImpalaPolicy,
    layer: str = DEFAULT_LAYER,
    channels: Sequence[int] | None = None,
    n_observations: int = 512,
    seed: int = 0,
) -> Ablate:
    """Replace ``channels`` (None: all) of ``layer`` by their mean over random observations."""
    mean = mean_activation(policy, layer, n_observations, seed)
    return Ablate(layer, None if channels is None else tuple(channels), "mean", mean)


# --- resampling -------------------------------------------------------------------------------------


def resampling_sources(
    maze: Maze, n_sources: int, same_cheese: bool, seed: int = 0, max_draws: int = 5000
) -> list[Maze]:
    """Other procgen levels of the same size to take activations from.

    ``same_cheese``: each source's cheese is moved onto ``maze.cheese`` (the same square; levels
    where it is a wall are skipped). Otherwise its cheese is moved to a random open square more
    than 2 squares (Euclidean) from ``maze.cheese``. Deterministic for a given ``seed``.
    """
    if maze.cheese is None:
        raise AnalysisError("resampling needs a maze with a cheese")
    rng = np.random.default_rng(seed)
    out: list[Maze] = []
    for _ in range(max_draws):
        if len(out) == n_sources:
            break
        level = int(rng.integers(0, 2**31 - 2))
        if level == maze.seed:
            continue
        other = Maze.from_seed(level)
        if other.size != maze.size or other.walls == maze.walls:
            continue
        if same_cheese:
            if not other.is_open(maze.cheese) or maze.cheese == other.mouse:
                continue
            out.append(other.with_cheese(maze.cheese))
        else:
            far = [sq for sq in other.open_cells() if euclidean(sq, maze.cheese) > 2 and sq != other.mouse]
            if not far:
                continue
            out.append(other.with_cheese(far[int(rng.integers(len(far)))]))
    if len(out) < n_sources:
        raise AnalysisError(f"found only {len(out)} source levels of size {maze.size} in {max_draws} draws")
    return out


def _nearest_open(maze: Maze, square: Square) -> Square:
    if maze.is_open(square) and square != maze.cheese:
        return square
    cells = [sq for sq in maze.open_cells() if sq != maze.cheese]
    return min(cells, key=lambda sq: (euclidean(sq, square), sq))


def resampled_channels(
    policy: ImpalaPolicy,
    maze: Maze,
    source: Maze,
    channels: Sequence[int],
    layer: str = DEFAULT_LAYER,
    squares: Sequence[Square] | None = None,
) -> ReplaceChannels:
    """Replace ``channels`` of ``layer`` with their values in ``source`` (same-size maze), the
    mouse on the same square (or, where that is a wall or the cheese there, the nearest open
    square). One source per item: the squares of ``maze``'s vector field unless ``squares``."""
    squares = field_squares(maze) if squares is None else list(squares)
    where = [_nearest_open(source, sq) for sq in squares]
    x = to_input(policy, observations_of_states(mouse_states(source, where)))
    acts = activations_until(policy, x, [layer])[layer][:, list(channels)]
    return ReplaceChannels(layer, tuple(channels), acts.float().cpu().numpy())


def random_channels(n_channels: int, k: int, seed: int = 0, exclude: Sequence[int] = ()) -> tuple[int, ...]:
    """``k`` distinct random channels out of ``n_channels`` (a control for a chosen set)."""
    pool = [c for c in range(n_channels) if c not in set(exclude)]
    rng = np.random.default_rng(seed)
    return tuple(sorted(int(c) for c in rng.choice(pool, size=k, replace=False)))


# --- measuring the change ---------------------------------------------------------------------------


def _choice_at(field: VectorField, ds: Square | None) -> DecisionChoice | None:
    return None if ds is None else decision_choice(field.maze, ds, field.at(ds))


def patch_effects(policy: ImpalaPolicy, maze: Maze, variants: Mapping[str, Variant]) -> pd.DataFrame:
    """The change each named variant causes on ``maze``: one row per variant with
    ``mean_tv`` (mean total-variation distance of the vector field from the unpatched one),
    ``max_tv``, ``p_cheese_ds`` / ``p_cheese_ds_before`` and ``p_top_right_ds`` / ``..._before``
    at the decision square (NaN without one) and ``choice_changed``. All variants share the
    layers before their earliest hook."""
    names = list(variants)
    fields = vector_fields(policy, maze, [()] + [tuple(variants[n]) for n in names])
    base = fields[0]
    ds = decision_square(maze)
    before = _choice_at(base, ds)
    rows = []
    for name, field in zip(names, fields[1:], strict=True):
        diff = vector_field_diff(field, base)
        after = _choice_at(field, ds)
        rows.append(
            {
                "variant": name,
                "mean_tv": diff.mean_tv,
                "max_tv": float(diff.tv.max()) if len(diff.tv) else 0.0,
                "p_cheese_ds_before": before.p_cheese if before else np.nan,
                "p_cheese_ds": after.p_cheese if after else np.nan,
                "p_top_right_ds_before": before.p_top_right if before else np.nan,
                "p_top_right_ds": after.p_top_right if after else np.nan,
                "choice_changed": bool(before and after and before.choice != after.choice),
            }
        )
    return pd.DataFrame(rows)


def resampling_experiment(
    policy: ImpalaPolicy,
    maze: Maze,
    channels: Sequence[int],
    layer: str = DEFAULT_LAYER,
    n_sources: int = 4,
    seed: int = 0,
    control_channels: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Resample ``channels`` from ``n_sources`` other levels whose cheese is at the same square,
    and from as many whose cheese is elsewhere; with ``control_channels`` (e.g. a random set of
    the same size) the same again for them. One row per (channel set, condition, source) as in
    ``patch_effects``, plus ``channel_set``, ``condition`` ("same cheese" / "other cheese"),
    ``source_seed`` and ``source_cheese``."""
    sets = {"chosen": tuple(channels)}
    if control_channels is not None:
        sets["control"] = tuple(control_channels)
    conditions = {
        "same cheese": resampling_sources(maze, n_sources, True, seed),
        "other cheese": resampling_sources(maze, n_sources, False, seed + 1),
    }
    variants: dict[str, Variant] = {}
    meta: dict[str, dict[str, object]] = {}
    for set_name, chans in sets.items():
        for condition, sources in conditions.items():
            for j, src in enumerate(sources):
                name = f"{set_name} / {condition} / {j}"
                variants[name] = (resampled_channels(policy, maze, src, chans, layer),)
                meta[name] = {
                    "channel_set": set_name,
                    "condition": condition,
                    "source_seed": src.seed,
                    "source_cheese": src.cheese,
                }
    table = patch_effects(policy, maze, variants)
    extra = pd.DataFrame([meta[n] for n in table["variant"]])
    return pd.concat([extra, table], axis=1)
