"""The measured error of the approximate fast mode on the loaded agent.

``fast_mode_error(policy)`` runs a probe set of observations (mouse on evenly spaced squares of
a few fixed levels) in exact mode and in the fast mode, and reports max and mean |dp| over all
move probabilities, with the speed-up on the same probe. Where the fast mode is the exact path
itself (no native bf16 on the device), it says so and the error is exactly 0.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mazewb.analysis.forward import move_probabilities, observations, to_input
from mazewb.analysis.vfield import field_squares
from mazewb.maze.grid import Maze
from mazewb.policy import ImpalaPolicy
from mazewb.policy.runtime import concrete_mode, fast_precision, resolve_mode

PROBE_SEEDS = (0, 17)
"""Levels of the default probe set: a small maze and a 25x25 one."""
PROBE_SQUARES = 64
"""Observations in the default probe set (evenly spaced over the levels' field squares)."""


@dataclass(frozen=True)
class FastModeError:
    """How far ``mode`` (``"fast"`` by default) is from the exact mode on a probe set.

    ``runs``: the concrete path the mode took (``"bf16"`` or ``"exact"``); ``max_abs_dp`` and
    ``mean_abs_dp``: max and mean over the probe observations and the five moves of
    |p_mode - p_exact| (probabilities in [0, 1]); ``probe``: what was measured, in words;
    ``observations``: probe size; ``speedup``: exact time / mode time on the probe batch (best of
    2, interleaved; 1.0 without timing when the mode is the exact path); ``note``: why the mode
    runs what it runs."""

    mode: str
    runs: str
    max_abs_dp: float
    mean_abs_dp: float
    probe: str
    observations: int
    speedup: float
    note: str

    @property
    def is_exact(self) -> bool:
        """True when the mode ran the exact path (the error is then exactly 0)."""
        return self.runs == "exact"

    def summary(self) -> str:
        """One line for a CLI or a status bar."""
        if self.is_exact:
            return f"{self.mode} mode = exact path (max |dp| 0): {self.note}"
        return (
            f"{self.mode} mode ({self.runs}): max |dp| {self.max_abs_dp:.2e}, mean |dp| {self.mean_abs_dp:.2e} "
            f"on {self.probe}; {self.speedup:.2f}x the exact mode"
        )


def probe_observations(mazes: Sequence[Maze], n: int = PROBE_SQUARES) -> tuple[np.ndarray, str]:
    """uint8 (<= n, 64, 64, 3) observations: the mouse on ``n`` evenly spaced field squares over
    ``mazes``, and their description."""
    items = [(m, sq) for m in mazes for sq in field_squares(m)]
    if not items:
        raise ValueError("the probe mazes have no squares")
    picks = np.unique(np.linspace(0, len(items) - 1, min(n, len(items))).round().astype(int))
    obs = np.concatenate([observations(items[i][0], [items[i][1]]) for i in picks])
    seeds = ", ".join(str(m.seed) for m in mazes)
    return obs, f"{len(picks)} squares of levels {seeds}"


_CACHE: weakref.WeakKeyDictionary[ImpalaPolicy, dict] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def fast_mode_error(
    policy: ImpalaPolicy,
    mazes: Sequence[Maze] | None = None,
    *,
    mode: str = "fast",
    squares: int = PROBE_SQUARES,
) -> FastModeError:
    """Measured error of ``mode`` (default ``"fast"``; ``"bf16"`` forces bf16) against the exact
    mode, for this policy on its device.

    Probe: the mouse on ``squares`` evenly spaced field squares of ``mazes`` (default: levels
    ``PROBE_SEEDS``). Returns a ``FastModeError`` (max and mean |dp| over all move
    probabilities, the speed-up, a description of the probe). Costs two passes over the probe
    (a second or so at scale 4 on 2 cores); results are cached per policy (until its weights
    change), mode and probe. When the mode runs the exact path it returns error 0 at once.
    """
    mode = resolve_mode(mode)
    runs = concrete_mode(policy, mode)
    note = fast_precision(policy).reason if mode == "fast" else f"{mode} forced"
    mazes = [Maze.from_seed(s) for s in PROBE_SEEDS] if mazes is None else list(mazes)
    seeds = ", ".join(str(m.seed) for m in mazes)
    if runs == "exact":
        return FastModeError(mode, runs, 0.0, 0.0, f"levels {seeds} (not run: identical path)", 0, 1.0, note)
    from mazewb.policy.runtime import _params_key

    key = (_params_key(policy), mode, tuple((m.seed, hash(m)) for m in mazes), squares)
    with _LOCK:
        hit = _CACHE.get(policy, {}).get(key)
    if hit is not None:
        return hit
    obs, probe = probe_observations(mazes, squares)
    x = to_input(policy, obs)
    exact = move_probabilities(policy, x, mode="exact")
    approx = move_probabilities(policy, x, mode=runs)
    times = {"exact": float("inf"), runs: float("inf")}
    for _ in range(2):
        for m in ("exact", runs):
            t0 = time.perf_counter()
            move_probabilities(policy, x, mode=m)
            times[m] = min(times[m], time.perf_counter() - t0)
    dp = np.abs(approx - exact)
    result = FastModeError(
        mode, runs, float(dp.max()), float(dp.mean()), probe, len(obs), times["exact"] / times[runs], note
    )
    with _LOCK:
        _CACHE.setdefault(policy, {})[key] = result
    return result
