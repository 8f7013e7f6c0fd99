"""Check the CUDA path against the CPU and print the GPU benchmark (issue 12, item 5).

    python scripts/gpu_check.py                          # on a GPU machine: full check and benchmark
    python scripts/gpu_check.py --device cpu --mazes 20  # anywhere (CI): the same code, small sizes

Checks (exit status 1 if any fails): on three levels, vector fields on ``--device`` (exact mode,
TF32 off) equal the CPU's plain fp32 NCHW fields within ``--tolerance`` in every probability,
unpatched and under interventions (cheese vector, a block2 channel set, an ablation in block3).
Benchmark (best of ``--repeats``, ratios to the device's own matmul floor): vector field of level
17 (exact and fast modes, scale 1 and a random scale-4 net), patched decision-square sweeps over
``--mazes`` mazes (cheese vector coefficients 0 and -1), and training throughput (forward,
backward and Adam step at batch ``--train-batch``; and the fast trainer's own step on real batches of
whole mazes, with and without the shared first block).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

LEVELS = (17, 0, 3)
"""A 25x25 maze, a mid-sized one and a 5x5 one."""


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--checkpoint", default=None, help="agent to check (default: the bundled agent)")
    p.add_argument("--mazes", type=int, default=1000, help="mazes with a decision square in the patched sweep")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |p_device - p_cpu| allowed")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-batch", type=int, default=256)
    p.add_argument("--train-steps", type=int, default=10)
    p.add_argument("--scale4", action=argparse.BooleanOptionalAction, default=True, help="also time a scale-4 net")
    p.add_argument("--levels", default=",".join(map(str, LEVELS)), help="levels of the agreement check")
    p.add_argument("--field-level", type=int, default=17, help="level of the vector-field benchmark")
    p.add_argument("--floor-size", type=int, default=None, help="matmul floor size (default 4096 on CUDA, 2048 on CPU)")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    return p.parse_args(argv)


def _best(fn, repeats: int, device: torch.device) -> float:  # noqa: ANN001
    from mazewb.benchmarks import timed

    fn()  # warm-up
    return min(timed(fn, device) for _ in range(repeats))


def check_agreement(policy, device: torch.device, tolerance: float, levels=LEVELS) -> list[dict]:  # noqa: ANN001
    """Max |dp| between vector fields on ``device`` (exact mode) and the CPU reference, per
    level and intervention set."""
    from mazewb import Maze
    from mazewb.analysis import cheese_vector, vector_fields, zero_ablation
    from mazewb.policy import SetChannels

    cpu_policy = copy.deepcopy(policy).to("cpu")
    dev_policy = copy.deepcopy(policy).to(device)
    rows = []
    for seed in levels:
        maze = Maze.from_seed(seed)
        cv = cheese_vector(cpu_policy, maze, -1.0)
        variants = {
            "none": (),
            "cheese_vector_-1": (cv,),
            "set_block2_channels": (SetChannels("embedder.block2.res1.resadd_out", (0, 1, 2), None, 1.5),),
            "ablate_block3": (zero_ablation("embedder.block3.res2.conv1_out", [0, 3]),),
        }
        names = list(variants)
        ref = vector_fields(cpu_policy, maze, [variants[k] for k in names], mode="reference")
        got = vector_fields(dev_policy, maze, [variants[k] for k in names], mode="exact")
        for name, a, b in zip(names, got, ref, strict=True):
            dp = float(np.abs(a.probs - b.probs).max())
            rows.append({"level": seed, "interventions": name, "max_abs_dp": dp, "ok": dp <= tolerance})
    return rows


def bench_device(policy, device: torch.device, args: argparse.Namespace) -> dict:  # noqa: ANN001
    from mazewb import Maze
    from mazewb.analysis import fast_mode_error, field_squares, steering_sweep, vector_field
    from mazewb.benchmarks import forward_flops, matmul_job
    from mazewb.maze.graph import decision_square
    from mazewb.policy import ImpalaPolicy
    from mazewb.policy.runtime import bf16_native

    out: dict = {}
    size = args.floor_size or (4096 if device.type == "cuda" else 2048)
    floor: dict = {"bfloat16": None}
    dtypes = (torch.float32, torch.bfloat16) if bf16_native(device) else (torch.float32,)
    for dtype in dtypes:
        t = _best(matmul_job(size, dtype, str(device)), max(args.repeats, 5), device)
        floor[str(dtype).split(".")[-1]] = 2 * size**3 / t / 1e9
    out["matmul_floor_gflops"] = {"size": size, **floor}

    maze = Maze.from_seed(args.field_level)
    n = len(field_squares(maze))
    nets = {"agent": policy.to(device)}
    if args.scale4:
        torch.manual_seed(4)
        nets["random_scale4"] = ImpalaPolicy(scale=4).eval().to(device)
    out["vector_field"] = {}
    for name, net in nets.items():
        entry = {"scale": net.scale, "level": args.field_level, "squares": n}
        for mode in ("exact", "fast"):
            t = _best(lambda net=net, mode=mode: vector_field(net, maze, mode=mode), args.repeats, device)
            entry[f"{mode}_obs_per_s"] = n / t
            entry[f"{mode}_fraction_of_fp32_floor"] = n / t * forward_flops(net) / 1e9 / floor["float32"]
        err = fast_mode_error(net)
        entry["fast_mode"] = err.summary()
        out["vector_field"][name] = entry

    mazes, seed = [], 0
    while len(mazes) < args.mazes:
        m = Maze.from_seed(seed)
        if decision_square(m) is not None:
            mazes.append(m)
        seed += 1
    t0 = time.perf_counter()
    table = steering_sweep(policy, mazes, [0.0, -1.0], [0.0])
    t = time.perf_counter() - t0
    out["patched_sweep"] = {
        "mazes": len(mazes),
        "variants": 2,
        "seconds": t,
        "mazes_per_s": len(mazes) / t,
        "median_p_cheese_ds": {str(c): float(table[table.cheese_coeff == c].p_cheese_ds.median()) for c in (0.0, -1.0)},
    }

    for name, net in nets.items():
        train_net = copy.deepcopy(net).train()
        for p in train_net.parameters():
            p.requires_grad_(True)
        opt = torch.optim.Adam(train_net.parameters(), lr=1e-4)
        x = torch.rand((args.train_batch, 3, 64, 64), device=device)
        target = torch.randint(0, 15, (args.train_batch,), device=device)
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if device.type == "cuda" else None

        def step(train_net=train_net, opt=opt, x=x, target=target, ctx=ctx) -> None:  # noqa: ANN001
            opt.zero_grad(set_to_none=True)
            if ctx is not None:
                with ctx:
                    logits, value = train_net(x)
            else:
                logits, value = train_net(x)
            loss = torch.nn.functional.cross_entropy(logits.float(), target) + value.float().pow(2).mean()
            loss.backward()
            opt.step()

        def steps(step=step) -> None:  # noqa: ANN001
            for _ in range(args.train_steps):
                step()

        t = _best(steps, max(1, args.repeats // 2), device)
        out.setdefault("training", {})[name] = {
            "scale": net.scale,
            "batch": args.train_batch,
            "precision": "bf16 autocast" if ctx is not None else "fp32",
            "obs_per_s": args.train_batch * args.train_steps / t,
        }
    # The fast trainer's own step on real batches of whole mazes, full forward vs the shared first block.
    from mazewb.benchmarks import train_step_bench

    tb = train_step_bench(
        scale=1, batch_squares=args.train_batch, batches=2, repeats=max(1, args.repeats // 2), device=str(device),
        floor_size=args.floor_size or (4096 if device.type == "cuda" else 2048),
    )
    out["fast_trainer"] = {k: tb[k] for k in ("full_obs_per_s", "shared_obs_per_s", "shared_over_full", "batches")}
    return out


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    from mazewb import load_policy
    from mazewb.benchmarks import machine_load

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine (use --device cpu)", file=sys.stderr)
        return 2
    # Exactness is checked in fp32: TF32 convolutions/matmuls would differ by ~1e-3.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    policy = load_policy(args.checkpoint)
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"host: {machine_load()}")
    rows = check_agreement(policy, device, args.tolerance, [int(s) for s in args.levels.split(",")])
    ok = all(r["ok"] for r in rows)
    print(f"agreement with the CPU reference (tolerance {args.tolerance:g}):")
    for r in rows:
        verdict = "ok" if r["ok"] else "FAIL"
        print(f"  level {r['level']:3d}  {r['interventions']:22s} max |dp| {r['max_abs_dp']:.2e}  {verdict}")
    results = bench_device(policy, device, args)
    fl = results["matmul_floor_gflops"]
    bf = "not native here" if fl["bfloat16"] is None else f"{fl['bfloat16']:.0f} GFLOP/s"
    print(f"matmul floor {fl['size']}^3: fp32 {fl['float32']:.0f} GFLOP/s, bf16 {bf}")
    for name, e in results["vector_field"].items():
        print(
            f"vector field, level {e['level']} ({e['squares']} squares), {name} (scale {e['scale']}): "
            f"exact {e['exact_obs_per_s']:.0f} obs/s "
            f"({e['exact_fraction_of_fp32_floor']:.0%} of fp32 floor), fast {e['fast_obs_per_s']:.0f} obs/s; "
            f"{e['fast_mode']}"
        )
    sw = results["patched_sweep"]
    print(
        f"patched decision-square sweep: {sw['mazes']} mazes x {sw['variants']} variants in {sw['seconds']:.1f} s "
        f"({sw['mazes_per_s']:.1f} mazes/s); median P(cheese | ds) {sw['median_p_cheese_ds']}"
    )
    for name, e in results["training"].items():
        what = f"scale {e['scale']}, batch {e['batch']}, {e['precision']}"
        print(f"training, {name} ({what}): {e['obs_per_s']:.0f} obs/s")
    ft = results["fast_trainer"]
    squares = sum(b["squares"] for b in ft["batches"])
    print(
        f"fast trainer step (scale 1, fp32, {squares} squares of whole mazes): full forward {ft['full_obs_per_s']:.0f} "
        f"obs/s, shared first block {ft['shared_obs_per_s']:.0f} obs/s ({ft['shared_over_full']:.2f}x)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"agreement": rows, **results}, indent=1))
    print("all checks passed" if ok else "AGREEMENT CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
