"""Inference modes (issue 12): the exact default equals plain fp32 NCHW within 1e-5, the fast
mode's error is measured, ``mazewb bench --quick`` and the GPU script run (on the CPU).
No timing is asserted: these machines are shared."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mazewb import Maze, load_policy
from mazewb.analysis import (
    DEFAULT_LAYER,
    FastModeError,
    activations,
    cheese_vector,
    fast_mode_error,
    field_squares,
    outcomes,
    vector_field,
    vector_fields,
    zero_ablation,
)
from mazewb.analysis.forward import move_probabilities, observations, probs_from_logits, to_input
from mazewb.cli import main
from mazewb.commands.speed import print_bench
from mazewb.policy import ImpalaPolicy, ReplaceChannels, SetChannels
from mazewb.policy.incremental import activation_at_stop
from mazewb.policy.runtime import channels_last_copy, fast_precision, resolve_mode, runner

TOL = 1e-5
SMALL_SEED = 3  # a 5x5 level
MID_SEED = 0


@pytest.fixture(scope="module")
def agent() -> ImpalaPolicy:
    return load_policy()


def _variants(policy: ImpalaPolicy, maze: Maze) -> list[tuple]:
    n = len(field_squares(maze))
    shape = policy.hook_points()[DEFAULT_LAYER]
    rng = np.random.default_rng(0)
    return [
        (),
        (cheese_vector(policy, maze, -1.0),),
        (SetChannels("embedder.block1.res1.conv1_out", (0, 2), None, 1.0),),  # before the windows' stop
        (zero_ablation("embedder.block3.res2.conv1_out", [0, 1]),),
        (ReplaceChannels(DEFAULT_LAYER, (2, 5), rng.normal(size=(n, 2, *shape[1:])).astype(np.float32)),),
    ]


@pytest.mark.parametrize("seed", [MID_SEED, SMALL_SEED])
def test_default_mode_equals_plain_fp32_nchw(agent: ImpalaPolicy, seed: int) -> None:
    maze = Maze.from_seed(seed)
    variants = _variants(agent, maze)
    if seed == MID_SEED:
        variants = variants[:3]  # the others on the small maze only: keeps the test short
    reference = vector_fields(agent, maze, variants, mode="reference")
    for reuse in (True, False):
        default = vector_fields(agent, maze, variants, reuse=reuse)
        for d, r in zip(default, reference, strict=True):
            assert np.abs(d.probs - r.probs).max() < TOL
    # The reference mode is the old path bit for bit: policy(x) on contiguous NCHW inputs.
    x = to_input(agent, observations(maze, field_squares(maze)))
    with torch.inference_mode():
        plain = probs_from_logits(agent(x.contiguous())[0])
    assert np.array_equal(move_probabilities(agent, x, mode="reference"), plain)
    if seed == SMALL_SEED:
        assert np.abs(outcomes(agent, maze).p_cheese - outcomes(agent, maze, mode="reference").p_cheese) < TOL


def test_default_mode_takes_the_incremental_and_channels_last_paths(agent: ImpalaPolicy) -> None:
    run = runner(agent, "exact")
    assert run.channels_last and run.incremental and run.net is not agent
    maze = Maze.from_seed(MID_SEED)
    x = run.input(to_input(agent, observations(maze, field_squares(maze))))
    with torch.inference_mode():
        plan, _, _ = activation_at_stop(run.net, x)
    assert plan.stop is not None and len(plan.windowed) > len(x) // 2


def test_tiny_scale4_case() -> None:
    torch.manual_seed(4)
    net = ImpalaPolicy(scale=4).eval()
    maze = Maze.from_seed(SMALL_SEED)
    x = to_input(net, observations(maze, field_squares(maze)[:12]))
    exact = move_probabilities(net, x, shared_background=True)
    reference = move_probabilities(net, x, mode="reference")
    assert np.abs(exact - reference).max() < TOL


def test_layout_copy_is_cached_private_and_refreshed(agent: ImpalaPolicy) -> None:
    torch.manual_seed(1)
    net = ImpalaPolicy(scale=1).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    copy1 = channels_last_copy(net)
    assert channels_last_copy(net) is copy1  # converted once, not per call
    assert net.embedder.block1.conv.weight.is_contiguous()  # the caller's policy is untouched
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    maze = Maze.from_seed(SMALL_SEED)
    with torch.no_grad():
        net.fc_policy.weight.mul_(50.0)  # an in-place update: the copy must follow
    assert channels_last_copy(net) is not copy1
    a, b = vector_field(net, maze), vector_field(net, maze, mode="reference")
    assert np.abs(a.probs - b.probs).max() < TOL
    # A policy that is already channels_last (as the app keeps them) is run as it is.
    cl = ImpalaPolicy(scale=1).eval().to(memory_format=torch.channels_last)
    assert channels_last_copy(cl) is cl


def test_activations_in_exact_mode(agent: ImpalaPolicy) -> None:
    maze = Maze.from_seed(MID_SEED)
    squares = field_squares(maze)
    layers = [DEFAULT_LAYER, "embedder.block1.maxpool_out"]
    exact = activations(agent, maze, layers, squares)
    ref = activations(agent, maze, layers, squares, mode="reference")
    for layer in layers:
        np.testing.assert_allclose(exact[layer], ref[layer], rtol=1e-4, atol=1e-5)


def test_modes_and_the_deprecated_fast_flag(agent: ImpalaPolicy) -> None:
    assert resolve_mode(None) == "exact"
    with pytest.raises(ValueError, match="unknown mode"):
        resolve_mode("turbo")
    with pytest.warns(DeprecationWarning):
        assert resolve_mode(None, fast=True) == "bf16"
    maze = Maze.from_seed(SMALL_SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = vector_field(agent, maze, fast=False)
    assert np.array_equal(old.probs, vector_field(agent, maze, mode="exact").probs)
    choice = fast_precision(agent)
    assert choice.mode in ("exact", "bf16") and choice.reason


def test_fast_mode_error_is_sane(agent: ImpalaPolicy) -> None:
    err = fast_mode_error(agent)
    assert isinstance(err, FastModeError) and err.summary()
    if err.is_exact:
        assert err.max_abs_dp == 0.0 and err.speedup == 1.0
    forced = fast_mode_error(agent, [Maze.from_seed(SMALL_SEED)], mode="bf16", squares=8)
    assert forced.runs == "bf16" and forced.observations == 8
    assert 0.0 <= forced.mean_abs_dp <= forced.max_abs_dp < 0.2
    assert forced.speedup > 0 and "bf16" in forced.summary()
    assert fast_mode_error(agent, [Maze.from_seed(SMALL_SEED)], mode="bf16", squares=8) is forced  # cached


def test_vfield_cli_prints_the_fast_mode_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vfield", "--seed", str(SMALL_SEED), "--mode", "fast"]) == 0
    assert "fast mode" in capsys.readouterr().out


def test_bench_quick_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--seed", str(SMALL_SEED), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (s,) = result["scales"]
    assert s["scale"] == 1 and s["default_over_loop"] > 0 and result["floor"]["fp32_gflops"] > 0
    assert s["max_dp_default_vs_reference"] < TOL
    print_bench(result)
    assert "targets:" in capsys.readouterr().out


def test_gpu_script_runs_on_cpu(tmp_path: Path) -> None:
    path = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "gpu.json"
    argv = ["--device", "cpu", "--mazes", "3", "--levels", f"{SMALL_SEED},1,2", "--field-level", str(SMALL_SEED)]
    argv += ["--no-scale4", "--train-steps", "1", "--train-batch", "8", "--repeats", "1", "--floor-size", "256"]
    assert module.main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert len({r["level"] for r in report["agreement"]}) == 3 and all(r["ok"] for r in report["agreement"])
    assert report["patched_sweep"]["mazes"] == 3
    assert report["fast_trainer"]["shared_obs_per_s"] > 0 and report["fast_trainer"]["full_obs_per_s"] > 0


def test_bench_train_times_both_forward_passes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench-train", "--batch-squares", "40", "--batches", "1", "--repeats", "1", "--region", "25", "--json"]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["full_obs_per_s"] > 0 and r["shared_obs_per_s"] > 0 and r["floor_fp32_gflops"] > 0
    assert r["batches"][0]["squares"] >= 40


def test_edit_reuse_bound_counts_changed_windows(agent: ImpalaPolicy) -> None:
    from mazewb.benchmarks import edit_reuse_bound, forward_flops

    maze = Maze.from_seed(MID_SEED)
    same = edit_reuse_bound(agent, maze, maze)  # an edit that changes nothing needs no convolution
    assert same["stop"] is not None and same["edit_reuse_flop"] < 0.05 * same["dense_flop"]
    assert same["dense_flop"] == forward_flops(agent)
    moved = next(c for c in maze.open_cells() if c not in (maze.cheese, maze.mouse))
    r = edit_reuse_bound(agent, maze, maze.with_cheese(moved))
    assert r["default_path_flop"] < r["dense_flop"] and r["edit_reuse_flop"] <= r["dense_flop"]
    assert r["edit_reuse_flop"] > same["edit_reuse_flop"]
    assert r["combined_flop"] <= min(r["edit_reuse_flop"], r["default_path_flop"]) + 1
    assert r["cache_mb"] > 0
