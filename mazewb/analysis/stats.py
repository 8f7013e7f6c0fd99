"""Behavioural statistics over many random mazes: what predicts going for the cheese?

The population: procgen hard-mode levels with a decision square whose cheese lies outside the
maze's top-right ``region x region`` (default 5x5, the training region of the literature's
agent). For each, the policy's move probabilities at the decision square give
P(cheese | decision square) directly (one forward pass; no rollouts), optionally alongside the
exact episode outcomes (one vector field per maze).

Features are the Euclidean (straight-line, in squares) and path (moves) distances between the
decision square (``ds``), the cheese, the top-right square (``tr``) and the top-right region
(``region``, the nearest of its open squares), plus the maze size: 11 in all.

Sweeps are batch-of-seeds -> table functions (``behaviour_batch``), so they run the same in
this process or on a Ray cluster (``mazewb.executor``); ``behaviour_table`` runs the batches
through an executor with a progress bar and caches each batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from tqdm.auto import tqdm

from mazewb.analysis.cache import cache_key, cached_table, policy_identity, store_table
from mazewb.analysis.forward import BATCH_SIZE
from mazewb.analysis.outcomes import field_outcomes
from mazewb.analysis.vfield import decision_probabilities, vector_fields_of_mazes
from mazewb.errors import AnalysisError
from mazewb.executor import Executor, LocalExecutor, chunked
from mazewb.maze.geometry import Square
from mazewb.maze.graph import decision_square, distances_from, euclidean, top_right_region
from mazewb.maze.grid import Maze
from mazewb.policy import ImpalaPolicy

FEATURES: tuple[str, ...] = (
    "euc_ds_cheese",
    "path_ds_cheese",
    "euc_ds_tr",
    "path_ds_tr",
    "euc_ds_region",
    "path_ds_region",
    "euc_cheese_tr",
    "path_cheese_tr",
    "euc_cheese_region",
    "path_cheese_region",
    "size",
)
"""The candidate predictors (distances in squares or moves; ``size``: the maze's side)."""
OUTCOME_COLUMNS = (
    "p_cheese",
    "p_top_right",
    "p_neither",
    "p_timeout",
    "expected_steps",
    "p_cheese_direct",
    "p_top_right_then_cheese",
    "p_top_right_then_timeout",
)
_VERSION = 2  # bump when the table's definition changes, so old caches are not reused


GLOSSARY: dict[str, str] = {
    "euc_ds_cheese": "straight-line distance (squares) from the decision square to the cheese",
    "path_ds_cheese": "moves along the maze from the decision square to the cheese",
    "euc_ds_tr": "straight-line distance (squares) from the decision square to the top-right square",
    "path_ds_tr": "moves along the maze from the decision square to the top-right square",
    "euc_ds_region": "straight-line distance (squares) from the decision square to the nearest open square "
    "of the top-right region (the training cheese region)",
    "path_ds_region": "moves from the decision square to the nearest open square of the top-right region",
    "euc_cheese_tr": "straight-line distance (squares) from the cheese to the top-right square",
    "path_cheese_tr": "moves along the maze from the cheese to the top-right square",
    "euc_cheese_region": "straight-line distance (squares) from the cheese to the nearest open square "
    "of the top-right region",
    "path_cheese_region": "moves from the cheese to the nearest open square of the top-right region",
    "size": "the maze's side in squares (3 to 25)",
    "p_cheese_ds": "P(first move towards the cheese), the mouse on the decision square",
    "p_top_right_ds": "P(first move towards the top-right square), the mouse on the decision square",
    "p_other_ds": "P(any other move), the mouse on the decision square",
    "chooses_cheese": "P(cheese move) > P(top-right move) at the decision square",
    "logit_p_cheese_ds": "log(p / (1 - p)) of P(cheese move | decision square)",
    "p_cheese": "exact P(reach the cheese within 500 steps) from the start",
    "p_top_right": "exact P(stand on the top-right square before the cheese, within 500 steps)",
    "p_neither": "exact P(time out without visiting the cheese or the top-right square)",
    "p_timeout": "exact P(no cheese within 500 steps)",
    "expected_steps": "exact expected episode length (steps, at most 500)",
    "p_cheese_direct": "exact P(reach the cheese without visiting the top-right square first)",
    "p_top_right_then_cheese": "exact P(visit the top-right square first, then reach the cheese)",
    "p_top_right_then_timeout": "exact P(visit the top-right square first, then time out)",
}
"""A one-line meaning for every feature and column name of the behaviour table. "Decision
square": the last square shared by the paths from the start to the cheese and to the top-right
square; "top-right region": the maze's top-right ``region x region`` squares (default 5x5)."""


def qualifies(maze: Maze, region: int = 5) -> bool:
    """True for a maze with a decision square and the cheese outside the top-right region."""
    return (
        maze.cheese is not None
        and decision_square(maze) is not None
        and maze.cheese not in top_right_region(maze, region)
    )


def maze_features(maze: Maze, region: int = 5) -> dict[str, float]:
    """The 11 features of a qualifying maze (see ``FEATURES``)."""
    ds = decision_square(maze)
    cheese = maze.cheese
    if ds is None or cheese is None:
        raise AnalysisError("features need a maze with a cheese and a decision square")
    tr = maze.top_right
    squares_r = sorted(top_right_region(maze, region))
    from_ds = distances_from(maze, ds)
    from_cheese = distances_from(maze, cheese)

    def euc_region(a: Square) -> float:
        return min(euclidean(a, r) for r in squares_r)

    def path_region(dist: dict[Square, int]) -> float:
        return float(min(dist.get(r, math.inf) for r in squares_r))

    return {
        "euc_ds_cheese": euclidean(ds, cheese),
        "path_ds_cheese": float(from_ds[cheese]),
        "euc_ds_tr": euclidean(ds, tr),
        "path_ds_tr": float(from_ds[tr]),
        "euc_ds_region": euc_region(ds),
        "path_ds_region": path_region(from_ds),
        "euc_cheese_tr": euclidean(cheese, tr),
        "path_cheese_tr": float(from_cheese[tr]),
        "euc_cheese_region": euc_region(cheese),
        "path_cheese_region": path_region(from_cheese),
        "size": float(maze.size),
    }


def behaviour_batch(
    policy: ImpalaPolicy,
    seeds: Sequence[int],
    *,
    region: int = 5,
    with_outcomes: bool = True,
    batch_size: int = BATCH_SIZE,
) -> pd.DataFrame:
    """The unit of work: one row per level seed (hard mode) with ``seed``, ``size``, ``qualifies``
    and, for qualifying mazes, the decision square (``ds_row``, ``ds_col``), the cheese
    (``cheese_row``, ``cheese_col``), the ``FEATURES``, ``p_cheese_ds``, ``p_top_right_ds``,
    ``p_other_ds``, ``chooses_cheese`` (P(cheese) > P(top-right) at the decision square),
    ``logit_p_cheese_ds`` (log(p / (1 - p)), p clipped to [1e-6, 1 - 1e-6]) and, with
    ``with_outcomes``, the exact outcomes (``OUTCOME_COLUMNS``). All decision squares of the
    batch run in one forward batch; all vector fields in shared batches."""
    mazes = [Maze.from_seed(int(s)) for s in seeds]
    keep = [m for m in mazes if qualifies(m, region)]
    choices = decision_probabilities(policy, keep, batch_size=batch_size)
    fields = vector_fields_of_mazes(policy, keep, batch_size=batch_size) if with_outcomes else [None] * len(keep)
    found = {m.seed: (c, f) for m, c, f in zip(keep, choices, fields, strict=True)}
    rows = []
    for seed, maze in zip(seeds, mazes, strict=True):
        row: dict[str, object] = {"seed": int(seed), "size": maze.size, "qualifies": maze.seed in found}
        if maze.seed in found:
            choice, field = found[maze.seed]
            assert choice is not None and maze.cheese is not None
            p = min(max(choice.p_cheese, 1e-6), 1 - 1e-6)
            row.update(
                ds_row=choice.square[0],
                ds_col=choice.square[1],
                cheese_row=maze.cheese[0],
                cheese_col=maze.cheese[1],
                **maze_features(maze, region),
                p_cheese_ds=choice.p_cheese,
                p_top_right_ds=choice.p_top_right,
                p_other_ds=choice.p_other,
                chooses_cheese=choice.p_cheese > choice.p_top_right,
                logit_p_cheese_ds=math.log(p / (1 - p)),
            )
            if field is not None:
                row.update(dataclasses.asdict(field_outcomes(field)))
        rows.append(row)
    return pd.DataFrame(rows)


def behaviour_table(
    policy: ImpalaPolicy,
    seeds: Sequence[int],
    *,
    region: int = 5,
    with_outcomes: bool = True,
    seeds_per_batch: int = 32,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """``behaviour_batch`` over ``seeds`` in batches of ``seeds_per_batch``, run by ``executor``
    (default: here, one batch after another) with a progress bar; each batch is cached (in
    memory, and in ``cache_dir`` as CSV when given) under the policy's weights, its seeds and the
    settings, so reruns and extensions only compute what is new."""
    executor = executor or LocalExecutor()
    identity = policy_identity(policy)
    batches = chunked([int(s) for s in seeds], seeds_per_batch)
    keys = [cache_key("behaviour", _VERSION, identity, batch, region, with_outcomes) for batch in batches]
    parts = [cached_table(key, cache_dir) for key in keys]
    missing = [i for i, part in enumerate(parts) if part is None]
    computed = executor.map(
        behaviour_batch,
        policy,
        [batches[i] for i in missing],
        desc="behaviour statistics",
        progress=progress,
        region=region,
        with_outcomes=with_outcomes,
    )
    for i, table in zip(missing, computed, strict=True):
        store_table(keys[i], table, cache_dir)
        parts[i] = table
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def qualifying_sample(
    policy: ImpalaPolicy,
    n_mazes: int,
    start_seed: int = 0,
    *,
    region: int = 5,
    with_outcomes: bool = True,
    seeds_per_batch: int = 32,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """The first ``n_mazes`` qualifying levels from ``start_seed`` on (about 2-3 seeds per
    qualifying maze), as rows of ``behaviour_batch``. Whole batches are computed (and cached)
    so the result is the same however it is split and wherever it runs. ``on_batch(found,
    n_mazes)`` is called before the first and after every round of batches (e.g. a progress bar
    in an app; raising from it cancels the sweep).

    Locally a round is one batch. An ``executor`` running several batches at once gets rounds
    of as many batches as the qualifying rate seen so far says are still needed (at least one per
    worker); batches are contiguous from ``start_seed``, so the first ``n_mazes`` are the same."""
    executor = executor or LocalExecutor()
    found: list[pd.DataFrame] = []
    count, seed = 0, start_seed
    bar = tqdm(total=n_mazes, desc="qualifying mazes", disable=not progress)
    if on_batch is not None:
        on_batch(0, n_mazes)
    while count < n_mazes:
        n_batches = 1
        if executor.parallelism > 1:
            rate = max(count / (seed - start_seed), 0.05) if seed > start_seed else 0.4
            n_batches = max(executor.parallelism, math.ceil((n_mazes - count) / rate / seeds_per_batch))
        table = behaviour_table(
            policy,
            range(seed, seed + n_batches * seeds_per_batch),
            region=region,
            with_outcomes=with_outcomes,
            seeds_per_batch=seeds_per_batch,
            cache_dir=cache_dir,
            progress=progress and n_batches > 1,
            executor=executor,
        )
        table = table[table["qualifies"].astype(bool)]
        found.append(table)
        count += len(table)
        bar.update(min(len(table), n_mazes - bar.n))
        seed += n_batches * seeds_per_batch
        if on_batch is not None:
            on_batch(min(count, n_mazes), n_mazes)
    bar.close()
    return pd.concat(found, ignore_index=True).head(n_mazes).reset_index(drop=True)


# --- regressions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BehaviourStats:
    """Summary and regressions of a table of qualifying mazes.

    ``accuracy``: held-out accuracy of an L1 logistic regression predicting ``chooses_cheese``
    from the z-scored features; ``baseline``: held-out accuracy of always predicting the
    training set's majority class. ``coefficients``: the logistic coefficients per z-scored
    feature (0 = dropped by the L1 penalty); ``vif``: variance inflation factor of each feature
    (1 = uncorrelated with the others; above ~5-10, collinear). ``linear_coefficients``,
    ``linear_r2_train``, ``linear_r2_test``: ordinary least squares of ``logit_p_cheese_ds`` on
    the same z-scored features. ``summary``: counts, mean/median probabilities, outcome means.
    ``warnings``: plain-language reasons not to trust these numbers (tiny held-out set,
    negative R², accuracy at or below the baseline, infinite or large VIFs); empty when none.
    """

    n_train: int
    n_test: int
    accuracy: float
    baseline: float
    coefficients: pd.Series
    vif: pd.Series
    linear_coefficients: pd.Series
    linear_r2_train: float
    linear_r2_test: float
    summary: dict[str, float]
    warnings: tuple[str, ...] = ()

    def table(self) -> pd.DataFrame:
        """One row per feature: its ``meaning`` (``GLOSSARY``), the logistic and linear
        coefficients and the VIF."""
        names = list(self.coefficients.index)
        return pd.DataFrame(
            {
                "meaning": [GLOSSARY.get(n, "") for n in names],
                "logistic_coef": self.coefficients.to_numpy(),
                "linear_coef": self.linear_coefficients.reindex(names).to_numpy(),
                "vif": self.vif.reindex(names).to_numpy(),
            },
            index=pd.Index(names, name="feature"),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "n_train": self.n_train,
            "n_test": self.n_test,
            "accuracy": self.accuracy,
            "baseline": self.baseline,
            "coefficients": self.coefficients.to_dict(),
            "vif": self.vif.to_dict(),
            "linear_coefficients": self.linear_coefficients.to_dict(),
            "linear_r2_train": self.linear_r2_train,
            "linear_r2_test": self.linear_r2_test,
            "summary": self.summary,
            "warnings": list(self.warnings),
        }


def variance_inflation(features: np.ndarray) -> np.ndarray:
    """VIF of each column of ``features`` (n, k): 1 / (1 - R^2) of the least-squares regression
    (with intercept) of that column on the others; inf when a column is an exact combination."""
    n, k = features.shape
    out = np.empty(k)
    for j in range(k):
        y = features[:, j]
        others = np.column_stack([np.ones(n), np.delete(features, j, axis=1)])
        coef, *_ = np.linalg.lstsq(others, y, rcond=None)
        resid = y - others @ coef
        total = ((y - y.mean()) ** 2).sum()
        r2 = 1.0 - (resid @ resid) / total if total > 0 else 1.0
        out[j] = np.inf if r2 >= 1.0 - 1e-12 else 1.0 / (1.0 - r2)
    return out


_MIN_HELD_OUT = 30  # below this, one maze moves held-out accuracy by more than 3 points
_PER_FEATURE = 10  # the usual rule of thumb: ten observations per predictor
_HIGH_VIF = 10.0
_TREE_IDENTITY = ("path_ds_cheese", "path_ds_tr", "path_cheese_tr")


def regression_warnings(
    *,
    n_train: int,
    n_test: int,
    accuracy: float,
    baseline: float,
    linear_r2_test: float,
    vif: pd.Series,
    constant: Sequence[str] = (),
    one_class: bool = False,
) -> tuple[str, ...]:
    """Plain-language warnings about a regression result: a tiny held-out set, too few training
    mazes per feature, accuracy at or below the always-majority baseline, a negative or
    undefined held-out R², constant features, infinite VIFs (exact collinearity) and large VIFs."""
    out: list[str] = []
    k = len(vif)
    if n_test < _MIN_HELD_OUT:
        out.append(
            f"Only {n_test} mazes are held out: held-out accuracy moves in steps of {1 / max(n_test, 1):.2f} "
            f"and R² is very noisy. Use more mazes (about {4 * _MIN_HELD_OUT} or more, so that "
            f"{_MIN_HELD_OUT} are held out)."
        )
    if n_train < _PER_FEATURE * k:
        out.append(
            f"Only {n_train} training mazes for {k} features: the fits can follow noise "
            f"(a rule of thumb asks for {_PER_FEATURE} mazes per feature, {_PER_FEATURE * k} here)."
        )
    if one_class:
        out.append(
            "Every training maze makes the same choice at the decision square: there is nothing to "
            "predict, so the logistic regression is just the baseline and its coefficients are 0."
        )
    elif accuracy < baseline:
        out.append(
            f"Held-out accuracy {accuracy:.3f} is below the always-majority baseline {baseline:.3f}: "
            "the logistic regression predicts worse than always guessing the commoner choice. "
            "Do not read its coefficients."
        )
    elif accuracy == baseline:
        out.append(
            f"Held-out accuracy {accuracy:.3f} equals the always-majority baseline: the logistic "
            "regression adds nothing over always guessing the commoner choice."
        )
    if math.isnan(linear_r2_test):
        out.append("Held-out R² is undefined: P(cheese | decision square) is the same for every held-out maze.")
    elif linear_r2_test < 0:
        out.append(
            f"Held-out R² is {linear_r2_test:.3g} (negative): the linear fit predicts the held-out mazes "
            "worse than their own mean would. It is overfitted (too few mazes) or the features do not "
            "explain the logit linearly; do not read its coefficients."
        )
    if constant:
        out.append(f"{', '.join(constant)}: the same in every maze, so it carries no information here.")
    infinite = [f for f in vif.index[np.isinf(vif.to_numpy())] if f not in constant]
    if infinite:
        why = (
            " In a tree maze the decision square lies on the path from the cheese to the top-right "
            "square, so path_ds_cheese + path_ds_tr = path_cheese_tr exactly."
            if all(f in infinite for f in _TREE_IDENTITY)
            else ""
        )
        out.append(
            f"VIF is infinite for {', '.join(infinite)}: these features are exact combinations of "
            f"others (exact collinearity).{why} Their separate coefficients are not identifiable; "
            "read them as a group, or drop one."
        )
    high = [f for f, v in vif.items() if _HIGH_VIF < v < math.inf]
    if high:
        out.append(
            f"VIF above {_HIGH_VIF:g} for {', '.join(high)}: strongly collinear, so their separate "
            "coefficients are unstable."
        )
    return tuple(out)


def _l1_logistic(c: float):  # noqa: ANN202 - sklearn estimator
    from sklearn.linear_model import LogisticRegression

    major, minor = (int(v) for v in sklearn.__version__.split(".")[:2])
    if (major, minor) >= (1, 8):  # 'penalty' is deprecated from 1.8 on
        return LogisticRegression(l1_ratio=1.0, C=c, solver="liblinear")
    return LogisticRegression(penalty="l1", C=c, solver="liblinear")


def behaviour_regressions(
    table: pd.DataFrame,
    features: Sequence[str] = FEATURES,
    *,
    test_fraction: float = 0.25,
    c: float = 1.0,
    seed: int = 0,
) -> BehaviourStats:
    """Fit the regressions on the qualifying rows of ``table`` (from ``behaviour_table``): a
    random ``test_fraction`` of mazes is held out; z-scoring uses the training rows' mean and
    standard deviation; ``c`` is the inverse L1 strength of the logistic regression."""
    data = table[table["qualifies"].astype(bool)].reset_index(drop=True)
    features = list(features)
    if len(data) < 8:
        raise AnalysisError(f"regressions need at least 8 qualifying mazes, got {len(data)}")
    x = data[features].to_numpy(dtype=float)
    y = data["chooses_cheese"].astype(bool).to_numpy()
    logit = data["logit_p_cheese_ds"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    n_test = max(1, int(round(test_fraction * len(data))))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0  # a constant feature stays 0 after centring
    z = (x - mean) / std
    majority = bool(y[train].mean() >= 0.5)
    baseline = float((y[test] == majority).mean())
    if len(set(y[train])) < 2:
        accuracy = baseline  # one class only: the model is the baseline
        coefs = np.zeros(len(features))
    else:
        model = _l1_logistic(c).fit(z[train], y[train])
        accuracy = float((model.predict(z[test]) == y[test]).mean())
        coefs = model.coef_[0]
    design = np.column_stack([np.ones(len(data)), z])
    beta, *_ = np.linalg.lstsq(design[train], logit[train], rcond=None)

    def r2(rows: np.ndarray) -> float:
        resid = logit[rows] - design[rows] @ beta
        total = ((logit[rows] - logit[rows].mean()) ** 2).sum()
        return float(1.0 - (resid @ resid) / total) if total > 0 else float("nan")

    vif = pd.Series(variance_inflation(x), index=features)
    r2_test = r2(test)
    found = regression_warnings(
        n_train=len(train),
        n_test=len(test),
        accuracy=accuracy,
        baseline=baseline,
        linear_r2_test=r2_test,
        vif=vif,
        constant=[f for f, sd in zip(features, x.std(axis=0), strict=True) if sd == 0],
        one_class=len(set(y[train])) < 2,
    )
    summary: dict[str, float] = {
        "n_mazes": float(len(data)),
        "mean_p_cheese_ds": float(data["p_cheese_ds"].mean()),
        "median_p_cheese_ds": float(data["p_cheese_ds"].median()),
        "mean_p_top_right_ds": float(data["p_top_right_ds"].mean()),
        "fraction_chooses_cheese": float(y.mean()),
    }
    for col in OUTCOME_COLUMNS:
        if col in data:
            summary[f"mean_{col}"] = float(data[col].mean())
    return BehaviourStats(
        n_train=len(train),
        n_test=len(test),
        accuracy=accuracy,
        baseline=baseline,
        coefficients=pd.Series(coefs, index=features),
        vif=vif,
        linear_coefficients=pd.Series(beta[1:], index=features),
        linear_r2_train=r2(train),
        linear_r2_test=r2_test,
        summary=summary,
        warnings=found,
    )
