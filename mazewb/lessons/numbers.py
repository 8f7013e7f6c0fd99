"""Live numbers: every ``{placeholder}`` a lesson caption may use, computed from the loaded policy
and the step's view state, and formatted one way everywhere.

A ``StepContext`` holds one (policy, state) pair and computes what its placeholders need lazily
(one vector field pair, the exact outcomes, the decision square, a channel ranking, a steering
grid), so a step costs only what it shows. Behaviour numbers come in three forms: ``{q}`` for
the unpatched agent, ``{q_steered}`` under the step's interventions, ``{q_change}`` for the
difference (steered minus unpatched).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mazewb import analysis as an
from mazewb.app.state import ViewState
from mazewb.lessons.steer import steer_interventions
from mazewb.maze.geometry import square_to_cell
from mazewb.maze.graph import euclidean, path_distance, top_right_region
from mazewb.policy import ImpalaPolicy, Intervention, load_policy

RANK_SEEDS = range(60)
"""Levels the live channel ranking scores channels on: enough for the top channels to be stable
for the bundled agent, few enough (about 45 usable levels, one forward pass to the layer) for a
lesson step to rank them in seconds on a CPU."""
DEFAULT_REGION = 5


def zoo_dir() -> Path:
    """Where agents trained on other cheese regions live: ``checkpoints/zoo`` beside the bundled agent."""
    from mazewb.policy.checkpoint import DEFAULT_CHECKPOINT

    return DEFAULT_CHECKPOINT.parent / "zoo"


# --- formatting: one function per kind of number --------------------------------------------------------


def _square(sq: Any) -> str:
    return "none" if sq is None else f"({int(sq[0])}, {int(sq[1])})"


def _coeff(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{float(x):g}"


FORMATS: dict[str, Callable[[Any], str]] = {
    "prob": lambda x: f"{float(x):.3f}",  # probabilities, as the app and the CLI show them
    "change": lambda x: f"{float(x):+.3f}",  # a signed difference of probabilities
    "score": lambda x: f"{float(x):.3f}",  # correlations, fractions of variance
    "steps": lambda x: f"{float(x):.1f}",  # expected episode length
    "distance": lambda x: "unreachable" if not np.isfinite(x) else f"{float(x):.1f}",  # straight-line, squares
    "moves": lambda x: "unreachable" if not np.isfinite(x) else str(int(x)),  # path length
    "count": lambda x: str(int(x)),
    "coeff": _coeff,
    "square": _square,
    "flag": lambda x: "yes" if x else "no",
    "text": str,
}
NUMERIC = {"prob", "change", "score", "steps", "distance", "moves", "count", "coeff", "flag"}


def format_value(kind: str, value: Any) -> str:
    return FORMATS[kind](value)


def shown_value(kind: str, value: Any) -> float:
    """The number as a student reads it (rounded as displayed): expectations compare these, so a
    claim never contradicts the numbers on screen."""
    if kind == "flag":
        return 1.0 if value else 0.0
    if kind in ("distance", "moves") and not np.isfinite(value):
        return float("inf")
    return float(format_value(kind, value))


# --- the step's computations ------------------------------------------------------------------------------


class _Ranks:
    """Channel rankings per (weights, layer, seeds), shared by all steps and sessions: a ranking is
    the costly part of a lesson and a pure function of those."""

    def __init__(self, size: int = 8) -> None:
        self._lock = threading.Lock()
        self._data: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
        self._size = size

    def get(self, policy: ImpalaPolicy, layer: str, seeds: Sequence[int]) -> pd.DataFrame:
        key = (an.policy_identity(policy), layer, tuple(seeds))
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        table = an.rank_cheese_channels(policy, layer, seeds)
        with self._lock:
            self._data[key] = table
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return table


RANKS = _Ranks()


def ranked_channels(policy: ImpalaPolicy, layer: str, k: int, seeds: Sequence[int] = RANK_SEEDS) -> tuple[int, ...]:
    """The ``k`` best cheese-tracking channels of ``layer`` for ``policy`` (by correlation)."""
    return tuple(int(c) for c in RANKS.get(policy, layer, seeds)["channel"][:k])


@dataclass(frozen=True)
class ZooAgent:
    name: str
    region: int | None
    outcomes: an.ExactOutcomes


class StepContext:
    """The numbers of one view state for one policy, computed on first use."""

    def __init__(
        self,
        policy: ImpalaPolicy,
        state: ViewState,
        *,
        rank_seeds: Sequence[int] = RANK_SEEDS,
        zoo: Path | None = None,
    ) -> None:
        self.policy = policy
        self.state = state
        self.rank_seeds = rank_seeds
        self.zoo = zoo_dir() if zoo is None else zoo

    @cached_property
    def maze(self):  # noqa: ANN201 - Maze
        return self.state.maze()

    @cached_property
    def interventions(self) -> tuple[Intervention, ...]:
        return steer_interventions(self.policy, self.maze, self.state.steer)

    @cached_property
    def _fields(self) -> tuple[an.VectorField, an.VectorField | None]:
        if not self.interventions:
            return an.vector_field(self.policy, self.maze), None
        base, steered = an.vector_fields(self.policy, self.maze, [(), self.interventions])
        return base, steered

    def field(self, steered: bool = False) -> an.VectorField:
        base, patched = self._fields
        if steered:
            if patched is None:
                raise ValueError("this step has no interventions")
            return patched
        return base

    @cached_property
    def _outcomes(self) -> dict[bool, an.ExactOutcomes]:
        out = {False: an.field_outcomes(self.field())}
        if self.interventions:
            out[True] = an.field_outcomes(self.field(True))
        return out

    def outcomes(self, steered: bool = False) -> an.ExactOutcomes:
        return self._outcomes[steered]

    @cached_property
    def decision_square(self):  # noqa: ANN201 - Square | None
        return an.decision_square(self.maze)

    def choice(self, steered: bool = False) -> an.DecisionChoice:
        ds = self.decision_square
        return an.decision_choice(self.maze, ds, self.field(steered).at(ds))

    def reach_target(self, steered: bool = False) -> float:
        return float(an.reach_map(self.field(steered), [self.state.steer.retarget_square])[0])

    def ranking(self, layer: str | None = None) -> pd.DataFrame:
        return RANKS.get(self.policy, layer or self.state.layer, self.rank_seeds)

    @cached_property
    def channel_map(self) -> np.ndarray:
        return an.channel_maps(self.policy, self.maze, self.state.layer)[self.state.channel]

    @cached_property
    def channel_hits_cheese(self) -> bool:
        """Does the step's channel peak within one activation cell of the cheese's cell?"""
        amap = self.channel_map
        height, width = amap.shape
        r, c = divmod(int(np.argmax(amap)), width)
        cr, cc = square_to_cell(self.maze.cheese, self.maze.size, width)
        return max(abs(r - cr), abs(c - cc)) <= 1

    @cached_property
    def grid_coeffs(self) -> tuple[list[float], list[float]]:
        """The shards grid's coefficients, as the app's shards tab spaces them."""
        s = self.state
        cheese = np.linspace(*s.grid_cheese, s.grid_steps).round(3).tolist()
        corner = np.linspace(*s.grid_top_right, s.grid_steps).round(3).tolist()
        return cheese, corner

    @cached_property
    def sweep(self) -> pd.DataFrame:
        cheese, corner = self.grid_coeffs
        return an.steering_sweep(self.policy, [self.maze], cheese, corner, self.state.steer.layer)

    def grid(self, column: str) -> np.ndarray:
        """(top-right coeffs, cheese coeffs) table of one sweep column."""
        table = self.sweep.pivot_table(index="top_right_coeff", columns="cheese_coeff", values=column)
        return table.to_numpy()

    @cached_property
    def zoo_agents(self) -> list[ZooAgent]:
        """Agents in the zoo folder, by training region, each on this step's maze (unpatched)."""
        if not self.zoo.is_dir():
            return []
        agents = []
        for path in sorted(self.zoo.glob("*.pt"))[:12]:  # bounded: one vector field per agent
            policy = load_policy(path, device=next(self.policy.parameters()).device)
            region = (policy.card or {}).get("cheese_region")
            agents.append(
                ZooAgent(path.stem, region if isinstance(region, int) else None, an.outcomes(policy, self.maze))
            )
        return sorted(agents, key=lambda a: (a.region is None, a.region or 0, a.name))


def _additive_fit(grid: np.ndarray) -> float:
    """Fraction of the grid's variance explained by row effect + column effect (1: exactly
    additive); 1.0 for a constant grid."""
    centred = grid - grid.mean()
    total = float((centred**2).sum())
    if total < 1e-12:
        return 1.0
    fit = grid.mean(axis=1, keepdims=True) + grid.mean(axis=0, keepdims=True) - grid.mean()
    return max(0.0, 1.0 - float(((grid - fit) ** 2).sum()) / total)


def _card(ctx: StepContext) -> dict[str, Any]:
    return ctx.policy.card or {}


def _agent(ctx: StepContext) -> str:
    card = _card(ctx)
    name = Path(str(card.get("file") or "an unnamed checkpoint")).name
    arch = card.get("architecture", "IMPALA-CNN")
    scale = card.get("scale", getattr(ctx.policy, "scale", "?"))
    return f"{name} ({arch}, scale {scale})"


def _region(ctx: StepContext) -> str:
    region = _card(ctx).get("cheese_region")
    if not isinstance(region, int):
        return "an unrecorded region"
    return "the top-right square" if region == 1 else f"the top-right {region} x {region}"


def _region_size(ctx: StepContext) -> int:
    region = _card(ctx).get("cheese_region")
    return region if isinstance(region, int) else DEFAULT_REGION


def _samples(ctx: StepContext) -> str:
    n = _card(ctx).get("samples")
    if not isinstance(n, (int, float)):
        return "an unrecorded number of"
    return f"{n / 1e6:.1f} million" if n >= 1e5 else str(int(n))


def _zoo_text(ctx: StepContext) -> str:
    agents = ctx.zoo_agents
    if not agents:
        return "no zoo agents installed"
    parts = []
    for a in agents:
        region = "region ?" if a.region is None else f"region {a.region}"
        parts.append(
            f"{a.name} ({region}): P(cheese) {format_value('prob', a.outcomes.p_cheese)}, "
            f"P(top-right first) {format_value('prob', a.outcomes.p_top_right)}"
        )
    return "; ".join(parts)


# --- the registry ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placeholder:
    """One name a caption may use. ``needs``: what the step's state must have for it to exist:
    "steer" (interventions), "ds" (a decision square), "cheese", "retarget" (a retarget square),
    "zoo" nothing static (it says when no agents are installed)."""

    name: str
    kind: str
    help: str
    compute: Callable[[StepContext], Any]
    needs: frozenset[str] = frozenset()

    def value(self, ctx: StepContext) -> Any:
        return self.compute(ctx)

    def text(self, ctx: StepContext) -> str:
        return format_value(self.kind, self.compute(ctx))


PLACEHOLDERS: dict[str, Placeholder] = {}


def _add(name: str, kind: str, help_text: str, compute: Callable[[StepContext], Any], *needs: str) -> None:
    PLACEHOLDERS[name] = Placeholder(name, kind, help_text, compute, frozenset(needs))


def _add_behaviour(
    name: str, kind: str, help_text: str, compute: Callable[[StepContext, bool], Any], *needs: str
) -> None:
    """``{name}`` (unpatched), ``{name}_steered`` and ``{name}_change`` (steered minus unpatched)."""
    _add(name, kind, help_text, lambda c: compute(c, False), *needs)
    _add(
        f"{name}_steered",
        kind,
        f"{help_text}, under the step's interventions",
        lambda c: compute(c, True),
        "steer",
        *needs,
    )
    if kind in ("prob", "steps"):
        change_kind = "change" if kind == "prob" else "steps"
        _add(
            f"{name}_change",
            change_kind,
            f"{help_text}: steered minus unpatched",
            lambda c: compute(c, True) - compute(c, False),
            "steer",
            *needs,
        )


# The agent and how it was trained (from its model card).
_add("agent", "text", "the loaded checkpoint's file name and architecture", _agent)
_add("region", "text", "where the cheese was during training, e.g. 'the top-right 5 x 5'", _region)
_add("region_size", "count", "side of the training region (5 when the card does not say)", _region_size)
_add("method", "text", "how the agent was trained (its model card)", lambda c: _card(c).get("method", "not recorded"))
_add("samples", "text", "training samples in millions, e.g. '10.9 million'", _samples)
# The maze.
_add("seed", "count", "the procgen level", lambda c: c.state.seed)
_add("size", "count", "the maze's side in squares", lambda c: c.maze.size)
_add("cheese", "square", "the cheese's square (row, col), row 0 at the bottom", lambda c: c.maze.cheese, "cheese")
_add("mouse", "square", "the mouse's square", lambda c: c.maze.mouse)
_add("top_right", "square", "the maze's top-right square", lambda c: c.maze.top_right)
_add(
    "decision_square",
    "square",
    "where the paths to the cheese and to the top-right part",
    lambda c: c.decision_square,
    "ds",
)
_add(
    "cheese_in_region",
    "flag",
    "is the cheese inside the training region (top-right region_size x region_size)?",
    lambda c: c.maze.cheese in top_right_region(c.maze, _region_size(c)),
    "cheese",
)
_add(
    "cheese_to_ds",
    "moves",
    "path distance (moves) from the cheese to the decision square",
    lambda c: path_distance(c.maze, c.maze.cheese, c.decision_square),
    "ds",
)
_add(
    "cheese_to_top_right",
    "distance",
    "straight-line distance (squares) from the cheese to the top-right square",
    lambda c: euclidean(c.maze.cheese, c.maze.top_right),
    "cheese",
)
# The step's interventions, as set in its state.
_add("cheese_coeff", "coeff", "the cheese vector's coefficient (cv)", lambda c: c.state.steer.cheese_coeff)
_add("top_right_coeff", "coeff", "the top-right vector's coefficient (tv)", lambda c: c.state.steer.top_right_coeff)
_add("layer", "text", "the layer shown (layer)", lambda c: c.state.layer)
_add("channel", "count", "the channel shown (ch; with 'channels: top' the best-ranked one)", lambda c: c.state.channel)
_add("retarget_square", "square", "the retarget square (rt)", lambda c: c.state.steer.retarget_square, "retarget")
_add(
    "retarget_channels",
    "text",
    "the channels set at the retarget square (rtch)",
    lambda c: ", ".join(str(ch) for ch in c.state.steer.retarget_channels),
    "retarget",
)
_add("retarget_value", "coeff", "the value they are set to (rtv)", lambda c: c.state.steer.retarget_value, "retarget")
# Exact behaviour from the mouse's square.
_add_behaviour("p_cheese", "prob", "exact P(reach the cheese within 500 steps)", lambda c, s: c.outcomes(s).p_cheese)
_add_behaviour(
    "p_top_right_first",
    "prob",
    "exact P(reach the top-right square before the cheese)",
    lambda c, s: c.outcomes(s).p_top_right,
)
_add_behaviour(
    "p_neither", "prob", "exact P(neither cheese nor top-right square)", lambda c, s: c.outcomes(s).p_neither
)
_add_behaviour(
    "p_cheese_first",
    "prob",
    "exact P(reach the cheese before the top-right square); with p_top_right_first and p_neither it sums to 1",
    lambda c, s: max(0.0, 1.0 - c.outcomes(s).p_top_right - c.outcomes(s).p_neither),
)
_add_behaviour("p_timeout", "prob", "exact P(no cheese within 500 steps)", lambda c, s: c.outcomes(s).p_timeout)
_add_behaviour("expected_steps", "steps", "expected episode length in steps", lambda c, s: c.outcomes(s).expected_steps)
_add_behaviour(
    "p_cheese_move_at_ds",
    "prob",
    "P(the move towards the cheese) at the decision square",
    lambda c, s: c.choice(s).p_cheese,
    "ds",
)
_add_behaviour(
    "p_top_right_move_at_ds",
    "prob",
    "P(the move towards the top-right square) at the decision square",
    lambda c, s: c.choice(s).p_top_right,
    "ds",
)
_add_behaviour(
    "p_reach_target",
    "prob",
    "exact P(reach the retarget square within 500 steps)",
    lambda c, s: c.reach_target(s),
    "retarget",
)
# Channels that track the cheese, ranked live over RANK_SEEDS.
_add(
    "top_cheese_channels",
    "text",
    "the 3 best cheese-tracking channels of the layer shown, ranked live",
    lambda c: ", ".join(str(int(ch)) for ch in c.ranking()["channel"][:3]),
)
_add("top_cheese_channel", "count", "the best cheese-tracking channel", lambda c: int(c.ranking()["channel"].iloc[0]))
_add(
    "top_channel_corr",
    "score",
    "its mean correlation with the cheese's cell over the ranking levels",
    lambda c: float(c.ranking()["corr"].iloc[0]),
)
_add(
    "top_channel_hit_rate",
    "prob",
    "fraction of ranking levels where its map peaks within one cell of the cheese",
    lambda c: float(c.ranking()["argmax_hit"].iloc[0]),
)
_add("ranking_levels", "count", "levels the ranking used", lambda c: int(c.ranking()["n_mazes"].iloc[0]))
_add(
    "channel_hits_cheese",
    "flag",
    "does the shown channel peak within one cell of the cheese on this maze?",
    lambda c: c.channel_hits_cheese,
    "cheese",
)
# The shards grid (shards tab: gc, gt, gn), at the decision square.
_add(
    "grid_p_cheese_ds_min",
    "prob",
    "smallest P(cheese move at the decision square) over the grid",
    lambda c: float(np.nanmin(c.grid("p_cheese_ds"))),
    "ds",
)
_add(
    "grid_p_cheese_ds_max",
    "prob",
    "largest P(cheese move at the decision square) over the grid",
    lambda c: float(np.nanmax(c.grid("p_cheese_ds"))),
    "ds",
)
_add(
    "grid_cheese_effect",
    "change",
    "P(cheese move at the decision square), largest minus smallest cheese coefficient, mean over top-right ones",
    lambda c: float(np.mean(c.grid("p_cheese_ds")[:, -1] - c.grid("p_cheese_ds")[:, 0])),
    "ds",
)
_add(
    "grid_top_right_effect",
    "change",
    "P(top-right move at the decision square), largest minus smallest top-right coefficient, mean over cheese ones",
    lambda c: float(np.mean(c.grid("p_top_right_ds")[-1, :] - c.grid("p_top_right_ds")[0, :])),
    "ds",
)
_add(
    "grid_additive_fit",
    "score",
    "fraction of the grid's variance of P(cheese move at the decision square) that cheese effect + top-right "
    "effect explain (1: the shards add exactly)",
    lambda c: _additive_fit(c.grid("p_cheese_ds")),
    "ds",
)
# Agents trained with other regions (checkpoints/zoo/*.pt).
_add("zoo_count", "count", "number of zoo agents installed", lambda c: len(c.zoo_agents))
_add("zoo_agents", "text", "each zoo agent's region, P(cheese) and P(top-right first) on this maze", _zoo_text)


def placeholder_help() -> list[tuple[str, str, str]]:
    """(name, kind, help) of every placeholder, for docs and ``--help``."""
    return [(p.name, p.kind, p.help) for p in PLACEHOLDERS.values()]
