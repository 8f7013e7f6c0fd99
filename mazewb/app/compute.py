"""The app's bridge to the analysis layer: cached calls keyed by (checkpoint, maze, interventions).

Nothing here is science: each method asks ``mazewb.analysis`` for one result and keeps it in a
bounded cache, so that an edit recomputes only what it changed, and figures (and users) that
need the same vector field share one batched forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from mazewb import analysis as an
from mazewb.analysis.spec import SteerSpec, effective_spec, spec_interventions
from mazewb.app.cache import ResultCache
from mazewb.app.figures import image_uri, upscale
from mazewb.app.registry import LoadedPolicy, PolicyRegistry
from mazewb.maze import Maze, render_frame, render_observations

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Behaviour:
    """A vector field and the exact outcomes of the episode from the mouse's square under it."""

    field: an.VectorField
    outcomes: an.ExactOutcomes


effective = effective_spec  # the name the app used before


class Workbench:
    """Per-server state that is safe to share between sessions: loaded policies (by checkpoint)
    and bounded result caches whose keys include the checkpoint's content hash, the maze and
    the intervention spec. It holds nothing about any one user."""

    def __init__(self, checkpoint: str | None = None, cache_bytes: int = 384 * 2**20, allow_paths: bool = True) -> None:
        self.registry = PolicyRegistry(checkpoint, allow_paths=allow_paths)
        self.cache = ResultCache(max_bytes=cache_bytes)
        self.images = ResultCache(max_bytes=64 * 2**20)
        from concurrent.futures import ThreadPoolExecutor

        from mazewb.app.jobs import JobRunner

        self.jobs = JobRunner()
        self._layers: dict[str, dict[str, tuple[int, ...]]] = {}
        self._prefetcher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mazewb-prefetch")

    def policy(self, checkpoint: str) -> LoadedPolicy:
        return self.registry.get(checkpoint)

    def prefetch(self, checkpoint: str, maze: Maze, spec: SteerSpec | None = None) -> None:
        """Start computing a maze's behaviour (and patched behaviour) in the background, as soon
        as an edit is known: the figure callbacks, whose requests arrive a round trip later,
        then wait on the same computation (the cache is single-flight) instead of starting it."""

        def work() -> None:
            try:
                lp = self.policy(checkpoint)
                if spec is not None and spec.active:
                    self.patched(lp, maze, spec)
                else:
                    self.behaviour(lp, maze)
            except Exception:  # noqa: BLE001 - the callbacks report errors when they run it
                pass

        self._prefetcher.submit(work)

    def _cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        return self.cache.get(key, compute)

    # --- pictures ------------------------------------------------------------------------
    def background(self, maze: Maze, view: str) -> str:
        """Data URI of the maze as the game draws it: the 512x512 frame, or the agent's 64x64
        observation (mouse on its square) upscaled without smoothing."""

        def make() -> str:
            if view == "agent":
                return image_uri(upscale(self.observation(maze)), "PNG")
            return image_uri(render_frame(maze), "JPEG")

        return self.images.get(("bg", maze, view), make)

    def observation(self, maze: Maze) -> np.ndarray:
        return self.images.get(("obs", maze), lambda: render_observations(maze, [maze.mouse])[0])

    # --- interventions ---------------------------------------------------------------------
    def interventions(self, lp: LoadedPolicy, maze: Maze, spec: SteerSpec) -> tuple[tuple, list[str]]:
        """The interventions ``spec`` describes for ``maze`` (``spec_interventions``, the one
        library builder, with this server's cache for the unit vectors), and notes for the user
        (e.g. a zero top-right vector)."""
        return spec_interventions(lp.policy, maze, spec, cached=self._cached, policy_key=lp.key, strict=False)

    def layer_shapes(self, checkpoint: str) -> dict[str, tuple[int, ...]]:
        """The loaded agent's spatial hook points and their (C, H, W) shapes."""
        lp = self.policy(checkpoint)
        return self._layers.get(lp.key) or self._layers.setdefault(
            lp.key, {k: v for k, v in lp.policy.hook_points().items() if len(v) == 3}
        )

    # --- behaviour -------------------------------------------------------------------------
    def behaviour(self, lp: LoadedPolicy, maze: Maze) -> Behaviour:
        """The unpatched vector field and outcomes (one batched forward pass, cached)."""
        return self._cached(("behaviour", lp.key, maze), lambda: self._behaviour(an.vector_field(lp.policy, maze)))

    @staticmethod
    def _behaviour(field: an.VectorField) -> Behaviour:
        return Behaviour(field, an.field_outcomes(field))

    def patched(self, lp: LoadedPolicy, maze: Maze, spec: SteerSpec) -> tuple[Behaviour, Behaviour | None, list[str]]:
        """Original and patched behaviour; both fields from one call when neither is cached, so
        the layers before the intervention run once."""
        ivs, notes = self.interventions(lp, maze, spec)
        eff = effective(spec)
        if not ivs:
            return self.behaviour(lp, maze), None, notes
        key = ("patched", lp.key, maze, eff)
        base_key = ("behaviour", lp.key, maze)
        if base_key in self.cache:
            original = self.behaviour(lp, maze)
            patched = self._cached(key, lambda: self._behaviour(an.vector_field(lp.policy, maze, ivs)))
            return original, patched, notes

        def both() -> Behaviour:
            fields = an.vector_fields(lp.policy, maze, [(), ivs])
            self.cache.put(base_key, self._behaviour(fields[0]))
            return self._behaviour(fields[1])

        patched = self._cached(key, both)
        return self.behaviour(lp, maze), patched, notes

    def reach_cheese(self, lp: LoadedPolicy, maze: Maze) -> np.ndarray:
        """Exact P(reach the cheese within 500 steps) from each square of the vector field."""
        beh = self.behaviour(lp, maze)
        return self._cached(("reach-cheese", lp.key, maze), lambda: an.cheese_probability_from_each(beh.field))

    def channel_maps(self, lp: LoadedPolicy, maze: Maze, layer: str) -> np.ndarray:
        """(C, H, W) activations at ``layer`` with the mouse on its square."""
        return self._cached(("maps", lp.key, maze, layer), lambda: an.channel_maps(lp.policy, maze, layer))
