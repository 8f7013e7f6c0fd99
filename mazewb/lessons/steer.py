"""The interventions a view state's steer fields describe, built from the library.

The app keeps interventions in its URL as a *spec* (coefficients, source seeds, channels); a
lesson step is such a URL, so the lesson engine rebuilds the same interventions here with
``mazewb.analysis``: a source of None means "the maze on screen".
"""

from __future__ import annotations

import warnings

from mazewb import analysis as an
from mazewb.app.state import SteerSpec, seed_maze
from mazewb.errors import InterventionError
from mazewb.maze import Maze
from mazewb.policy import ImpalaPolicy, Intervention


def steer_interventions(policy: ImpalaPolicy, maze: Maze, spec: SteerSpec) -> tuple[Intervention, ...]:
    """The interventions of ``spec`` on ``maze``, in a fixed order (cheese vector, top-right
    vector, retargeting, ablation, resampling); () when the spec switches everything off."""
    layer = spec.layer
    if layer not in policy.hook_points():
        raise InterventionError(f"the steering layer {layer!r} is not a hook point of the loaded agent")
    out: list[Intervention] = []
    if spec.cheese_coeff:
        src = maze if spec.cheese_source is None else seed_maze(spec.cheese_source)
        if src.cheese is None:
            raise InterventionError("the cheese vector needs a source maze with a cheese (this one has none)")
        out.append(an.cheese_vector(policy, src, spec.cheese_coeff, layer))
    if spec.top_right_coeff:
        src = maze if spec.top_right_source is None else seed_maze(spec.top_right_source)
        if not an.top_right_corridor(src):
            raise InterventionError(
                f"the top-right vector of a {src.size}x{src.size} maze is zero (no wall padding to carve); "
                "take it from a smaller maze (tvsrc=SEED)"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", an.ZeroVectorWarning)
            out.append(an.top_right_vector(policy, src, spec.top_right_coeff, layer))
    if spec.retarget_square is not None and spec.retarget_channels:
        if not maze.is_open(spec.retarget_square):
            raise InterventionError(f"the retarget square {spec.retarget_square} is not an open square of the maze")
        out.append(an.retarget(policy, maze, spec.retarget_square, spec.retarget_channels, spec.retarget_value, layer))
    if spec.ablate_channels:
        if spec.ablate_mode == "mean":
            out.append(an.mean_ablation(policy, layer, spec.ablate_channels))
        else:
            out.append(an.zero_ablation(layer, spec.ablate_channels))
    if spec.resample_channels:
        src = seed_maze(spec.resample_source)
        if src.size != maze.size:
            raise InterventionError(
                f"resampling needs a source maze of the same size: seed {spec.resample_source} is "
                f"{src.size}x{src.size}, this maze is {maze.size}x{maze.size}"
            )
        out.append(an.resampled_channels(policy, maze, src, spec.resample_channels, layer))
    return tuple(out)
