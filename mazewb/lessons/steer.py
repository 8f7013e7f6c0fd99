"""The interventions a view state's steer fields describe, built from the library.

The app keeps interventions in its URL as a *spec* (coefficients, source seeds, channels); a
lesson step is such a URL, so the lesson engine rebuilds the same interventions with the one
library function the app uses too (``mazewb.analysis.spec.spec_interventions``): a source of
None means "the maze on screen".
"""

from __future__ import annotations

from mazewb.analysis.spec import SteerSpec, spec_interventions
from mazewb.maze import Maze
from mazewb.policy import ImpalaPolicy, Intervention


def steer_interventions(policy: ImpalaPolicy, maze: Maze, spec: SteerSpec) -> tuple[Intervention, ...]:
    """The interventions of ``spec`` on ``maze``, in a fixed order (cheese vector, top-right
    vector, retargeting, ablation, resampling); () when the spec switches everything off."""
    return spec_interventions(policy, maze, spec, strict=True)[0]
