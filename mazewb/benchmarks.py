"""Speed measurements as ratios from one run: the matmul floor, the per-square loop baseline,
the inference modes. Used by ``mazewb bench`` and ``scripts/gpu_check.py``.

Machines here are shared: every number is a best of several interleaved repeats, and what is
compared (modes, baseline, floor) is measured in the same run. ``machine_load()`` reports how
busy the machine was.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from mazewb.policy import ImpalaPolicy
from mazewb.policy.runtime import bf16_native, fast_precision

FLOOR_SIZE = 2048


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device | str = "cpu") -> float:
    """Seconds one call of ``fn`` takes (synchronizing a GPU before and after)."""
    device = torch.device(device)
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def matmul_job(size: int = FLOOR_SIZE, dtype: torch.dtype = torch.float32, device: str = "cpu") -> Callable[[], object]:
    """A ``size``^3 matmul (2 size^3 FLOP) of random matrices, ready to time."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn((size, size), generator=g).to(device=device, dtype=dtype)
    b = torch.randn((size, size), generator=g).to(device=device, dtype=dtype)
    return lambda: a @ b


def forward_flops(policy: ImpalaPolicy) -> float:
    """FLOP (2 per multiply-add) of one observation's forward pass through convolutions and
    linear layers (scale 1: about 61 M; scale 4: about 0.92 G)."""
    shapes = policy.hook_points()
    total = 0.0
    for name, module in policy.named_modules():
        if isinstance(module, nn.Conv2d):
            out = shapes[f"{name}_out"]
            kh, kw = module.kernel_size
            total += 2.0 * module.in_channels * kh * kw * out[0] * out[1] * out[2]
        elif isinstance(module, nn.Linear):
            total += 2.0 * module.in_features * module.out_features
    return total


def machine_load() -> str:
    """CPU model, cores, torch threads, bf16 capability and the load average, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average unknown"
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"cpu capability {torch.backends.cpu.get_cpu_capability()}, native bf16 on cpu: "
        f"{'yes' if bf16_native('cpu') else 'no'}; {load}"
    )


def per_square_loop(policy: ImpalaPolicy, maze, squares: Sequence) -> np.ndarray:  # noqa: ANN001
    """procgen-tools' per-square vector field, reimplemented faithfully: for each square, render
    that one observation, run a batch of 1 through the plain fp32 network under ``no_grad``,
    softmax, next square. Returns (N, 15) action probabilities."""
    from mazewb.analysis.forward import observations

    out = []
    for sq in squares:
        obs = observations(maze, [sq])
        x = torch.tensor(obs, dtype=torch.float32).permute(0, 3, 1, 2).to(policy.device) / 255.0
        with torch.no_grad():
            logits, _ = policy(x)
        out.append(torch.softmax(logits, dim=-1).cpu().numpy())
    return np.concatenate(out)


@dataclass
class Timings:
    """Best-of timings of named jobs, run interleaved."""

    best: dict[str, float] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)

    def run(self, jobs: dict[str, Callable[[], object]], repeats: int, device: torch.device | str = "cpu") -> None:
        for _ in range(repeats):
            for name, job in jobs.items():
                t = timed(job, device)
                self.best[name] = min(self.best.get(name, float("inf")), t)
                self.runs[name] = self.runs.get(name, 0) + 1


def speed_bench(
    scales: Sequence[int] = (1, 4),
    seed: int = 17,
    repeats: int = 3,
    floor_size: int = FLOOR_SIZE,
    floor_repeats: int = 5,
    loop_squares: int | None = None,
    bf16_squares: int = 32,
    policies: dict[int, ImpalaPolicy] | None = None,
) -> dict:
    """The issue-12 benchmark, all in one run: per scale, vector fields of level ``seed`` in the
    default (exact), reference (plain fp32 NCHW) and fast modes, the exact forward alone, the
    per-square loop (``loop_squares`` of the squares, default all), forced bf16 on
    ``bf16_squares`` observations; the fp32 (and bf16) matmul floor timed between them (best of
    ``floor_repeats``). Networks: random-init of the original architecture unless ``policies``
    gives one per scale. Returns plain numbers (obs/s, ratios, GFLOP/s)."""
    from mazewb import Maze
    from mazewb.analysis import field_squares, vector_field
    from mazewb.analysis.forward import move_probabilities, observations, to_input

    maze = Maze.from_seed(seed)
    squares = field_squares(maze)
    n = len(squares)
    loop_sq = squares if loop_squares is None else squares[: max(1, loop_squares)]
    floor_fp32 = matmul_job(floor_size, torch.float32)
    floor_bf16 = matmul_job(floor_size, torch.bfloat16) if bf16_native("cpu") else None
    timings = Timings()
    floor_every = max(1, -(-floor_repeats // max(1, repeats)))  # floor runs per round
    nets = {}
    setups = {}
    for scale in scales:
        if policies is not None and scale in policies:
            net = policies[scale]
        else:
            torch.manual_seed(scale)
            net = ImpalaPolicy(scale=scale).eval()
        nets[scale] = net
        x = to_input(net, observations(maze, squares))
        xb = x[:bf16_squares]
        ref = vector_field(net, maze, mode="reference")
        exact = vector_field(net, maze)  # warm-up: builds the channels_last copy
        fast = vector_field(net, maze, mode="fast")
        loop = per_square_loop(net, maze, loop_sq[:2])
        bf = move_probabilities(net, xb, mode="bf16")
        exact_b = move_probabilities(net, xb, mode="exact", shared_background=True)
        setups[scale] = {
            "x": x,
            "xb": xb,
            "dp_exact": float(np.abs(exact.probs - ref.probs).max()),
            "dp_fast": float(np.abs(fast.probs - ref.probs).max()),
            "dp_bf16": float(np.abs(bf - exact_b).max()),
            "mean_dp_bf16": float(np.abs(bf - exact_b).mean()),
            "loop_ok": loop.shape,
        }
    for _ in range(repeats):
        for _ in range(floor_every):
            timings.run({"floor_fp32": floor_fp32}, 1)
        if floor_bf16 is not None:
            timings.run({"floor_bf16": floor_bf16}, 1)
        for scale in scales:
            net, s = nets[scale], setups[scale]
            timings.run(
                {
                    f"loop{scale}": lambda net=net: per_square_loop(net, maze, loop_sq),
                    f"reference{scale}": lambda net=net: vector_field(net, maze, mode="reference"),
                    f"default{scale}": lambda net=net: vector_field(net, maze),
                    f"fast{scale}": lambda net=net: vector_field(net, maze, mode="fast"),
                    f"exact_forward{scale}": lambda net=net, s=s: move_probabilities(
                        net, s["x"], mode="exact", shared_background=True
                    ),
                    f"dense_forward{scale}": lambda net=net, s=s: move_probabilities(net, s["x"], mode="exact"),
                    f"reference_forward{scale}": lambda net=net, s=s: move_probabilities(net, s["x"], mode="reference"),
                    f"bf16_{scale}": lambda net=net, s=s: move_probabilities(net, s["xb"], mode="bf16"),
                },
                1,
            )
    t = timings.best
    fl = 2.0 * floor_size**3
    floor = fl / t["floor_fp32"] / 1e9
    result: dict = {
        "machine": machine_load(),
        "maze": {"seed": seed, "size": maze.size, "squares": n},
        "repeats": repeats,
        "floor": {
            "size": floor_size,
            "runs": timings.runs["floor_fp32"],
            "fp32_gflops": floor,
            "bf16_gflops": fl / t["floor_bf16"] / 1e9 if "floor_bf16" in t else None,
        },
        "scales": [],
    }
    for scale in scales:
        net, s = nets[scale], setups[scale]
        gflop = forward_flops(net) / 1e9
        rate = {
            "loop": len(loop_sq) / t[f"loop{scale}"],
            "reference": n / t[f"reference{scale}"],
            "default": n / t[f"default{scale}"],
            "fast": n / t[f"fast{scale}"],
            "exact_forward": n / t[f"exact_forward{scale}"],
            "dense_forward": n / t[f"dense_forward{scale}"],
            "reference_forward": n / t[f"reference_forward{scale}"],
            "bf16_forward": len(s["xb"]) / t[f"bf16_{scale}"],
        }
        result["scales"].append(
            {
                "scale": scale,
                "gflop_per_obs": gflop,
                "obs_per_s": rate,
                "default_over_loop": rate["default"] / rate["loop"],
                "reference_over_loop": rate["reference"] / rate["loop"],
                "fast_over_loop": rate["fast"] / rate["loop"],
                "exact_forward_fraction_of_floor": rate["exact_forward"] * gflop / floor,
                "dense_forward_fraction_of_floor": rate["dense_forward"] * gflop / floor,
                "reference_forward_fraction_of_floor": rate["reference_forward"] * gflop / floor,
                "incremental_speedup": rate["exact_forward"] / rate["dense_forward"],
                "fast_runs": fast_precision(net).mode,
                "fast_reason": fast_precision(net).reason,
                "max_dp_default_vs_reference": s["dp_exact"],
                "max_dp_fast_vs_reference": s["dp_fast"],
                "bf16_max_dp": s["dp_bf16"],
                "bf16_mean_dp": s["mean_dp_bf16"],
                "bf16_observations": len(s["xb"]),
                "loop_squares": len(loop_sq),
            }
        )
    return result


def train_step_bench(
    scale: int = 1,
    region: int = 5,
    batch_squares: int = 512,
    batches: int = 3,
    repeats: int = 2,
    large_maze_bias: float = 1.0,
    device: str = "cpu",
    floor_size: int = FLOOR_SIZE,
    seed: int = 0,
) -> dict:
    """The fast trainer's optimizer step (forward, BC + exact chain losses, backward, Adam) on the
    same real batches with the full forward pass and with the per-maze shared background
    (``mazewb.policy.incremental.forward_shared_background``), interleaved, with the fp32 matmul
    floor timed between them. Batches: ``batches`` of whole training mazes (``region``,
    ``large_maze_bias``) of at least ``batch_squares`` squares. Returns obs/s (total squares over
    the best time per pass over the batches) and the ratio."""
    import tempfile

    from mazewb.maze.render import Renderer
    from mazewb.train.common import device_for
    from mazewb.train.config import FastConfig
    from mazewb.train.data import build_batch, training_levels
    from mazewb.train.fast import FastTrainer

    device = str(device_for(device))  # a device this machine lacks: a ConfigError before any work
    rng = np.random.default_rng(seed)
    renderer = Renderer(batch=64)
    try:
        levels = training_levels(rng, region, batch_squares, large_maze_bias=large_maze_bias)
        made = [build_batch(next(levels), renderer, rng) for _ in range(batches)]
    finally:
        renderer.close()
    total = sum(b.num_squares for b in made)
    floor = matmul_job(floor_size, torch.float32, device)
    with tempfile.TemporaryDirectory() as runs:
        torch.manual_seed(seed)
        trainer = FastTrainer(
            FastConfig(name="bench", runs_dir=runs, region=region, scale=scale, rl_coef=1.0, bf16=False,
                       threads=torch.get_num_threads(), device=device)
        )

        def epoch(shared: bool) -> Callable[[], object]:
            def run() -> None:
                trainer.config.shared_background = shared
                for b in made:
                    trainer.step(b)

            return run

        jobs = {"full": epoch(False), "shared": epoch(True)}
        for job in jobs.values():
            job()  # warm-up
        timings = Timings()
        for _ in range(repeats):
            timings.run({"floor": floor}, 1, device)
            timings.run(jobs, 1, device)
    t = timings.best
    return {
        "machine": machine_load(),
        "device": device,
        "scale": scale,
        "batches": [{"squares": b.num_squares, "sizes": b.sizes.tolist()} for b in made],
        "repeats": repeats,
        "floor_fp32_gflops": 2.0 * floor_size**3 / t["floor"] / 1e9,
        "full_obs_per_s": total / t["full"],
        "shared_obs_per_s": total / t["shared"],
        "shared_over_full": t["full"] / t["shared"],
    }


def _changed_box_areas(a: Tensor, b: Tensor) -> Tensor:
    """Per row, the area of the bounding box of the spatial positions where ``a`` and ``b``
    (N, C, H, W) differ in any channel (0 where equal). Differences below 1e-5 of the largest
    activation are float rounding (a batch of 1 and a batch of 32 may sum in different orders)."""
    diff = ((a - b).abs() > 1e-5 * a.abs().max()).any(dim=1)  # (N, H, W)
    rows, cols = diff.any(dim=2), diff.any(dim=1)

    def span(m: Tensor) -> Tensor:
        idx = torch.arange(m.shape[1])
        first = torch.where(m, idx, m.shape[1]).min(dim=1).values
        last = torch.where(m, idx, -1).max(dim=1).values
        return (last - first + 1).clamp(min=0)

    return span(rows) * span(cols)


def edit_reuse_bound(policy: ImpalaPolicy, maze, edited, chunk: int = 32) -> dict:  # noqa: ANN001
    """How much an exact reuse of work across an edit could save, measured: for every square of
    both vector fields (``maze`` and ``edited``, e.g. the cheese moved), the convolution FLOPs
    needed if each convolution were recomputed only over the bounding box of the positions
    where its output changed, against (a) the dense pass and (b) what the default exact path
    computes per square (windows around the mouse, against the mouse-free base image, up to its
    stop point; dense after), and (c) the better of the two per convolution and square. Also the
    memory an edit cache would need: every stage's activations of every square of the previous
    field. Returns FLOP per square (means) and ratios. Windows are counted without the gathers
    and pastes they cost, so these are lower bounds on work."""
    from mazewb.analysis.forward import observations, to_input
    from mazewb.policy.impala import STAGES, hook_index
    from mazewb.policy.incremental import activation_at_stop

    squares = [s for s in maze.open_cells() if s not in (maze.cheese, edited.cheese) and s in set(edited.open_cells())]
    modules = dict(policy.named_modules())
    convs = {s.name: s for s in STAGES if s.op is not None and isinstance(modules[s.op], nn.Conv2d)}
    shapes = policy.hook_points()

    def per_pixel(name: str) -> float:
        conv = modules[convs[name].op]
        return 2.0 * conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels

    def stages(x: Tensor) -> dict[str, Tensor]:
        acts: dict[str, Tensor] = {}

        def keep(name: str, act: Tensor) -> Tensor:
            if name in convs:
                acts[name] = act
            return act

        with torch.inference_mode():
            policy.forward_stages(x, on_output=keep)
        return acts

    xa_all = to_input(policy, observations(maze, squares))
    xb_all = to_input(policy, observations(edited, squares))
    with torch.inference_mode():
        plan, _, base_x = activation_at_stop(policy, xa_all)
    stop = plan.stop
    base_acts = stages(base_x) if base_x is not None else None
    dense = forward_flops(policy)
    linear = dense - sum(per_pixel(n) * shapes[n][1] * shapes[n][2] for n in convs)
    edit_flops = mouse_flops = both_flops = 0.0
    for lo in range(0, len(squares), chunk):
        a, b = stages(xa_all[lo : lo + chunk]), stages(xb_all[lo : lo + chunk])
        for name in convs:
            full = shapes[name][1] * shapes[name][2]
            edit_area = _changed_box_areas(a[name], b[name])
            if base_acts is None or stop is None or hook_index(name) > hook_index(stop):
                mouse_area = torch.full_like(edit_area, full)
            else:  # windows around the mouse
                mouse_area = _changed_box_areas(a[name], base_acts[name].expand_as(a[name]))
            edit_flops += float(edit_area.sum()) * per_pixel(name)
            mouse_flops += float(mouse_area.sum()) * per_pixel(name)
            both_flops += float(torch.minimum(edit_area, mouse_area).sum()) * per_pixel(name)
    cache_floats = sum(int(np.prod(shape)) for shape in shapes.values())
    n = len(squares)
    edit = edit_flops / n + linear
    mouse = mouse_flops / n + linear
    both = both_flops / n + linear
    return {
        "squares": n,
        "stop": stop,
        "dense_flop": dense,
        "default_path_flop": mouse,
        "edit_reuse_flop": edit,
        "edit_reuse_over_dense": edit / dense,
        "edit_reuse_over_default": edit / mouse,
        "combined_flop": both,
        "combined_over_default": both / mouse,
        "cache_mb": cache_floats * 4 * n / 2**20,
    }
