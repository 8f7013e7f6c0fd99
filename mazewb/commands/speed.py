"""``mazewb bench``: the speed targets of issue 12 as ratios measured in one run (see docs/speed.md)."""

from __future__ import annotations

import argparse
import json

from mazewb.cli import at_least, command

TARGETS = {"default_over_loop": {1: 10.0, 4: 5.0}, "exact_fraction_of_floor": {4: 0.60}}


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=17, help="level to time (17: a 25x25 maze, 336 squares)")
    p.add_argument("--scales", default="1,4", help="IMPALA scales of the random-init networks timed (default 1,4)")
    p.add_argument("--checkpoint", default=None, help="time this checkpoint at its scale instead of a random net")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds; every number is the best of them")
    p.add_argument("--loop-squares", type=int, default=None, help="squares the per-square loop times (default all)")
    p.add_argument("--bf16-squares", type=int, default=32, help="observations of the forced-bf16 timing")
    p.add_argument("--quick", action="store_true", help="a tiny smoke run (scale 1, small floor, 1 round)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")


def _verdict(value: float, target: float) -> str:
    return f"{'met' if value >= target else 'NOT met'} (target >= {target:g})"


@command("bench", "vector-field speed: default/exact/fast modes vs the per-square loop and the matmul floor")(_args)
def bench(args: argparse.Namespace) -> int:
    from mazewb.benchmarks import speed_bench

    scales = [int(s) for s in str(args.scales).split(",") if s.strip()]
    policies = None
    if args.checkpoint is not None:
        from mazewb import load_policy

        policy = load_policy(args.checkpoint)
        policies = {policy.scale: policy}
        scales = [policy.scale]
    options: dict = {"repeats": args.repeats, "loop_squares": args.loop_squares, "bf16_squares": args.bf16_squares}
    if args.quick:
        scales = scales[:1] if args.checkpoint else [1]
        options = {"repeats": 1, "floor_size": 512, "floor_repeats": 2, "loop_squares": 16, "bf16_squares": 8}
    result = speed_bench(scales, args.seed, policies=policies, **options)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_bench(result)
    return 0


def print_bench(result: dict) -> None:
    """The text report of ``mazewb.benchmarks.speed_bench``'s result."""
    m, fl = result["maze"], result["floor"]
    print(f"mazewb bench: level {m['seed']} ({m['size']}x{m['size']}), {m['squares']} squares per vector field")
    print(f"machine: {result['machine']}")
    bf16 = "not measured (no native bf16)" if fl["bf16_gflops"] is None else f"{fl['bf16_gflops']:.0f} GFLOP/s"
    print(f"matmul floor {fl['size']}^3 (best of {fl['runs']}): fp32 {fl['fp32_gflops']:.0f} GFLOP/s, bf16 {bf16}")
    verdicts = []
    for s in result["scales"]:
        r, sc = s["obs_per_s"], s["scale"]
        print(f"scale {sc} ({s['gflop_per_obs']:.3f} GFLOP/obs), obs/s (best of {result['repeats']}):")
        print(f"  per-square loop (render 1, forward batch 1, {s['loop_squares']} squares): {r['loop']:8.0f}")
        print(f"  reference fp32 NCHW vector field:  {r['reference']:8.0f}  = {s['reference_over_loop']:5.1f}x loop")
        print(
            f"  default (exact) vector field:      {r['default']:8.0f}  = {s['default_over_loop']:5.1f}x loop"
            f"   max |dp| vs reference {s['max_dp_default_vs_reference']:.1e}"
        )
        print(
            f"  fast vector field (runs {s['fast_runs']}):    {r['fast']:8.0f}  = {s['fast_over_loop']:5.1f}x loop"
            f"   max |dp| vs reference {s['max_dp_fast_vs_reference']:.1e}"
        )
        print(
            f"  forward only: reference {r['reference_forward']:.0f} ({s['reference_forward_fraction_of_floor']:.0%}"
            f" of fp32 floor), exact dense channels_last {r['dense_forward']:.0f} "
            f"({s['dense_forward_fraction_of_floor']:.0%}), exact default {r['exact_forward']:.0f} "
            f"({s['exact_forward_fraction_of_floor']:.0%} nominal; incremental first block "
            f"{s['incremental_speedup']:.2f}x)"
        )
        print(
            f"  bf16 forced ({s['bf16_observations']} obs): {r['bf16_forward']:.0f} obs/s = "
            f"{r['bf16_forward'] / r['dense_forward']:.2f}x exact dense; max |dp| {s['bf16_max_dp']:.1e}, "
            f"mean {s['bf16_mean_dp']:.1e}"
        )
        print(f"  fast mode: {s['fast_reason']}")
        target = TARGETS["default_over_loop"].get(sc)
        if target is not None:
            ratio = s["default_over_loop"]
            verdicts.append(f"default/loop at scale {sc}: {ratio:.1f}x {_verdict(ratio, target)}")
        target = TARGETS["exact_fraction_of_floor"].get(sc)
        if target is not None:
            frac = s["exact_forward_fraction_of_floor"]
            verdicts.append(f"exact at scale {sc}: {frac:.0%} of the fp32 floor {_verdict(frac, target)}")
    if verdicts:
        print("targets: " + "; ".join(verdicts))


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", type=at_least(1), default=1, help="IMPALA scale of the random-init network trained")
    p.add_argument("--region", type=int, default=5, help="cheese region of the training mazes")
    p.add_argument("--batch-squares", type=at_least(1), default=512, help="squares per batch (whole mazes)")
    p.add_argument("--batches", type=at_least(1), default=3, help="real training batches, the same for both passes")
    p.add_argument("--repeats", type=at_least(1), default=2, help="interleaved rounds; each number the best of them")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")


@command("bench-train", "fast-trainer step speed: full forward vs the per-maze shared background")(_train_args)
def bench_train(args: argparse.Namespace) -> int:
    from mazewb.benchmarks import train_step_bench

    r = train_step_bench(args.scale, args.region, args.batch_squares, args.batches, args.repeats, device=args.device)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    sizes = ", ".join("/".join(map(str, b["sizes"])) for b in r["batches"])
    print(f"mazewb bench-train: scale {r['scale']} on {r['device']}, {len(r['batches'])} batches (maze sizes {sizes})")
    print(f"machine: {r['machine']}")
    print(f"matmul floor: fp32 {r['floor_fp32_gflops']:.0f} GFLOP/s")
    print(f"optimizer step (fp32, BC + exact chain loss), best of {r['repeats']}:")
    print(f"  full forward:       {r['full_obs_per_s']:7.0f} obs/s")
    print(f"  shared background:  {r['shared_obs_per_s']:7.0f} obs/s = {r['shared_over_full']:.2f}x")
    return 0


def _edit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="policy checkpoint (default: the bundled agent)")
    p.add_argument("--scale", type=at_least(1), default=None, help="a random-init network of this scale instead")
    p.add_argument("--seed", type=int, default=17, help="level (17: a 25x25 maze)")
    p.add_argument("--edits", type=at_least(1), default=3, help="cheese moves to random open squares")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")


@command("bench-edit-reuse", "how much an exact cache of the previous field could save per cheese move")(_edit_args)
def bench_edit_reuse(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from mazewb import Maze, load_policy
    from mazewb.benchmarks import edit_reuse_bound
    from mazewb.policy import ImpalaPolicy

    if args.scale is not None:
        torch.manual_seed(args.scale)
        policy = ImpalaPolicy(scale=args.scale).eval()
    else:
        policy = load_policy(args.checkpoint)
    maze = Maze.from_seed(args.seed)
    rng = np.random.default_rng(0)
    choices = [c for c in maze.open_cells() if c not in (maze.cheese, maze.mouse)]
    moves = [choices[int(i)] for i in rng.choice(len(choices), size=min(args.edits, len(choices)), replace=False)]
    rows = [{"cheese": list(new), **edit_reuse_bound(policy, maze, maze.with_cheese(new))} for new in moves]
    if args.json:
        print(json.dumps({"seed": args.seed, "scale": policy.scale, "edits": rows}, indent=1))
        return 0
    print(f"level {args.seed} ({maze.size}x{maze.size}), cheese {maze.cheese} moved; scale {policy.scale}; "
          "convolution FLOP per square (lower bounds: windows counted without gathers and pastes)")
    first = rows[0]
    print(f"  dense pass {first['dense_flop'] / 1e6:.1f} M; default exact path "
          f"{first['default_path_flop'] / 1e6:.1f} M (windows around the mouse up to {first['stop']})")
    for r in rows:
        print(f"  cheese -> {tuple(r['cheese'])}: reuse of the previous field {r['edit_reuse_over_default']:.2f}x the "
              f"default path's work; best of both per layer {r['combined_over_default']:.2f}x")
    print(f"  an edit cache holds every layer of every square: {first['cache_mb']:.0f} MB per maze view")
    return 0
