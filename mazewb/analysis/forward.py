"""Batched forward passes for the analyses, with the shared-prefix reuse of interventions.

Every analysis renders its observations once and runs them through the policy in batches on the
policy's device. When several variants (lists of interventions) are evaluated on the same
observations, the layers before the earliest intervened hook point are computed once: the
activation at the latest cut point before that hook (``mazewb.policy.resume_point``) is stored,
and every variant continues from it (``run_with_hooks(start=...)``). The results are exactly the
ones of full passes (same operations on the same tensors), only cheaper.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from mazewb.errors import AnalysisError
from mazewb.maze.geometry import Square
from mazewb.maze.grid import Maze
from mazewb.maze.render import default_renderer
from mazewb.policy import (
    HOOK_NAMES,
    ImpalaPolicy,
    Intervention,
    ReplaceChannels,
    move_probs,
    observations_to_tensor,
    resume_point,
    run_with_hooks,
)
from mazewb.policy.incremental import activation_at_stop
from mazewb.policy.runtime import Runner, resolve_mode, runner

DEFAULT_LAYER = "embedder.block2.res1.resadd_out"
"""The research community's default layer for steering and patching (Turner et al. 2023)."""
BATCH_SIZE = 512
"""Observations per forward pass: every open square of any procgen maze (at most 337) fits in one;
bounds memory (a scale-4 block1 map is 1 MiB per observation)."""

Variant = Sequence[Intervention]


def observations(maze: Maze, squares: Sequence[Square], facing_right: bool = False) -> np.ndarray:
    """uint8 (N, 64, 64, 3): the game's observations of ``maze`` with the mouse on each square."""
    return default_renderer().observations(maze, list(squares), facing_right)


def observations_of_states(states: Sequence[bytes]) -> np.ndarray:
    """uint8 (N, 64, 64, 3) observations of serialized procgen states, rendered in one batch
    (the way to batch observations of many different mazes)."""
    return default_renderer().observations_from_states(list(states))


def mouse_states(maze: Maze, squares: Sequence[Square], facing_right: bool = False) -> list[bytes]:
    """Serialized states of ``maze`` with the mouse on each square (render many mazes at once
    by concatenating these and calling ``observations_of_states``)."""
    return default_renderer().states(maze, list(squares), facing_right)


def to_input(policy: ImpalaPolicy, obs: np.ndarray | Tensor) -> Tensor:
    """uint8 observations (N, 64, 64, 3) -> the policy's float input (N, 3, 64, 64) on its device."""
    return observations_to_tensor(obs, policy.device)


def _chunks(total: int, batch_size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, total, batch_size):
        yield lo, min(total, lo + batch_size)


class _Reached(Exception):
    """Raised inside a forward pass to stop it once the wanted activations are in hand."""


def _dense_until(run: Runner, x: Tensor, hooks: Sequence[str], start: tuple[str, Tensor] | None = None) -> dict:
    """Unmodified activations at ``hooks`` of one batch (from ``x`` or ``start``); the pass stops
    after the last of them."""
    wanted = set(hooks)
    last = max(wanted, key=HOOK_NAMES.index)
    got: dict[str, Tensor] = {}

    def on_output(name: str, act: Tensor) -> Tensor:
        if name in wanted:
            got[name] = act
        if name == last:
            raise _Reached
        return act

    with torch.inference_mode(), run.autocast():
        try:
            if start is None:
                run.net.forward_stages(run.input(x), on_output=on_output)
            else:
                run.net.forward_stages(start=start, on_output=on_output)
        except _Reached:
            pass
    return got


def _incremental_prefix(run: Runner, x: Tensor, limit: str | None) -> tuple[str, Tensor] | None:
    """(stop, activation) of every row of one batch at the incremental stop point (not after
    cut point ``limit``), rows in input order; None when the windows do not pay."""
    xin = run.input(x)
    with torch.inference_mode():
        plan, act, _ = activation_at_stop(run.net, xin, limit)
    if plan.stop is None or act is None:
        return None
    if len(plan.dense) == 0:
        return plan.stop, act
    full = torch.empty((len(x), *act.shape[1:]), dtype=act.dtype, device=act.device)
    full = full.contiguous(memory_format=torch.channels_last) if full.ndim == 4 else full
    full[plan.windowed] = act
    full[plan.dense] = _dense_until(run, xin[plan.dense], [plan.stop])[plan.stop]
    return plan.stop, full


def activations_until(
    policy: ImpalaPolicy,
    x: Tensor,
    hooks: Sequence[str],
    batch_size: int = BATCH_SIZE,
    fast: bool | None = None,
    *,
    mode: str | None = None,
    shared_background: bool = False,
) -> dict[str, Tensor]:
    """Unmodified activations (N, *shape), contiguous, at ``hooks`` for inputs ``x``
    (N, 3, 64, 64); the pass stops after the last of them, so the layers behind it cost nothing.

    ``mode``: ``"exact"`` (default), ``"fast"``, ``"bf16"`` or ``"reference"`` (see
    ``mazewb.policy.runtime``); ``fast`` is its deprecated alias. ``shared_background``: the
    inputs are one maze with the mouse in different places, so the exact mode may recompute
    the first block only around each mouse (same numbers within float rounding)."""
    run = runner(policy, resolve_mode(mode, fast))
    hooks = list(dict.fromkeys(hooks))  # each once, in the caller's order
    wanted = set(hooks)
    unknown = wanted - set(HOOK_NAMES)
    if unknown:
        raise AnalysisError(f"unknown hook points {sorted(unknown)}; see policy.hook_points()")
    first = min(wanted, key=HOOK_NAMES.index)
    parts: dict[str, list[Tensor]] = {h: [] for h in hooks}
    for lo, hi in _chunks(len(x), batch_size):
        start = None
        if shared_background and run.incremental:
            start = _incremental_prefix(run, x[lo:hi], resume_point(first))
        got = _dense_until(run, x[lo:hi], hooks, start)
        for h in hooks:
            parts[h].append(got[h].contiguous())
    return {h: torch.cat(parts[h]) if parts[h] else torch.zeros(0) for h in hooks}


def _slice_variant(variant: Variant, lo: int, hi: int, total: int, shapes: dict[str, tuple[int, ...]]) -> tuple:
    """The variant for batch rows ``lo:hi``: per-item ``ReplaceChannels`` sources are sliced."""
    out = []
    for iv in variant:
        if isinstance(iv, ReplaceChannels) and len(iv.source.shape) == len(shapes[iv.hook]) + 1:
            if iv.source.shape[0] != total:
                raise ValueError(
                    f"ReplaceChannels at {iv.hook} has {iv.source.shape[0]} per-item sources for {total} inputs"
                )
            if (lo, hi) != (0, total):
                iv = ReplaceChannels(iv.hook, iv.channels, iv.source.array()[lo:hi])
        out.append(iv)
    return tuple(out)


def probs_from_logits(logits: Tensor) -> np.ndarray:
    """float64 move probabilities, rows renormalised: float32 rounding (about 1e-7 per row) would
    otherwise compound over the chain's 500 steps."""
    probs = move_probs(logits.float()).double().cpu().numpy()
    return probs / probs.sum(axis=1, keepdims=True)


def earliest_hook(variants: Sequence[Variant]) -> str | None:
    """The first hook point (in execution order) any of the variants intervenes on."""
    hooks = [iv.hook for variant in variants for iv in variant]
    return min(hooks, key=HOOK_NAMES.index) if hooks else None


def move_probabilities(
    policy: ImpalaPolicy,
    x: Tensor,
    interventions: Variant = (),
    *,
    batch_size: int = BATCH_SIZE,
    fast: bool | None = None,
    mode: str | None = None,
    shared_background: bool = False,
) -> np.ndarray:
    """(N, 5) float64 move probabilities (LEFT, DOWN, UP, RIGHT, NOOP) for inputs ``x``
    (N, 3, 64, 64), with ``interventions`` applied, in batches. ``mode`` as in
    ``activations_until`` (``fast``: its deprecated alias)."""
    return move_probabilities_variants(
        policy,
        x,
        [interventions],
        reuse=False,
        batch_size=batch_size,
        fast=fast,
        mode=mode,
        shared_background=shared_background,
    )[0]


def move_probabilities_variants(
    policy: ImpalaPolicy,
    x: Tensor,
    variants: Sequence[Variant],
    *,
    reuse: bool = True,
    batch_size: int = BATCH_SIZE,
    fast: bool | None = None,
    mode: str | None = None,
    shared_background: bool = False,
) -> list[np.ndarray]:
    """Move probabilities (N, 5) for each variant (a list of interventions) on the same inputs.

    With ``reuse`` the layers before the earliest intervened hook point run once and every
    variant resumes from the stored activation (identical results; the saving grows with the
    number of variants and the depth of the hook). An empty variant is the unpatched policy.

    ``mode``: ``"exact"`` (default: fp32 in the device's best exact layout, within 1e-5 of a
    plain NCHW pass), ``"fast"``, ``"bf16"`` or ``"reference"`` (see
    ``mazewb.policy.runtime``); ``fast`` is its deprecated alias. ``shared_background``: the
    rows are one maze with the mouse in different places (a vector field), so the exact mode
    recomputes the first block only around each mouse where that pays.
    """
    run = runner(policy, resolve_mode(mode, fast))
    first = earliest_hook(variants)
    limit = resume_point(first) if first is not None else None
    results: list[list[np.ndarray]] = [[] for _ in variants]
    n = len(x)
    shapes = policy.hook_points()
    for lo, hi in _chunks(n, batch_size):
        xb = x[lo:hi]
        start = _incremental_prefix(run, xb, limit) if shared_background and run.incremental else None
        if reuse and limit is not None and (start is None or start[0] != limit):
            start = (limit, _dense_until(run, xb, [limit], start)[limit])
        if start is None:
            start = (HOOK_NAMES[0], run.input(xb))
        parts = [_slice_variant(v, lo, hi, n, shapes) for v in variants]
        for i, part in enumerate(_continue(run, *start, parts)):
            results[i].append(part)
    return [np.concatenate(r) if r else np.zeros((0, 5)) for r in results]


def _continue(run: Runner, cut: str, prefix: Tensor, variants: Sequence[Variant]) -> list[np.ndarray]:
    """Probabilities per (already sliced) variant of one batch, from ``prefix`` at ``cut``."""
    out = []
    for variant in variants:
        with run.autocast():
            if cut == HOOK_NAMES[0]:
                logits, _, _ = run_with_hooks(run.net, prefix, variant)
            else:
                logits, _, _ = run_with_hooks(run.net, None, variant, start=(cut, prefix))
        out.append(probs_from_logits(logits))
    return out


def move_probabilities_from(
    policy: ImpalaPolicy,
    cut: str,
    prefix: Tensor,
    variants: Sequence[Variant],
    *,
    batch_size: int = BATCH_SIZE,
    fast: bool | None = None,
    mode: str | None = None,
) -> list[np.ndarray]:
    """Move probabilities (N, 5) per variant, continuing from the stored, unmodified activation
    ``prefix`` (N, *shape) at cut point ``cut`` (see ``mazewb.policy.CUT_POINTS``); every
    intervention must sit at or after ``cut``. Per-item ``ReplaceChannels`` sources (N, ...)
    are split along with the batches. ``mode`` as in ``move_probabilities_variants``."""
    run = runner(policy, resolve_mode(mode, fast))
    shapes = policy.hook_points()
    n = len(prefix)
    results: list[list[np.ndarray]] = [[] for _ in variants]
    for lo, hi in _chunks(n, batch_size):
        parts = [_slice_variant(v, lo, hi, n, shapes) for v in variants]
        block = prefix[lo:hi].to(run.net.device)
        if block.ndim == 4 and run.channels_last:
            block = block.contiguous(memory_format=torch.channels_last)
        for i, part in enumerate(_continue(run, cut, block, parts)):
            results[i].append(part)
    return [np.concatenate(r) if r else np.zeros((0, 5)) for r in results]


def move_probabilities_grouped(
    policy: ImpalaPolicy,
    x: Tensor,
    groups: dict[tuple[Intervention, ...], list[int]],
    *,
    batch_size: int = BATCH_SIZE,
    mode: str | None = None,
) -> np.ndarray:
    """(N, 5) move probabilities where the rows listed under a variant run under it (e.g. each
    maze of a batch with its own steering vector). The groups partition the rows, so every row
    is computed once; per-item ``ReplaceChannels`` sources are not supported here. ``mode`` as
    in ``move_probabilities_variants``."""
    run = runner(policy, resolve_mode(mode))
    probs = np.full((len(x), 5), np.nan)
    for variant, rows in groups.items():
        index = torch.as_tensor(rows, dtype=torch.long)
        for lo, hi in _chunks(len(rows), batch_size):
            part = index[lo:hi]
            with run.autocast():
                logits, _, _ = run_with_hooks(run.net, run.input(x[part]), variant)
            probs[part.numpy()] = probs_from_logits(logits)
    if np.isnan(probs).any():
        raise ValueError("groups must list every row of x")
    return probs
