"""Steering: cheese vector, top-right vector, any difference of activations; their combination;
retargeting by setting channels at a target square's activation cell.

A steering vector is the difference of one layer's activations between two observations (the
research default: ``embedder.block2.res1.resadd_out``); it is returned as an ``AddVector``
intervention (``coeff * vector`` added on every forward pass, at every mouse position), so it can
be passed to any analysis in ``interventions=[...]`` and combined by listing several.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mazewb.analysis.chain import ExactOutcomes, build_chain, reach_probabilities
from mazewb.analysis.forward import (
    BATCH_SIZE,
    DEFAULT_LAYER,
    activations_until,
    mouse_states,
    move_probabilities_from,
    observations_of_states,
    to_input,
)
from mazewb.analysis.outcomes import field_outcomes, normalized_path_probabilities, p_reach_target, reach_map
from mazewb.analysis.vfield import VectorField, decision_choice, vector_fields
from mazewb.errors import AnalysisError, MazeError
from mazewb.executor import Executor, chunked
from mazewb.maze.bridge import maze_to_state
from mazewb.maze.geometry import WORLD_DIM, Square, square_to_cell, square_to_world
from mazewb.maze.graph import decision_square
from mazewb.maze.grid import Maze
from mazewb.maze.procgen_state import GRID_OPEN, write_state
from mazewb.policy import AddVector, ImpalaPolicy, Intervention, ReplaceChannels, SetChannels, resume_point

CHEESE_CHANNELS_TURNER = (7, 8, 42, 44, 55, 77, 82, 88, 89, 99, 113)
"""Cheese-tracking channels of ``block2.res1.resadd_out`` found by eye in Langosco et al.'s
``model_rand_region_5.pth`` (scale 4). Meaningless for any other network: rank your own with
``mazewb.analysis.channels.rank_cheese_channels``."""
EFFECTIVE_CHANNELS_TURNER = (8, 55, 77, 82, 88, 89, 113)
"""The subset of those that retargets best in that network (set to +2.3 each)."""


class ZeroVectorWarning(UserWarning):
    """A steering vector is exactly zero (e.g. the top-right vector of a 25x25 maze)."""


# --- observations the vectors are built from ------------------------------------------------------


def top_right_corridor(maze: Maze) -> list[tuple[int, int]]:
    """World tiles ``(wrow, wcol)`` (row 0 at the bottom of the 25x25 world) of the L-shaped
    corridor carved for the top-right vector: from the maze's top-right square up through the
    wall padding to the world's top row, then right to the world corner (24, 24). Empty for a
    25x25 maze, which has no padding."""
    wrow, wcol = square_to_world(maze.top_right, maze.size)
    top = WORLD_DIM - 1
    up = [(r, wcol) for r in range(wrow + 1, top + 1)]
    right = [(top, c) for c in range(wcol + 1, top + 1)]
    return up + right


def carved_state(maze: Maze) -> bytes:
    """The procgen state of ``maze`` (mouse on ``maze.mouse``) with the top-right corridor open."""
    st = maze_to_state(maze)
    for wrow, wcol in top_right_corridor(maze):
        st.set_cell(wcol, wrow, GRID_OPEN)
    return write_state(st)


def _layer_activations(policy: ImpalaPolicy, states: Sequence[bytes], layer: str) -> torch.Tensor:
    x = to_input(policy, observations_of_states(states))
    return activations_until(policy, x, [layer])[layer]


# --- steering vectors -----------------------------------------------------------------------------


def difference_vector(
    policy: ImpalaPolicy,
    a: Maze | np.ndarray,
    b: Maze | np.ndarray,
    layer: str = DEFAULT_LAYER,
    coeff: float = 1.0,
) -> AddVector:
    """``coeff * (act(a) - act(b))`` at ``layer`` as an intervention. ``a``, ``b``: mazes (mouse on
    their ``mouse`` square) or uint8 observations (64, 64, 3)."""
    obs = []
    for item in (a, b):
        if isinstance(item, Maze):
            obs.append(observations_of_states(mouse_states(item, [item.mouse]))[0])
        else:
            arr = np.asarray(item)
            if arr.shape != (64, 64, 3) or arr.dtype != np.uint8:
                raise ValueError(f"an observation must be uint8 (64, 64, 3), got {arr.dtype} {arr.shape}")
            obs.append(arr)
    acts = activations_until(policy, to_input(policy, np.stack(obs)), [layer])[layer]
    return AddVector(layer, (acts[0] - acts[1]).float().cpu().numpy(), coeff)


def cheese_vector(policy: ImpalaPolicy, maze: Maze, coeff: float = -1.0, layer: str = DEFAULT_LAYER) -> AddVector:
    """The cheese vector of ``maze``: activations at ``layer`` with the cheese minus without it,
    the mouse on ``maze.mouse`` (its start), times ``coeff`` (-1: the literature's subtraction)."""
    if maze.cheese is None:
        raise AnalysisError("the cheese vector needs a maze with a cheese")
    return difference_vector(policy, maze, maze.without_cheese(), layer, coeff)


def top_right_vector(policy: ImpalaPolicy, maze: Maze, coeff: float = 1.0, layer: str = DEFAULT_LAYER) -> AddVector:
    """The top-right vector of ``maze``: activations at ``layer`` with the L-shaped corridor from
    the top-right square to the world corner carved open, minus the unchanged maze, times
    ``coeff``. For a 25x25 maze there is no padding to carve: the vector is exactly zero and a
    ``ZeroVectorWarning`` says so (check ``top_right_corridor(maze)`` to avoid it)."""
    if not top_right_corridor(maze):
        warnings.warn(
            f"the top-right vector of a {maze.size}x{maze.size} maze is zero: no wall padding to carve",
            ZeroVectorWarning,
            stacklevel=2,
        )
    acts = _layer_activations(policy, [carved_state(maze), mouse_states(maze, [maze.mouse])[0]], layer)
    return AddVector(layer, (acts[0] - acts[1]).float().cpu().numpy(), coeff)


def with_coeff(vector: AddVector, coeff: float) -> AddVector:
    """The same steering vector with another coefficient."""
    return dataclasses.replace(vector, coeff=float(coeff))


# --- how the shards combine: a grid of (cheese coeff, top-right coeff) ----------------------------


def steering_sweep(
    policy: ImpalaPolicy,
    mazes: Sequence[Maze],
    cheese_coeffs: Sequence[float],
    top_right_coeffs: Sequence[float],
    layer: str = DEFAULT_LAYER,
    *,
    with_outcomes: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    executor: Executor | None = None,
    mazes_per_chunk: int = 32,
) -> pd.DataFrame:
    """``steering_batch`` over ``mazes``: here in one batch, or with ``executor`` in chunks of
    ``mazes_per_chunk`` mazes (``maze_index`` stays the index in ``mazes``)."""
    mazes = list(mazes)
    options = {
        "cheese_coeffs": [float(c) for c in cheese_coeffs],
        "top_right_coeffs": [float(t) for t in top_right_coeffs],
        "layer": layer,
        "with_outcomes": with_outcomes,
        "batch_size": batch_size,
    }
    if executor is None:
        return steering_batch(policy, mazes, progress=progress, **options)
    chunks = chunked(mazes, mazes_per_chunk)
    parts = executor.map(steering_batch, policy, chunks, desc="steering grid", progress=progress, **options)
    for k, part in enumerate(parts):
        part["maze_index"] += k * mazes_per_chunk
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def steering_batch(
    policy: ImpalaPolicy,
    mazes: Sequence[Maze],
    cheese_coeffs: Sequence[float],
    top_right_coeffs: Sequence[float],
    layer: str = DEFAULT_LAYER,
    *,
    with_outcomes: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
) -> pd.DataFrame:
    """The unit of work of the shards grid: every maze under ``cheese_coeff * cheese vector +
    top_right_coeff * top-right vector``, both computed from that maze, for every pair of
    coefficients.

    One row per (maze, cheese_coeff, top_right_coeff): ``p_cheese_ds``, ``p_top_right_ds``,
    ``p_other_ds`` at the decision square (NaN without one), ``top_right_zero`` (25x25 maze:
    the top-right vector is zero), ``seed``, ``maze_index``; with ``with_outcomes`` also the exact
    ``p_cheese``, ``p_top_right``, ``p_neither``, ``p_timeout``, ``expected_steps`` (a vector field
    per maze and pair; the layers before ``layer`` run once per maze).

    Decision-square numbers for all mazes run as one batch per pair: the unmodified activation at
    the resume point is computed once, and each maze's own vectors are added to its own row
    (a per-item replacement at ``layer``, equal to ``AddVector`` up to float rounding).
    """
    mazes = list(mazes)
    if any(m.cheese is None for m in mazes):
        raise AnalysisError("every maze of a steering sweep needs a cheese")
    m = len(mazes)
    cut = resume_point(layer)
    ds_list = [decision_square(mz) for mz in mazes]
    # Rows: each maze at its start with the cheese, without it, with the corridor carved.
    states: list[bytes] = []
    for mz in mazes:
        states += mouse_states(mz, [mz.mouse]) + mouse_states(mz.without_cheese(), [mz.mouse]) + [carved_state(mz)]
    acts = _layer_activations(policy, states, layer).view(m, 3, *policy.hook_points()[layer])
    v_cheese = acts[:, 0] - acts[:, 1]
    v_corner = acts[:, 2] - acts[:, 0]
    has_ds = [i for i, ds in enumerate(ds_list) if ds is not None]
    ds_rows: dict[tuple[float, float], np.ndarray] = {}
    if has_ds:
        ds_states = [s for i in has_ds for s in mouse_states(mazes[i], [ds_list[i]])]
        x = to_input(policy, observations_of_states(ds_states))
        got = activations_until(policy, x, [cut, layer], batch_size=batch_size)
        index = torch.as_tensor(has_ds)
        pairs = [(float(c), float(t)) for c in cheese_coeffs for t in top_right_coeffs]
        for c, t in tqdm(pairs, desc="steering grid", disable=not progress):
            # The same arithmetic, in the same order, as two AddVector interventions.
            patched = got[layer] + c * v_cheese[index].to(got[layer])
            patched = patched + t * v_corner[index].to(got[layer])
            iv = ReplaceChannels(layer, tuple(range(patched.shape[1])), patched.float().cpu().numpy())
            ds_rows[(c, t)] = move_probabilities_from(policy, cut, got[cut], [(iv,)], batch_size=batch_size)[0]
    rows = []
    iterator = tqdm(range(m), desc="mazes", disable=not (progress and with_outcomes))
    for i in iterator:
        mz = mazes[i]
        pairs = [(float(c), float(t)) for c in cheese_coeffs for t in top_right_coeffs]
        fields: list[VectorField | None] = [None] * len(pairs)
        if with_outcomes:
            vc = v_cheese[i].float().cpu().numpy()
            vt = v_corner[i].float().cpu().numpy()
            variants = [(AddVector(layer, vc, c), AddVector(layer, vt, t)) for c, t in pairs]
            fields = list(vector_fields(policy, mz, variants, batch_size=batch_size))
        for (c, t), field in zip(pairs, fields, strict=True):
            row: dict[str, object] = {
                "maze_index": i,
                "seed": mz.seed,
                "size": mz.size,
                "cheese_coeff": c,
                "top_right_coeff": t,
                "top_right_zero": not top_right_corridor(mz),
                "p_cheese_ds": np.nan,
                "p_top_right_ds": np.nan,
                "p_other_ds": np.nan,
            }
            ds = ds_list[i]
            if ds is not None:
                choice = decision_choice(mz, ds, ds_rows[(c, t)][has_ds.index(i)])
                row.update(p_cheese_ds=choice.p_cheese, p_top_right_ds=choice.p_top_right, p_other_ds=choice.p_other)
            if field is not None:
                row.update(dataclasses.asdict(field_outcomes(field)))
            rows.append(row)
    return pd.DataFrame(rows)


def decision_probabilities_steered(
    policy: ImpalaPolicy,
    mazes: Sequence[Maze],
    cheese_coeff: float = 0.0,
    top_right_coeff: float = 0.0,
    layer: str = DEFAULT_LAYER,
) -> pd.DataFrame:
    """P(cheese | decision square) etc. for each maze steered by its own vectors (one pair of
    coefficients); a one-pair ``steering_sweep`` restricted to mazes with a decision square."""
    table = steering_sweep(policy, mazes, [cheese_coeff], [top_right_coeff], layer)
    return table[table["p_cheese_ds"].notna()].reset_index(drop=True)


# --- retargeting ------------------------------------------------------------------------------------


def retarget(
    policy: ImpalaPolicy,
    maze: Maze,
    target: Square,
    channels: Sequence[int],
    value: float,
    layer: str = DEFAULT_LAYER,
) -> SetChannels:
    """Set ``channels`` of ``layer`` to ``value`` at the activation cell holding the centre of
    ``target`` (a maze square), on every forward pass."""
    shape = policy.hook_points()[layer]
    if len(shape) != 3:
        raise AnalysisError(f"{layer} is flat {shape}: retargeting needs a (C, H, W) layer")
    if not maze.is_open(target):
        raise MazeError(f"target {tuple(target)} is not an open square of the {maze.size}x{maze.size} maze")
    cell = square_to_cell(target, maze.size, shape[-1])
    return SetChannels(layer, tuple(channels), (cell,), float(value))


@dataclass(frozen=True, eq=False)
class RetargetingMap:
    """Per target square: exact P(reach it within 500 steps) when retargeted to it, and without
    any patch; also the literature's normalized path probability for both.

    ``targets``: int (K, 2) squares; the other fields are float (K,) in the same order.
    """

    maze: Maze
    targets: np.ndarray
    p_reach: np.ndarray
    p_reach_baseline: np.ndarray
    path_prob: np.ndarray
    path_prob_baseline: np.ndarray

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "row": self.targets[:, 0],
                "col": self.targets[:, 1],
                "p_reach": self.p_reach,
                "p_reach_baseline": self.p_reach_baseline,
                "path_prob": self.path_prob,
                "path_prob_baseline": self.path_prob_baseline,
            }
        )


def retargeting_map(
    policy: ImpalaPolicy,
    maze: Maze,
    channels: Sequence[int],
    value: float,
    layer: str = DEFAULT_LAYER,
    targets: Sequence[Square] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
) -> RetargetingMap:
    """Retarget to every target square in turn (default: every open square but the mouse's) and
    solve the exact probability of reaching it; the unpatched policy gives the baseline.

    Targets whose centres share an activation cell share one patched vector field, and all
    fields reuse the layers before ``layer``; the chain solves for all targets run together.
    """
    targets = [sq for sq in maze.open_cells() if sq != maze.mouse] if targets is None else [tuple(t) for t in targets]
    by_cell: dict[SetChannels, list[int]] = {}
    for k, t in enumerate(targets):
        by_cell.setdefault(retarget(policy, maze, t, channels, value, layer), []).append(k)
    variants = [()] + [(iv,) for iv in by_cell]
    fields: list[VectorField] = []
    chunk = 32  # variants per call: bounds memory, lets the progress bar move
    for lo in tqdm(range(0, len(variants), chunk), desc="retargeting", disable=not progress):
        fields += vector_fields(policy, maze, variants[lo : lo + chunk], batch_size=batch_size)
    base, patched = fields[0], fields[1:]
    chain = build_chain(maze)
    field_of = np.empty(len(targets), dtype=np.int64)
    for f, rows in enumerate(by_cell.values()):
        field_of[rows] = f
    stacked = np.stack([patched[f].chain_probs() for f in field_of]) if targets else np.zeros((0, 0, 5))
    p_reach = reach_probabilities(maze, stacked, chain, targets=targets) if targets else np.zeros(0)
    path = np.array([normalized_path_probabilities(patched[f], [t])[0] for f, t in zip(field_of, targets, strict=True)])
    return RetargetingMap(
        maze=maze,
        targets=np.array(targets, dtype=np.int64).reshape(-1, 2),
        p_reach=p_reach,
        p_reach_baseline=reach_map(base, targets) if targets else np.zeros(0),
        path_prob=path,
        path_prob_baseline=normalized_path_probabilities(base, targets) if targets else np.zeros(0),
    )


@dataclass(frozen=True, eq=False)
class RetargetOutcome:
    """One retargeting, solved exactly: ``p_reach``, P(the patched agent stands on ``target``
    within 500 steps, before the episode ends at the cheese), and ``p_reach_baseline``, the
    same without the retargeting patch (other interventions kept); the normalized path
    probabilities of both; and the full episode outcomes of both."""

    maze: Maze
    target: Square
    p_reach: float
    p_reach_baseline: float
    path_prob: float
    path_prob_baseline: float
    outcomes: ExactOutcomes
    outcomes_baseline: ExactOutcomes

    def table(self) -> pd.DataFrame:
        """Rows ``p_reach`` and ``path_prob``; columns ``retargeted`` and ``no retargeting``."""
        return pd.DataFrame(
            {
                "retargeted": [self.p_reach, self.path_prob],
                "no retargeting": [self.p_reach_baseline, self.path_prob_baseline],
            },
            index=pd.Index(["p_reach", "path_prob"], name=f"target {self.target}"),
        )


def retarget_outcome(
    policy: ImpalaPolicy,
    maze: Maze,
    target: Square,
    channels: Sequence[int],
    value: float,
    layer: str = DEFAULT_LAYER,
    interventions: Sequence[Intervention] = (),
    *,
    batch_size: int = BATCH_SIZE,
) -> RetargetOutcome:
    """Retarget to ``target`` (``retarget(...)``, added to ``interventions``) and solve exactly
    how often the agent then gets there; the baseline is ``interventions`` alone. Two vector
    fields in one batched call (the layers before the first intervention run once)."""
    target = (int(target[0]), int(target[1]))
    patch = retarget(policy, maze, target, channels, value, layer)
    base, patched = vector_fields(policy, maze, [tuple(interventions), (*interventions, patch)], batch_size=batch_size)
    return RetargetOutcome(
        maze=maze,
        target=target,
        p_reach=p_reach_target(patched, target),
        p_reach_baseline=p_reach_target(base, target),
        path_prob=float(normalized_path_probabilities(patched, [target])[0]),
        path_prob_baseline=float(normalized_path_probabilities(base, [target])[0]),
        outcomes=field_outcomes(patched),
        outcomes_baseline=field_outcomes(base),
    )
