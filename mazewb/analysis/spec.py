"""Interventions as a short spec, and the one function that builds them.

A ``SteerSpec`` says which interventions to apply in a few numbers (coefficients, source mazes,
channels), so that a link, a lesson step or a test can carry it; ``spec_interventions`` turns
it into the ``Intervention`` values of ``mazewb.analysis`` for one maze. The web app and the
lessons both build their interventions here, so they always agree.

Squares are ``(row, col)`` maze squares (row 0 at the bottom).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from mazewb.analysis.forward import DEFAULT_LAYER
from mazewb.analysis.patching import mean_ablation, resampled_channels, zero_ablation
from mazewb.analysis.steering import (
    ZeroVectorWarning,
    cheese_vector,
    retarget,
    top_right_corridor,
    top_right_vector,
    with_coeff,
)
from mazewb.errors import InterventionError
from mazewb.maze import Maze
from mazewb.maze.geometry import Square
from mazewb.policy import ImpalaPolicy, Intervention


@dataclass(frozen=True)
class SteerSpec:
    """Interventions as data that can be rebuilt: which vectors, which channels, from where.

    ``*_source`` is ``None`` for "the maze on screen" or a procgen seed. A coefficient of 0
    switches a vector off; an empty channel tuple switches ablation / resampling off;
    ``retarget_square`` None switches retargeting off.
    """

    layer: str = DEFAULT_LAYER
    cheese_coeff: float = 0.0
    cheese_source: int | None = None
    top_right_coeff: float = 0.0
    top_right_source: int | None = None
    retarget_square: Square | None = None
    retarget_channels: tuple[int, ...] = ()
    retarget_value: float = 5.5
    ablate_channels: tuple[int, ...] = ()
    ablate_mode: str = "zero"
    resample_channels: tuple[int, ...] = ()
    resample_source: int = 1

    @property
    def active(self) -> bool:
        return bool(
            self.cheese_coeff
            or self.top_right_coeff
            or (self.retarget_square is not None and self.retarget_channels)
            or self.ablate_channels
            or self.resample_channels
        )


@lru_cache(maxsize=512)
def seed_maze(seed: int) -> Maze:
    """``Maze.from_seed(seed)``, memoised (a pure function of the seed; about 45 ms uncached)."""
    return Maze.from_seed(seed)


def effective_spec(spec: SteerSpec) -> SteerSpec:
    """The spec with the settings of switched-off interventions reset to their defaults, so
    that specs with equal effects compare (and cache) equal; ``SteerSpec()`` when nothing is on."""
    out = SteerSpec(layer=spec.layer)
    if spec.cheese_coeff:
        out = replace(out, cheese_coeff=spec.cheese_coeff, cheese_source=spec.cheese_source)
    if spec.top_right_coeff:
        out = replace(out, top_right_coeff=spec.top_right_coeff, top_right_source=spec.top_right_source)
    if spec.retarget_square is not None and spec.retarget_channels:
        out = replace(
            out,
            retarget_square=spec.retarget_square,
            retarget_channels=spec.retarget_channels,
            retarget_value=spec.retarget_value,
        )
    if spec.ablate_channels:
        out = replace(out, ablate_channels=spec.ablate_channels, ablate_mode=spec.ablate_mode)
    if spec.resample_channels:
        out = replace(out, resample_channels=spec.resample_channels, resample_source=spec.resample_source)
    return out if out.active else SteerSpec()


def _no_cache(key: Hashable, compute: Callable[[], Any]) -> Any:  # noqa: ARG001
    return compute()


def _same_size_hint(start: int, size: int) -> str:
    for seed in range(start, start + 300):
        if seed_maze(seed).size == size:
            return f" (seed {seed} is {size}x{size})"
    return ""


def spec_interventions(
    policy: ImpalaPolicy,
    maze: Maze,
    spec: SteerSpec,
    *,
    cached: Callable[[Hashable, Callable[[], Any]], Any] = _no_cache,
    policy_key: str = "",
    strict: bool = True,
) -> tuple[tuple[Intervention, ...], list[str]]:
    """The interventions of ``spec`` on ``maze`` in a fixed order (cheese vector, top-right
    vector, retargeting, ablation, resampling), and notes for the user.

    ``cached(key, compute)``: an optional result cache for the expensive unit vectors and
    resampled activations (keys start with ``policy_key``). A top-right vector that is zero
    (a 25x25 maze has no wall padding to carve) raises ``InterventionError`` when ``strict``;
    otherwise it is left out with a note. Every problem raises ``InterventionError`` (a
    ``MazewbError``) naming it."""
    spec = effective_spec(spec)
    if not spec.active:
        return (), []
    layer = spec.layer
    if layer not in policy.hook_points():
        raise InterventionError(f"the steering layer {layer!r} is not a hook point of the loaded agent")
    channels = policy.hook_points()[layer][0]
    for name in ("retarget_channels", "ablate_channels", "resample_channels"):
        bad = [c for c in getattr(spec, name) if not 0 <= c < channels]
        if bad:
            what = name.split("_")[0]
            raise InterventionError(f"{what} channels {bad} are outside 0..{channels - 1} of {layer}")
    out: list[Intervention] = []
    notes: list[str] = []
    if spec.cheese_coeff:
        src = maze if spec.cheese_source is None else seed_maze(spec.cheese_source)
        if src.cheese is None:
            raise InterventionError("the cheese vector needs a source maze with a cheese (this one has none)")
        unit = cached(("cheese-vector", policy_key, src, layer), lambda: cheese_vector(policy, src, 1.0, layer))
        out.append(with_coeff(unit, spec.cheese_coeff))
    if spec.top_right_coeff:
        src = maze if spec.top_right_source is None else seed_maze(spec.top_right_source)
        if not top_right_corridor(src):
            text = (
                f"The top-right vector of a {src.size}x{src.size} maze is zero (no wall padding to carve); "
                "take it from a smaller maze ('from seed', tvsrc=SEED)."
            )
            if strict:
                raise InterventionError(text)
            notes.append(text)
        else:

            def make_tr() -> Intervention:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ZeroVectorWarning)
                    return top_right_vector(policy, src, 1.0, layer)

            unit = cached(("top-right-vector", policy_key, src, layer), make_tr)
            out.append(with_coeff(unit, spec.top_right_coeff))
    if spec.retarget_square is not None and spec.retarget_channels:
        if not maze.in_bounds(spec.retarget_square) or not maze.is_open(spec.retarget_square):
            raise InterventionError(f"the retarget square {spec.retarget_square} is not an open square of the maze")
        out.append(retarget(policy, maze, spec.retarget_square, spec.retarget_channels, spec.retarget_value, layer))
    if spec.ablate_channels:
        if spec.ablate_mode == "mean":
            out.append(mean_ablation(policy, layer, spec.ablate_channels))
        else:
            out.append(zero_ablation(layer, spec.ablate_channels))
    if spec.resample_channels:
        src = seed_maze(spec.resample_source)
        if src.size != maze.size:
            raise InterventionError(
                f"resampling needs a source maze of the same size: seed {spec.resample_source} is "
                f"{src.size}x{src.size}, this maze is {maze.size}x{maze.size}"
                + _same_size_hint(spec.resample_source, maze.size)
            )
        out.append(
            cached(
                ("resample", policy_key, maze, src, spec.resample_channels, layer),
                lambda: resampled_channels(policy, maze, src, spec.resample_channels, layer),
            )
        )
    return tuple(out), notes


__all__ = ["SteerSpec", "effective_spec", "seed_maze", "spec_interventions"]
