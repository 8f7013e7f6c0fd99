"""``mazewb vfield | outcomes | attribution | stats | bench-reuse | report-numbers``: the analysis engine
from the shell.

Every command takes ``--checkpoint`` (default: the bundled agent) and ``--json`` (one JSON
document on stdout, for scripts); progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from mazewb.cli import command
from mazewb.executor import add_executor_args, executor_from_args

# --- shared arguments ---------------------------------------------------------------------------------


def _policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="policy checkpoint (default: the bundled agent)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")


def _maze_source_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--seed", type=int, default=0, help="procgen hard-mode level (default 0)")
    group.add_argument("--maze", type=Path, help="a maze JSON file (Maze.to_json)")


def _maze_args(p: argparse.ArgumentParser) -> None:
    _maze_source_args(p)
    p.add_argument("--interventions", type=Path, help="a JSON file of interventions (interventions_to_json)")
    p.add_argument("--cheese-vector", type=float, metavar="COEFF", help="add COEFF x this maze's cheese vector")
    p.add_argument("--top-right-vector", type=float, metavar="COEFF", help="add COEFF x its top-right vector")
    p.add_argument("--layer", default=None, help="layer of the steering vectors (default block2.res1.resadd_out)")


def _load_policy(args: argparse.Namespace):  # noqa: ANN202
    from mazewb import load_policy

    return load_policy(args.checkpoint)


def _load_maze(args: argparse.Namespace):  # noqa: ANN202
    from mazewb import Maze

    if args.maze is not None:
        return Maze.from_file(args.maze)
    return Maze.from_seed(args.seed)


def _interventions(args: argparse.Namespace, policy, maze) -> tuple:  # noqa: ANN001
    from mazewb.analysis import DEFAULT_LAYER, cheese_vector, top_right_vector
    from mazewb.bounded_input import read_file_bounded
    from mazewb.errors import InterventionError
    from mazewb.policy import interventions_from_json
    from mazewb.policy.interventions import MAX_INTERVENTIONS_BYTES

    layer = args.layer or DEFAULT_LAYER
    out: list = []
    if args.interventions is not None:
        out += interventions_from_json(
            read_file_bounded(args.interventions, MAX_INTERVENTIONS_BYTES, InterventionError, "interventions file")
        )
    if args.cheese_vector is not None:
        out.append(cheese_vector(policy, maze, args.cheese_vector, layer))
    if args.top_right_vector is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out.append(top_right_vector(policy, maze, args.top_right_vector, layer))
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    return tuple(out)


def _checkpoint_info(policy) -> dict[str, Any]:  # noqa: ANN001
    from mazewb.analysis import policy_identity

    card = policy.card or {}
    return {
        "file": card.get("file"),
        "sha256": card.get("sha256"),
        "weights": policy_identity(policy),
        "scale": policy.scale,
        "trained": card.get("trained", None),
    }


def _print_json(data: Any) -> None:
    print(json.dumps(_plain(data), indent=1, allow_nan=False))


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays as Python values, NaN and infinities as null,
    tuples as lists, anything else unknown as its string."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


# --- vfield -------------------------------------------------------------------------------------------


def _vfield_args(p: argparse.ArgumentParser) -> None:
    _policy_args(p)
    _maze_args(p)
    p.add_argument("--html", type=Path, help="also write the vector-field figure (and diff) to this HTML file")
    p.add_argument(
        "--mode",
        choices=("exact", "fast", "bf16", "reference"),
        default="exact",
        help="exact (default; fp32, fastest exact layout), fast (fastest, maybe approximate: its measured "
        "error is printed), bf16 (forced), reference (plain fp32 NCHW)",
    )


@command("vfield", "move probabilities at every open square of a maze (optionally patched)")(_vfield_args)
def vfield(args: argparse.Namespace) -> int:
    import dataclasses

    from mazewb.analysis import decision_probabilities, vector_field_diff, vector_fields
    from mazewb.policy import MOVES

    policy = _load_policy(args)
    maze = _load_maze(args)
    interventions = _interventions(args, policy, maze)
    variants = [()] + ([interventions] if interventions else [])
    fields = vector_fields(policy, maze, variants, mode=args.mode)
    field = fields[-1]
    choice = decision_probabilities(policy, [maze], interventions, mode=args.mode)[0]
    error = None
    if args.mode in ("fast", "bf16"):
        from mazewb.analysis import fast_mode_error

        error = fast_mode_error(policy, mode=args.mode)
    diff = vector_field_diff(fields[-1], fields[0]) if interventions else None
    if args.html is not None:
        from mazewb import plots

        figs = [plots.vector_field_figure(field, title=f"vector field, seed {maze.seed}")]
        if diff is not None:
            figs.append(plots.vector_field_diff_figure(diff))
        args.html.write_text("\n".join(f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(figs)))
    if args.json:
        _print_json(
            {
                "checkpoint": _checkpoint_info(policy),
                "maze": maze.to_dict(),
                "moves": list(MOVES),
                "cells": field.cells.tolist(),
                "probs": field.probs.tolist(),
                "decision_square": None if choice is None else dataclasses.asdict(choice),
                "mean_tv_from_unpatched": None if diff is None else diff.mean_tv,
                "interventions": [iv.kind for iv in interventions],
                "mode": args.mode,
                "fast_mode_error": None if error is None else dataclasses.asdict(error),
            }
        )
        return 0
    if error is not None:
        print(error.summary())
    print(f"maze: seed {maze.seed}, {maze.size}x{maze.size}, cheese {maze.cheese}; {len(field.cells)} squares")
    print("square     " + " ".join(f"{m:>6}" for m in MOVES))
    for (r, c), p in zip(field.cells, field.probs, strict=True):
        print(f"({r:2d},{c:2d})    " + " ".join(f"{v:6.3f}" for v in p))
    if choice is not None:
        print(
            f"decision square {choice.square}: P(cheese)={choice.p_cheese:.3f} "
            f"P(top-right)={choice.p_top_right:.3f} P(other)={choice.p_other:.3f}"
        )
    if diff is not None:
        print(f"mean total-variation distance from the unpatched field: {diff.mean_tv:.4f}")
    return 0


# --- outcomes -----------------------------------------------------------------------------------------


def _outcomes_args(p: argparse.ArgumentParser) -> None:
    _policy_args(p)
    _maze_args(p)
    p.add_argument("--rollouts", type=int, default=0, metavar="N", help="also sample N episodes in the real game")


@command("outcomes", "exact P(cheese), P(top-right first), P(timeout), expected steps of a maze")(_outcomes_args)
def outcomes_cmd(args: argparse.Namespace) -> int:
    import dataclasses

    from mazewb.analysis import field_outcomes, sample_rollouts, summarize_rollouts, vector_field

    policy = _load_policy(args)
    maze = _load_maze(args)
    interventions = _interventions(args, policy, maze)
    field = vector_field(policy, maze, interventions)
    exact = field_outcomes(field)
    result: dict[str, Any] = {
        "checkpoint": _checkpoint_info(policy),
        "seed": maze.seed,
        "exact": dataclasses.asdict(exact),
    }
    if args.rollouts:
        trajectories = sample_rollouts(policy, maze, args.rollouts, interventions)
        result["sampled"] = dataclasses.asdict(summarize_rollouts(trajectories, maze))
    if args.json:
        _print_json(result)
        return 0
    print(f"maze: seed {maze.seed}, {maze.size}x{maze.size}, cheese {maze.cheese}")
    for key, value in result["exact"].items():
        print(f"exact {key}: {value:.6f}")
    for key, value in result.get("sampled", {}).items():
        print(f"sampled {key}: {value:.4f}" if isinstance(value, float) else f"sampled {key}: {value}")
    return 0


# --- attribution --------------------------------------------------------------------------------------


def _square(text: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a square is ROW,COL (row 0 at the bottom), got {text!r}") from None
    return row, col


def _attribution_args(p: argparse.ArgumentParser) -> None:
    _policy_args(p)
    _maze_source_args(p)
    p.add_argument(
        "--square", type=_square, default=None, help="the mouse's square ROW,COL (default: the maze's mouse)"
    )
    p.add_argument("--move", default=None, help="LEFT, DOWN, UP, RIGHT or NOOP (default: the most likely move)")
    p.add_argument("--layer", default=None, help="layer to attribute to (default block2.res1.resadd_out)")
    p.add_argument("--baseline", default="no-cheese", help="no-cheese (default), zero, or a maze JSON file")
    p.add_argument("--steps", type=int, default=32, help="quadrature points along the path (default 32)")
    p.add_argument("--top", type=int, default=10, help="channels to list (default 10)")
    p.add_argument("--html", type=Path, help="also write the attribution figures to this HTML file")


@command("attribution", "integrated gradients of a move's probability with respect to a layer")(_attribution_args)
def attribution_cmd(args: argparse.Namespace) -> int:
    import numpy as np

    from mazewb import Maze
    from mazewb.analysis import DEFAULT_LAYER, integrated_gradients

    policy = _load_policy(args)
    maze = _load_maze(args)
    baseline = args.baseline
    if baseline not in ("no-cheese", "zero"):
        baseline = Maze.from_file(baseline)
    result = integrated_gradients(
        policy, maze, args.layer or DEFAULT_LAYER, args.square, args.move, baseline, args.steps
    )
    totals = result.channel_totals()
    top = [int(i) for i in np.argsort(-np.abs(totals))[: args.top]]
    if args.html is not None:
        from mazewb import plots

        figs = [plots.attribution_channels_figure(result, args.top)]
        if result.values.ndim == 3:
            figs.insert(0, plots.attribution_figure(result, maze))
        args.html.write_text("\n".join(f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(figs)))
    summary = {
        "layer": result.layer,
        "move": result.move,
        "square": list(result.square),
        "baseline": result.baseline,
        "steps": result.steps,
        "prob": result.prob,
        "baseline_prob": result.baseline_prob,
        "sum": float(result.values.sum()),
        "completeness_gap": result.delta,
        "top_channels": [{"channel": c, "attribution": float(totals[c])} for c in top],
    }
    if args.json:
        _print_json({"checkpoint": _checkpoint_info(policy), "seed": maze.seed, **summary})
        return 0
    print(f"maze: seed {maze.seed}, {maze.size}x{maze.size}, cheese {maze.cheese}, mouse on {result.square}")
    print(
        f"P({result.move}) {result.baseline_prob:.4f} at the {result.baseline} baseline -> {result.prob:.4f}; "
        f"attributions sum to {result.values.sum():+.4f} (completeness gap {result.delta:+.1e}, {result.steps} steps)"
    )
    print(f"top channels of {result.layer}:")
    for c in top:
        print(f"  {c:4d} {totals[c]:+.4f}")
    return 0


# --- stats --------------------------------------------------------------------------------------------


def _stats_args(p: argparse.ArgumentParser) -> None:
    _policy_args(p)
    p.add_argument("--mazes", type=int, default=200, help="number of qualifying mazes (default 200)")
    p.add_argument("--start-seed", type=int, default=0)
    p.add_argument("--region", type=int, default=5, help="cheese must lie outside the top-right NxN (default 5)")
    p.add_argument("--no-outcomes", action="store_true", help="skip the exact outcomes (one vector field per maze)")
    p.add_argument("--cache-dir", type=Path, default=None, help="cache each batch of seeds here (CSV)")
    p.add_argument("--csv", type=Path, default=None, help="write the per-maze table to this CSV file")
    p.add_argument("--seeds-per-chunk", type=int, default=32, help="seeds per unit of work (default 32)")
    add_executor_args(p)


@command("stats", "behavioural statistics over random mazes with a decision square")(_stats_args)
def stats_cmd(args: argparse.Namespace) -> int:
    from mazewb.analysis import behaviour_regressions, qualifying_sample

    policy = _load_policy(args)
    executor = executor_from_args(args)
    table = qualifying_sample(
        policy,
        args.mazes,
        args.start_seed,
        region=args.region,
        with_outcomes=not args.no_outcomes,
        seeds_per_batch=args.seeds_per_chunk,
        cache_dir=args.cache_dir,
        executor=executor,
    )
    if args.csv is not None:
        table.to_csv(args.csv, index=False)
    result = behaviour_regressions(table)
    if args.json:
        _print_json({"checkpoint": _checkpoint_info(policy), **result.to_dict()})
        return 0
    print(f"{len(table)} mazes with a decision square and the cheese outside the top-right {args.region}x{args.region}")
    for key, value in result.summary.items():
        print(f"  {key}: {value:.4f}")
    print(
        f"L1 logistic regression, held-out accuracy {result.accuracy:.3f} "
        f"(always-majority baseline {result.baseline:.3f}; {result.n_train} train / {result.n_test} test)"
    )
    print("feature               coef(z)      VIF   linear coef")
    for name in result.coefficients.index:
        print(
            f"  {name:20s} {result.coefficients[name]:8.3f} {result.vif[name]:8.2f} "
            f"{result.linear_coefficients[name]:10.3f}"
        )
    print(
        f"linear regression of logit P(cheese | ds): R2 train {result.linear_r2_train:.3f}, "
        f"test {result.linear_r2_test:.3f}"
    )
    return 0


# --- bench --------------------------------------------------------------------------------------------


def _bench_args(p: argparse.ArgumentParser) -> None:
    _policy_args(p)
    p.add_argument("--seed", type=int, default=17, help="level to time (17: a 25x25 maze)")
    p.add_argument("--variants", type=int, default=8, help="patched fields per timing (cheese-vector coefficients)")
    p.add_argument("--repeats", type=int, default=5)


def run_bench(policy, seed: int = 17, variants: int = 8, repeats: int = 5) -> dict[str, Any]:  # noqa: ANN001
    """Ratios measured in one run (interleaved repeats, medians): a vector field end to end over
    the bare forward pass of the same batch, and ``variants`` patched vector fields with the
    layers before the patch computed once vs recomputed for every variant."""
    import numpy as np

    from mazewb import Maze
    from mazewb.analysis import cheese_vector, field_squares, vector_field, vector_fields, with_coeff
    from mazewb.analysis.forward import observations, to_input
    from mazewb.policy import run_with_hooks

    maze = Maze.from_seed(seed)
    vector = cheese_vector(policy, maze, -1.0)
    patches = [(with_coeff(vector, -0.5 * (k + 1)),) for k in range(variants)]
    x = to_input(policy, observations(maze, field_squares(maze)))
    reused = vector_fields(policy, maze, patches, reuse=True)  # warm-up, and the equality check
    separate = vector_fields(policy, maze, patches, reuse=False)
    equal = all(np.array_equal(a.probs, b.probs) for a, b in zip(reused, separate, strict=True))
    timings: dict[str, list[float]] = {"forward": [], "vfield": [], "reuse": [], "no_reuse": []}
    jobs = {
        "forward": lambda: run_with_hooks(policy, x),
        "vfield": lambda: vector_field(policy, maze),
        "reuse": lambda: vector_fields(policy, maze, patches, reuse=True),
        "no_reuse": lambda: vector_fields(policy, maze, patches, reuse=False),
    }
    for _ in range(repeats):
        for name, job in jobs.items():
            t0 = time.perf_counter()
            job()
            timings[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in timings.items()}
    return {
        "seed": seed,
        "maze_size": maze.size,
        "observations": len(x),
        "variants": variants,
        "repeats": repeats,
        "vfield_over_forward": med["vfield"] / med["forward"],
        "patched_reuse_over_no_reuse": med["reuse"] / med["no_reuse"],
        "reuse_exactly_equal": equal,
        "median_seconds": med,
    }


@command("bench-reuse", "time a vector field against a bare forward pass, and patched fields with/without reuse")(
    _bench_args
)
def bench_cmd(args: argparse.Namespace) -> int:
    policy = _load_policy(args)
    result = run_bench(policy, args.seed, args.variants, args.repeats)
    if args.json:
        _print_json({"checkpoint": _checkpoint_info(policy), **result})
        return 0
    print(
        f"maze seed {result['seed']} ({result['maze_size']}x{result['maze_size']}), "
        f"{result['observations']} observations, scale {policy.scale}"
    )
    print(f"vector field end to end / bare forward of the same batch: {result['vfield_over_forward']:.2f}")
    print(
        f"{result['variants']} patched fields, reuse / no reuse: {result['patched_reuse_over_no_reuse']:.2f} "
        f"(results exactly equal: {result['reuse_exactly_equal']})"
    )
    return 0


# --- report-numbers -----------------------------------------------------------------------------------


def _report_args(p: argparse.ArgumentParser) -> None:
    _policy_args(p)
    p.add_argument("--ds-mazes", type=int, default=100, help="levels with a decision square for the medians")
    p.add_argument("--channel-seeds", type=int, default=200, help="levels for ranking channels")
    p.add_argument("--stats-mazes", type=int, default=200, help="qualifying levels for the statistics")
    p.add_argument("--cache-dir", type=Path, default=None)
    add_executor_args(p)


def report_numbers(
    policy,  # noqa: ANN001
    ds_mazes: int = 100,
    channel_seeds: int = 200,
    stats_mazes: int = 200,
    cache_dir: Path | None = None,
    executor=None,  # noqa: ANN001 - a mazewb.executor.Executor (default: here)
) -> dict[str, Any]:
    """Every closing number of the analysis-engine issue for one policy."""
    from mazewb import Maze
    from mazewb.analysis import (
        behaviour_regressions,
        qualifying_sample,
        rank_cheese_channels,
        steering_sweep,
        top_right_corridor,
    )
    from mazewb.maze.graph import decision_square

    started = time.perf_counter()
    mazes, seed = [], 0
    while len(mazes) < ds_mazes:
        maze = Maze.from_seed(seed)
        if decision_square(maze) is not None:
            mazes.append(maze)
        seed += 1
    sweep = steering_sweep(policy, mazes, [0.0, -1.0], [0.0, 1.0], progress=True, executor=executor)

    def cell(c: float, t: float, column: str, only_padded: bool = False) -> dict[str, float]:
        rows = sweep[(sweep.cheese_coeff == c) & (sweep.top_right_coeff == t)]
        if only_padded:
            rows = rows[~rows.top_right_zero.astype(bool)]
        return {"median": float(rows[column].median()), "mean": float(rows[column].mean()), "n": len(rows)}

    padded = [m for m in mazes if top_right_corridor(m)]
    steering = {
        "seeds": f"first {ds_mazes} levels with a decision square (seeds 0-{seed - 1})",
        "p_cheese_ds": cell(0, 0, "p_cheese_ds"),
        "p_cheese_ds_cheese_vector_minus1": cell(-1, 0, "p_cheese_ds"),
        "p_top_right_ds": cell(0, 0, "p_top_right_ds", only_padded=True),
        "p_top_right_ds_top_right_vector_plus1": cell(0, 1, "p_top_right_ds", only_padded=True),
        "p_cheese_ds_top_right_vector_plus1": cell(0, 1, "p_cheese_ds", only_padded=True),
        "p_cheese_ds_both": cell(-1, 1, "p_cheese_ds", only_padded=True),
        "p_top_right_ds_both": cell(-1, 1, "p_top_right_ds", only_padded=True),
        "mazes_with_zero_top_right_vector": len(mazes) - len(padded),
    }
    ranking = rank_cheese_channels(policy, seeds=range(channel_seeds), progress=True, executor=executor)
    table = qualifying_sample(policy, stats_mazes, cache_dir=cache_dir, executor=executor)
    stats = behaviour_regressions(table)
    bench = run_bench(policy)
    return {
        "checkpoint": _checkpoint_info(policy),
        "steering": steering,
        "cheese_channels": {
            "layer": "embedder.block2.res1.resadd_out",
            "levels_used": int(ranking["n_mazes"].iloc[0]),
            "top10": ranking.head(10)[["channel", "corr", "argmax_hit", "contrast"]].to_dict("records"),
            "median_corr_all_channels": float(ranking["corr"].median()),
        },
        "behaviour_statistics": {
            "mazes": len(table),
            "accuracy_held_out": stats.accuracy,
            "always_majority_baseline": stats.baseline,
            "n_test": stats.n_test,
            "coefficients": stats.coefficients.to_dict(),
            "vif": stats.vif.to_dict(),
            "linear_r2_test": stats.linear_r2_test,
            "summary": stats.summary,
        },
        "bench": bench,
        "seconds": time.perf_counter() - started,
    }


@command("report-numbers", "every closing number of the analysis engine for one checkpoint")(_report_args)
def report_cmd(args: argparse.Namespace) -> int:
    policy = _load_policy(args)
    result = report_numbers(
        policy, args.ds_mazes, args.channel_seeds, args.stats_mazes, args.cache_dir, executor_from_args(args)
    )
    if args.json:
        _print_json(result)
        return 0
    s = result["steering"]
    print(f"checkpoint {result['checkpoint']}")
    print(f"steering over the {s['seeds']}:")
    print(
        f"  median P(cheese | ds): {s['p_cheese_ds']['median']:.3f} -> cheese vector -1: "
        f"{s['p_cheese_ds_cheese_vector_minus1']['median']:.3f}"
    )
    print(
        f"  median P(top-right | ds) ({s['p_top_right_ds']['n']} mazes with padding): "
        f"{s['p_top_right_ds']['median']:.3f} -> top-right vector +1: "
        f"{s['p_top_right_ds_top_right_vector_plus1']['median']:.3f}"
    )
    c = result["cheese_channels"]
    print(f"top cheese channels ({c['levels_used']} levels):")
    for row in c["top10"]:
        print(f"  channel {row['channel']:3d}: corr {row['corr']:.3f}, arg-max hit {row['argmax_hit']:.3f}")
    b = result["behaviour_statistics"]
    print(
        f"behaviour statistics on {b['mazes']} mazes: held-out accuracy {b['accuracy_held_out']:.3f} "
        f"vs always-majority {b['always_majority_baseline']:.3f}"
    )
    r = result["bench"]
    print(
        f"vector field / bare forward: {r['vfield_over_forward']:.2f}; {r['variants']} patched fields "
        f"reuse / no reuse: {r['patched_reuse_over_no_reuse']:.2f} (exactly equal: {r['reuse_exactly_equal']})"
    )
    print(f"took {result['seconds']:.0f} s")
    return 0
