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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mazewb import analysis as an
from mazewb.analysis.cache import LRU
from mazewb.app.state import ViewState
from mazewb.lessons.steer import steer_interventions
from mazewb.maze.geometry import square_to_cell
from mazewb.maze.graph import euclidean, path_distance, top_right_region
from mazewb.policy import ImpalaPolicy, Intervention, load_policy
from mazewb.train.evaluate import (
    COMMON_REGION,
    MazeProbs,
    maze_rows,
    off_distribution_mazes,
    training_region,
    zoo_checkpoints,
)

RANK_SEEDS = range(60)
"""Levels the live channel ranking scores channels on: enough for the top channels to be stable
for the bundled agent, few enough (about 45 usable levels, one forward pass to the layer) for a
lesson step to rank them in seconds on a CPU."""
DEFAULT_REGION = 5


ZOO_SEEDS = (0, 2, 5, 26, 27)
"""Levels of the zoo step's common test: each keeps procgen's own cheese outside the top-right
5x5 (``COMMON_REGION``) and has a decision square, as in ``mazewb eval-regions``' common test;
five small mazes (7x7 to 17x17, about 450 squares) so that every agent costs one short batched
forward pass. ``mazewb eval-regions`` runs the same test on hundreds of levels."""
MAX_ZOO_AGENTS = 12


def zoo_paths(zoo: Path | None = None) -> list[Path]:
    """The zoo's agents (``checkpoints/zoo/*.pt`` beside the bundled agent, as ``mazewb
    eval-regions`` finds them), without the bundled agent, at most ``MAX_ZOO_AGENTS``."""
    return zoo_checkpoints(zoo)[1:][:MAX_ZOO_AGENTS]


def zoo_fingerprint(zoo: Path | None = None) -> tuple:
    """(name, size, mtime) of every zoo agent: changes when an agent is added or replaced."""
    out = []
    for path in zoo_paths(zoo):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


# --- formatting: one function per kind of number --------------------------------------------------------


def _square(sq: Any) -> str:
    return "none" if sq is None else f"({int(sq[0])}, {int(sq[1])})"


def _coeff(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{float(x):g}"


FORMATS: dict[str, Callable[[Any], str]] = {
    "prob": lambda x: "n/a" if np.isnan(x) else f"{float(x):.3f}",  # probabilities, as the app and the CLI show them
    "change": lambda x: "n/a" if np.isnan(x) else f"{float(x):+.3f}",  # a signed difference of probabilities
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
    if kind in NUMERIC and isinstance(value, float) and np.isnan(value):
        return float("nan")  # a number that does not exist here: every comparison with it fails
    if kind in ("distance", "moves") and not np.isfinite(value):
        return float("inf")
    return float(format_value(kind, value))


# --- the step's computations ------------------------------------------------------------------------------


class _Ranks:
    """Channel rankings per (weights, layer, seeds), shared by all steps and sessions: a ranking is
    the costly part of a lesson and a pure function of those."""

    def __init__(self, size: int = 8) -> None:
        self._tables: LRU[tuple, pd.DataFrame] = LRU(size)

    def get(self, policy: ImpalaPolicy, layer: str, seeds: Sequence[int]) -> pd.DataFrame:
        key = (an.policy_identity(policy), layer, tuple(seeds))
        table = self._tables.get(key)
        if table is None:
            table = an.rank_cheese_channels(policy, layer, seeds)
            self._tables.put(key, table)
        return table


RANKS = _Ranks()


def ranked_channels(policy: ImpalaPolicy, layer: str, k: int, seeds: Sequence[int] = RANK_SEEDS) -> tuple[int, ...]:
    """The ``k`` best cheese-tracking channels of ``layer`` for ``policy`` (by correlation)."""
    return tuple(int(c) for c in RANKS.get(policy, layer, seeds)["channel"][:k])


@dataclass(frozen=True)
class ZooAgent:
    """One agent of the zoo step, with its means over the common test (``ZOO_SEEDS``)."""

    name: str
    region: int | None  # the cheese region it was trained with (None: not recorded)
    loaded: bool  # the agent the lesson runs on
    p_cheese: float
    p_top_right: float  # P(top-right square first)
    p_cheese_move_at_ds: float


class _Zoo:
    """Zoo agents loaded once per file version, the common test's mazes rendered once, and each
    agent's common-test means per weights: shared by all steps and sessions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: LRU[tuple, ImpalaPolicy] = LRU(2 * MAX_ZOO_AGENTS)
        self._probs: MazeProbs | None = None
        self._means: LRU[str, tuple[float, float, float]] = LRU(32)

    def policies(self, zoo: Path | None, device: Any) -> list[ImpalaPolicy]:
        out = []
        for version in zoo_fingerprint(zoo):
            key = (*version, str(device))
            policy = self._policies.get(key)
            if policy is None:
                policy = load_policy(version[0], device=device)
                self._policies.put(key, policy)
            out.append(policy)
        return out

    def means(self, policy: ImpalaPolicy) -> tuple[float, float, float]:
        """(P(cheese), P(top-right first), P(cheese move at the decision square)), means over the
        common test's mazes, exact fp32."""
        key = an.policy_identity(policy)
        value = self._means.get(key)
        if value is not None:
            return value
        with self._lock:  # render the common test once, however many sessions ask at once
            if self._probs is None:
                self._probs = MazeProbs(off_distribution_mazes(list(ZOO_SEEDS), COMMON_REGION))
            probs = self._probs
        rows = maze_rows(probs, probs.probs(policy), True)
        value = (
            float(rows["p_cheese"].mean()),
            float(rows["p_top_right"].mean()),
            float(rows["p_cheese_move_at_decision"].mean()),
        )
        self._means.put(key, value)
        return value


ZOO = _Zoo()


def agent_file_name(policy: ImpalaPolicy) -> str:
    """The file name the policy was loaded from (its model card's ``file``)."""
    return Path(str((policy.card or {}).get("file") or "an unnamed checkpoint")).name


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
        self.zoo = zoo  # None: checkpoints/zoo beside the bundled agent

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
    def zoo_policies(self) -> list[ImpalaPolicy]:
        """The zoo's agents (not the loaded one, even when it is also in the zoo)."""
        mine = an.policy_identity(self.policy)
        found = ZOO.policies(self.zoo, next(self.policy.parameters()).device)
        return [p for p in found if an.policy_identity(p) != mine]

    @cached_property
    def zoo_regions(self) -> list[int]:
        """The distinct training regions of the loaded agent and the zoo (known ones), sorted:
        no forward pass needed."""
        regions = {training_region(p) for p in [self.policy, *self.zoo_policies]}
        return sorted(r for r in regions if r is not None)

    @cached_property
    def zoo_agents(self) -> list[ZooAgent]:
        """The loaded agent and the zoo's, each on the common test, by training region."""
        agents = []
        for policy in [self.policy, *self.zoo_policies]:
            p_cheese, p_top_right, at_ds = ZOO.means(policy)
            agents.append(
                ZooAgent(
                    name=agent_file_name(policy),
                    region=training_region(policy),
                    loaded=policy is self.policy,
                    p_cheese=p_cheese,
                    p_top_right=p_top_right,
                    p_cheese_move_at_ds=at_ds,
                )
            )
        return sorted(agents, key=lambda a: (a.region is None, a.region or 0, a.name))

    def zoo_region_mean(self, which: str, column: str = "p_top_right") -> float:
        """Mean ``column`` over the agents of the smallest (``which="smallest"``) or largest
        training region; nan with fewer than two regions (nothing to compare, nothing computed)."""
        if len(self.zoo_regions) < 2:
            return float("nan")
        region = self.zoo_regions[0 if which == "smallest" else -1]
        return float(np.mean([getattr(a, column) for a in self.zoo_agents if a.region == region]))


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
    name = agent_file_name(ctx.policy)
    arch = card.get("architecture", "IMPALA-CNN")
    scale = card.get("scale", getattr(ctx.policy, "scale", "?"))
    return f"{name} ({arch}, scale {scale})"


def _region(ctx: StepContext) -> str:
    region = training_region(ctx.policy)
    if region is None:
        return "an unrecorded region"
    return "the top-right square" if region == 1 else f"the top-right {region} x {region}"


def _region_size(ctx: StepContext) -> int:
    region = training_region(ctx.policy)
    return DEFAULT_REGION if region is None else region


def _samples(ctx: StepContext) -> str:
    n = _card(ctx).get("samples")
    if not isinstance(n, (int, float)):
        return "an unrecorded number of"
    return f"{n / 1e6:.1f} million" if n >= 1e5 else str(int(n))


def _zoo_label(a: ZooAgent) -> str:
    region = "region not recorded" if a.region is None else f"region {a.region}"
    return f"{a.name} ({region}{', loaded' if a.loaded else ''})"


def _zoo_text(ctx: StepContext) -> str:
    if not ctx.zoo_policies:
        return f"only the loaded agent, {agent_file_name(ctx.policy)} (no zoo installed)"
    parts = []
    for a in ctx.zoo_agents:
        parts.append(
            f"{_zoo_label(a)}: P(top-right first) {format_value('prob', a.p_top_right)}, "
            f"P(cheese) {format_value('prob', a.p_cheese)}"
        )
    return "; ".join(parts)


def _zoo_status(ctx: StepContext) -> str:
    """One honest sentence on what the zoo can show for this agent."""
    if not ctx.zoo_policies:
        return (
            "No agents trained on other cheese regions are installed (`checkpoints/zoo/*.pt`), so this step "
            f"cannot check the claim on live agents: the loaded agent ({_region(ctx)}) is a single point of "
            "the curve. With such agents (mazewb's own zoo, or Langosco et al.'s `model_rand_region_N.pth` "
            "files), this step compares them live, and `mazewb eval-regions` draws the whole curve."
        )
    if len(ctx.zoo_regions) < 2:
        return (
            f"The {len(ctx.zoo_policies)} installed zoo agent(s) and the loaded one do not cover two different "
            "training regions (or their model cards do not record them), so there is no curve to read yet."
        )
    lo, hi = ctx.zoo_regions[0], ctx.zoo_regions[-1]
    means = [ctx.zoo_region_mean(w) for w in ("smallest", "largest")]
    p_lo, p_hi = (format_value("prob", m) for m in means)
    shrinks = shown_value("prob", means[0]) > shown_value("prob", means[1])
    verb = "shrinks" if shrinks else "does not shrink"
    return (
        f"With the installed agents the top-right pull {verb} as the region grows: on the common "
        f"test, P(top-right first) is {p_lo} for region {lo} and {p_hi} for region {hi} ({_zoo_text(ctx)})."
    )


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
_add(
    "region_size",
    "count",
    "side of the training region (5 when neither its model card nor its file name says)",
    _region_size,
)
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
# Agents trained with other regions (checkpoints/zoo/*.pt), on the common test (ZOO_SEEDS).
_add("zoo_count", "count", "number of zoo agents installed besides the loaded one", lambda c: len(c.zoo_policies))
_add(
    "zoo_regions",
    "count",
    "number of different training regions among the loaded agent and the zoo (known from their model cards)",
    lambda c: len(c.zoo_regions),
)
_add(
    "zoo_smallest_region",
    "count",
    "the smallest training region among them (0: none known)",
    lambda c: c.zoo_regions[0] if c.zoo_regions else 0,
)
_add(
    "zoo_largest_region",
    "count",
    "the largest training region among them (0: none known)",
    lambda c: c.zoo_regions[-1] if c.zoo_regions else 0,
)
_add(
    "zoo_p_top_right_smallest_region",
    "prob",
    "mean P(top-right first) on the common test of the agents of the smallest region (n/a with fewer than 2 regions)",
    lambda c: c.zoo_region_mean("smallest"),
)
_add(
    "zoo_p_top_right_largest_region",
    "prob",
    "the same for the agents of the largest region",
    lambda c: c.zoo_region_mean("largest"),
)
_add(
    "zoo_p_cheese_smallest_region",
    "prob",
    "mean P(cheese) on the common test of the agents of the smallest region",
    lambda c: c.zoo_region_mean("smallest", "p_cheese"),
)
_add(
    "zoo_p_cheese_largest_region",
    "prob",
    "the same for the agents of the largest region",
    lambda c: c.zoo_region_mean("largest", "p_cheese"),
)
_add("zoo_mazes", "count", "levels of the common test", lambda c: len(ZOO_SEEDS))
_add("zoo_levels", "text", "their seeds", lambda c: ", ".join(str(s) for s in ZOO_SEEDS))
_add("common_region", "count", "the common test keeps cheese outside the top-right N x N: N", lambda c: COMMON_REGION)
_add(
    "zoo_agents",
    "text",
    "each agent (the loaded one and the zoo's): training region, P(top-right first) and P(cheese) on the common test",
    _zoo_text,
)
_add(
    "zoo_status",
    "text",
    "one honest sentence on what the zoo can show (no zoo; one region; the curve disagrees)",
    _zoo_status,
)


def placeholder_help() -> list[tuple[str, str, str]]:
    """(name, kind, help) of every placeholder, for docs and ``--help``."""
    return [(p.name, p.kind, p.help) for p in PLACEHOLDERS.values()]


NEEDS_TEXT = {
    "steer": "interventions",
    "ds": "a decision square",
    "cheese": "a cheese",
    "retarget": "a retarget square",
}


def placeholder_table() -> str:
    """Every placeholder as a Markdown table (name, kind, what it needs, meaning), in registry
    order: ``docs/lessons.md`` carries this table verbatim (a test checks it), and
    ``mazewb lesson placeholders --markdown`` prints it."""
    lines = ["| placeholder | kind | needs | meaning |", "|---|---|---|---|"]
    for p in PLACEHOLDERS.values():
        needs = ", ".join(NEEDS_TEXT[n] for n in sorted(p.needs)) or "-"
        meaning = p.help.replace("|", "\\|")
        lines.append(f"| `{{{p.name}}}` | {p.kind} | {needs} | {meaning} |")
    return "\n".join(lines) + "\n"
