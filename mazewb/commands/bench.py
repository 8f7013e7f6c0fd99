"""``mazewb bench-render``: rendering every open square vs one batched forward pass, as a ratio."""

from __future__ import annotations

import argparse
import statistics
import time

from mazewb.cli import command


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=17, help="a level with a 25x25 maze (17 is one)")
    p.add_argument("--scale", type=int, default=1, help="IMPALA channel scale of the network timed")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--fast", action="store_true", help="time the bf16/channels_last forward too")


@command("bench-render", "time render_observations for all open squares against one batched forward")(_args)
def bench_render(args: argparse.Namespace) -> int:
    import torch

    from mazewb.maze import Maze, render_observations
    from mazewb.policy import ImpalaPolicy, predict

    maze = Maze.from_seed(args.seed)
    cells = maze.open_cells()
    policy = ImpalaPolicy(scale=args.scale).eval()
    torch.manual_seed(0)
    obs = render_observations(maze, cells)  # warm-up: creates the env pool
    predict(policy, obs)
    if args.fast:
        predict(policy, obs, fast=True)

    def timed(fn) -> float:  # noqa: ANN001
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    # Interleave-free but same run: medians of several repeats each.
    t_render = timed(lambda: render_observations(maze, cells))
    t_forward = timed(lambda: predict(policy, obs, batch_size=len(cells)))
    print(
        f"maze: seed {args.seed}, {maze.size}x{maze.size}, {len(cells)} open squares; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"render_observations (all squares): {t_render * 1e3:.1f} ms median of {args.repeats}")
    print(f"batched forward, scale {args.scale}, fp32: {t_forward * 1e3:.1f} ms")
    print(f"ratio render / forward(fp32): {t_render / t_forward:.3f}")
    if args.fast:
        t_fast = timed(lambda: predict(policy, obs, batch_size=len(cells), fast=True))
        print(f"batched forward, bf16 channels_last: {t_fast * 1e3:.1f} ms")
        print(f"ratio render / forward(bf16): {t_render / t_fast:.3f}")
    return 0
