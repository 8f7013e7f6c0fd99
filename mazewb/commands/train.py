"""``mazewb train fast|ppo|bundle``, ``mazewb eval`` and ``mazewb eval-regions``: train agents, evaluate
checkpoints exactly."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from mazewb.cli import at_least, command
from mazewb.errors import ConfigError
from mazewb.executor import add_executor_args, executor_from_args


def _add_config_args(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """One ``--flag`` per field of a trainer's config dataclass; defaults stay None so that
    a resumed run changes only what was given."""
    for field in dataclasses.fields(config_cls):
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"(default {default})")
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"(default {default!r})")


def _given(args: argparse.Namespace, config_cls: type) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls) if getattr(args, f.name) is not None}


def _train_args(p: argparse.ArgumentParser) -> None:
    from mazewb.train.config import FastConfig, PPOConfig

    sub = p.add_subparsers(dest="trainer", required=True)
    fast = sub.add_parser(
        "fast", help="behavioural cloning + exact chain policy gradient on whole known mazes",
        description="Train on whole known mazes (every open square rendered), cheese in the top-right "
        "region. Writes runs/<name>/last.pt (resumable), best.pt, log.csv, eval.csv.",
    )
    _add_config_args(fast, FastConfig)
    ppo = sub.add_parser("ppo", help="PPO on the procgen maze game (CleanRL-style, maze_I recipe defaults)")
    _add_config_args(ppo, PPOConfig)
    for q in (fast, ppo):
        q.add_argument("--resume", action="store_true", help="continue runs/<name>/last.pt")
        q.add_argument("--minutes", type=float, default=None, help="stop (and save) after this many minutes")
    bundle = sub.add_parser(
        "bundle", help="evaluate a trained policy on held-out seeds and write it with its model card",
        description="Evaluate SOURCE exactly and write DEST (.pt, card inside) and DEST.md (model card).",
    )
    bundle.add_argument("source", help="a policy checkpoint, e.g. runs/<name>/best.pt")
    bundle.add_argument("--dest", default="checkpoints/default.pt")
    bundle.add_argument("--seeds", default="0:200", help="held-out level seeds A:B for the card's numbers")
    bundle.add_argument("--cheese-region", type=int, default=None, help="default: the card's training region")
    bundle.add_argument("--notes", default="", help="free text for the card")
    bundle.add_argument(
        "--initial-weights", default="",
        help="what the run started from, for the card (default: the trainer's record, else its --init)",
    )


@command("train", "train an agent (fast: known mazes; ppo: the game itself)")(_train_args)
def _train(args: argparse.Namespace) -> int:
    if args.trainer == "bundle":
        from mazewb.train.bundle import bundle

        card = bundle(args.source, args.dest, args.seeds, args.cheese_region, args.notes, args.initial_weights)
        print(json.dumps({"written": args.dest, "eval": card["eval"]}, indent=2))
        return 0
    if args.trainer == "fast":
        from mazewb.train.fast import FastConfig, FastTrainer

        given = _given(args, FastConfig)
        config = FastConfig(**given)
        overrides = {k: v for k, v in given.items() if k not in ("name", "runs_dir")}
        trainer = FastTrainer(config, resume=args.resume, overrides=overrides if args.resume else None)
        counters = trainer.train(max_seconds=None if args.minutes is None else args.minutes * 60)
    else:
        from mazewb.train.ppo import PPOConfig, PPOTrainer

        given = _given(args, PPOConfig)
        config = PPOConfig(**given)
        overrides = {k: v for k, v in given.items() if k not in ("name", "runs_dir")}
        trainer = PPOTrainer(config, resume=args.resume, overrides=overrides if args.resume else None)
        counters = trainer.train(max_seconds=None if args.minutes is None else args.minutes * 60)
    print(json.dumps({"done": counters}))
    return 0


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="policy checkpoint (default: the bundled agent)")
    p.add_argument("--cheese-region", type=int, default=5, help="top-right region of the in-distribution cheese")
    p.add_argument("--seeds", default="0:200", help="held-out level seeds A:B (default 0:200)")
    p.add_argument(
        "--common-region", type=at_least(0), default=5,
        help="the common test every agent takes: procgen's cheese outside this top-right region, with a "
        "decision square (default 5; 0: skip it)",
    )
    p.add_argument("--fast", action="store_true", help="bf16 forward pass (approximate; default exact fp32)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_executor_args(p)


@command("eval", "exact outcome probabilities of a checkpoint on held-out seeds, in and off distribution")(
    _eval_args
)
def _eval(args: argparse.Namespace) -> int:
    from mazewb.policy.checkpoint import load_policy
    from mazewb.train.common import parse_seeds
    from mazewb.train.evaluate import evaluate

    policy = load_policy(args.checkpoint)
    seeds = parse_seeds(args.seeds)
    executor = executor_from_args(args)
    common = args.common_region or None
    metrics = evaluate(
        policy, seeds, args.cheese_region, common_region=common, fast=args.fast, executor=executor, progress=True
    )
    result = {
        "checkpoint": policy.card.get("file"),
        "sha256": policy.card.get("sha256"),
        "cheese_region": args.cheese_region,
        "common_region": common,
        "seeds": f"{seeds.start}:{seeds.stop}",
        "precision": "bf16" if args.fast else "fp32",
        **metrics,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        ind, off = metrics["in_distribution"], metrics["off_distribution"]
        print(f"{result['checkpoint']} on seeds {result['seeds']}, cheese region {args.cheese_region}")
        print(f"  in distribution ({ind['mazes']} mazes): P(cheese) {ind['p_cheese']:.3f}, "
              f"optimal arg-max {ind['optimal_argmax']:.3f}")
        print("    by maze size: " + ", ".join(f"{k}x{k} {v['p_cheese']:.2f} ({v['mazes']})"
                                             for k, v in ind["by_size"].items()))
        sets = [("off distribution", off, "the region")]
        if common is not None:
            sets.append(("common test", metrics["common"], f"the top-right {common}x{common}"))
        for name, m, where in sets:
            print(f"  {name} ({m['mazes']} mazes with a decision square, cheese outside {where}): "
                  f"P(cheese) {m['p_cheese']:.3f}, P(top-right first) {m['p_top_right']:.3f}, "
                  f"P(cheese move | decision square) {m['p_cheese_move_at_decision']:.3f}")
    sys.stdout.flush()
    return 0


def _regions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "checkpoints",
        nargs="*",
        help="agent checkpoints, e.g. model_rand_region_*.pth (default: the bundled agent and checkpoints/zoo/*.pt)",
    )
    p.add_argument(
        "--regions", default=None, help="their cheese regions, comma-separated (default: from cards or file names)"
    )
    p.add_argument("--seeds", default="0:200", help="held-out level seeds A:B (default 0:200)")
    p.add_argument(
        "--common-region",
        type=at_least(1),
        default=5,
        help="the common test: procgen's cheese outside the top-right NxN, a decision square (default 5)",
    )
    p.add_argument("--fast", action="store_true", help="bf16 forward pass (approximate; default exact fp32)")
    p.add_argument("--csv", default=None, help="also write the table to this CSV file")
    p.add_argument("--html", default=None, help="also write the curve to this HTML file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_executor_args(p)


@command("eval-regions", "goal misgeneralization across agents trained with different cheese regions")(
    _regions_args
)
def _eval_regions(args: argparse.Namespace) -> int:
    from mazewb.policy.checkpoint import load_policy
    from mazewb.train.common import parse_seeds
    from mazewb.train.evaluate import region_curve, zoo_checkpoints

    regions = None
    if args.regions is not None:
        try:
            regions = [int(r) for r in args.regions.split(",")]
        except ValueError:
            raise ConfigError(f"--regions must be comma-separated integers, got {args.regions!r}") from None
    paths = args.checkpoints or zoo_checkpoints()
    policies = [load_policy(path) for path in paths]
    seeds = parse_seeds(args.seeds)
    executor = executor_from_args(args)
    table = region_curve(policies, seeds, regions, fast=args.fast, common_region=args.common_region, executor=executor)
    if args.csv:
        table.to_csv(args.csv, index=False)
    if args.html:
        from mazewb import plots

        Path(args.html).write_text(plots.region_curve_figure(table).to_html(include_plotlyjs=True))
    common = (
        f"procgen's own cheese outside the top-right {args.common_region}x{args.common_region}, a decision square"
    )
    if args.json:
        rows = json.loads(table.to_json(orient="records"))
        print(json.dumps({"seeds": f"{seeds.start}:{seeds.stop}", "common_test": common, "agents": rows}, indent=2))
    else:
        print(f"seeds {seeds.start}:{seeds.stop}; off: cheese outside the agent's own region, a decision square;")
        print(f"common (the same mazes for every agent): {common}")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0
