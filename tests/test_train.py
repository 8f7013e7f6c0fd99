"""Trainers and evaluation: tiny end-to-end runs, resuming, exact evaluation against the real game."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch

from mazewb import Maze
from mazewb.analysis.chain import exact_outcomes
from mazewb.env import MazeVecEnv
from mazewb.maze.bridge import maze_to_state_bytes
from mazewb.maze.render import Renderer
from mazewb.policy import ImpalaPolicy, load_policy, move_probs
from mazewb.policy.hooks import observations_to_tensor
from mazewb.train.common import FROM_SCRATCH, move_log_probs
from mazewb.train.data import build_batch, place_cheese
from mazewb.train.evaluate import MazeProbs, summarize
from mazewb.train.exact import chain_values, rl_loss
from mazewb.train.fast import FastConfig, FastTrainer
from mazewb.train.ppo import PPOConfig, PPOTrainer


def test_move_log_probs_match_move_probs() -> None:
    logits = torch.randn(7, 15) * 3
    assert torch.allclose(move_log_probs(logits).exp(), move_probs(logits), atol=1e-6)


def test_chain_values_exact_on_a_corridor(corridor: Maze) -> None:
    """Always RIGHT then UP: the value of a square d moves from the cheese is gamma**(d-1)."""
    maze = corridor.with_cheese((4, 4))
    renderer = Renderer(batch=16)
    batch = build_batch([maze], renderer, rng=None)
    renderer.close()
    cells = [c for c in maze.open_cells() if c != maze.cheese]
    probs = torch.zeros((len(cells), 5), dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        for i, (r, c) in enumerate(cells):
            probs[i, 3 if r == 0 and c < 4 else 2] = 1.0
    gamma = 0.9
    values = chain_values(probs, batch, gamma)
    dist = [(4 - c) + 4 if r == 0 else 4 - r for r, c in cells]
    assert np.allclose(values.detach().numpy(), [gamma ** (d - 1) for d in dist])
    rl_loss(probs, batch, gamma).backward()
    assert probs.grad is not None and torch.isfinite(probs.grad).all()


def _tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fast_trainer_runs_and_resumes(tmp_path) -> None:  # noqa: ANN001
    cfg = FastConfig(
        name="t", runs_dir=str(tmp_path), batch_squares=24, curriculum_start=5, curriculum_samples=10**9,
        threads=1, eval_every_s=1e9, rl_coef=0.5,
    )
    trainer = FastTrainer(cfg)
    counters = trainer.train(max_steps=3)
    assert counters["step"] == 3 and counters["samples"] >= 3 * 24
    saved_model = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    saved_opt = trainer.optimizer.state_dict()

    resumed = FastTrainer(FastConfig(name="t", runs_dir=str(tmp_path)), resume=True)
    assert resumed.counters["step"] == 3 and resumed.counters["samples"] == counters["samples"]
    assert resumed.config.rl_coef == 0.5  # the run's own settings, not the defaults
    assert _tensors_equal(saved_model, resumed.model.state_dict())
    opt = resumed.optimizer.state_dict()
    assert opt["state"].keys() == saved_opt["state"].keys()
    for key, st in saved_opt["state"].items():
        assert all(torch.equal(st[n], opt["state"][key][n]) for n in ("step", "exp_avg", "exp_avg_sq"))
    assert resumed.train(max_steps=1)["step"] == 4
    biased = FastTrainer(FastConfig(name="t", runs_dir=str(tmp_path)), resume=True, overrides={"large_maze_bias": 1.0})
    assert biased.config.large_maze_bias == 1.0 and biased.train(max_steps=1)["step"] == 5
    with pytest.raises(ValueError, match="large_maze_bias"):
        FastTrainer(FastConfig(name="t", runs_dir=str(tmp_path)), resume=True, overrides={"large_maze_bias": -1.0})

    # From committed weights alone: a bundled policy (weights + card) starts a new run.
    from mazewb.policy import save_policy

    bundled = save_policy(resumed.model, tmp_path / "bundled.pt", resumed.card({}))
    fresh = FastTrainer(FastConfig(name="t2", runs_dir=str(tmp_path), init=str(bundled), threads=1))
    assert _tensors_equal(resumed.model.state_dict(), fresh.model.state_dict())
    assert fresh.counters["samples"] == resumed.counters["samples"]
    # The card keeps the lineage: the same region continued is still from scratch; another is a warm start.
    assert trainer.card({})["initial_weights"] == FROM_SCRATCH == resumed.card({})["initial_weights"]
    assert fresh.card({})["initial_weights"].startswith(FROM_SCRATCH + "; continued from")
    other = FastTrainer(FastConfig(name="t3", runs_dir=str(tmp_path), init=str(bundled), threads=1, region=25))
    assert other.card({})["initial_weights"].startswith("warm-started from")
    fresh.save()
    assert FastTrainer(FastConfig(name="t2", runs_dir=str(tmp_path)), resume=True).initial_weights == (
        fresh.initial_weights
    )


def test_moving_average_is_evaluated_shipped_and_resumed(tmp_path) -> None:  # noqa: ANN001
    cfg = FastConfig(
        name="m", runs_dir=str(tmp_path), batch_squares=24, curriculum_start=5, curriculum_samples=10**9,
        threads=1, eval_every_s=1e9, ema_decay=0.75, eval_seeds="0:2",
    )
    trainer = FastTrainer(cfg)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train(max_steps=1)
    after = trainer.model.state_dict()
    average = trainer.ema.state_dict()
    assert not torch.equal(before["fc_policy.weight"], after["fc_policy.weight"])
    for key in before:  # one step: a quarter of the way from the start to the new weights
        assert torch.allclose(average[key], 0.75 * before[key] + 0.25 * after[key], atol=1e-6), key

    trainer.evaluate()  # best.pt holds the average, and its card says so
    best = load_policy(tmp_path / "m" / "best.pt")
    assert _tensors_equal({k: v.contiguous() for k, v in average.items()}, best.state_dict())
    assert "moving average of the trained ones (decay 0.75" in best.card["method"]

    resumed = FastTrainer(FastConfig(name="m", runs_dir=str(tmp_path)), resume=True)
    assert _tensors_equal(average, resumed.ema.state_dict()) and resumed.config.ema_decay == 0.75
    # Turned on when resuming a run that had none: the average starts at the current weights.
    plain = FastTrainer(FastConfig(name="p", runs_dir=str(tmp_path), batch_squares=24, curriculum_start=5,
                                   curriculum_samples=10**9, threads=1, eval_every_s=1e9))
    assert plain.ema is None and plain.shipped_model() is plain.model
    plain.train(max_steps=1)
    turned_on = FastTrainer(FastConfig(name="p", runs_dir=str(tmp_path)), resume=True, overrides={"ema_decay": 0.9})
    assert _tensors_equal(turned_on.model.state_dict(), turned_on.ema.state_dict())
    with pytest.raises(ValueError, match="ema_decay must be in"):
        FastTrainer(FastConfig(name="p", runs_dir=str(tmp_path)), resume=True, overrides={"ema_decay": 1.0})

    # A run whose budget is spent evaluates its last weights (its last average) before it stops.
    budget = resumed.counters["samples"] + 1
    ended = FastTrainer(FastConfig(name="m", runs_dir=str(tmp_path)), resume=True, overrides={"samples": budget})
    assert ended.train()["step"] == 2
    rows = (tmp_path / "m" / "eval.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[-1].split(",")[2] == str(ended.counters["samples"])


def test_ppo_runs_and_resumes(tmp_path) -> None:  # noqa: ANN001
    cfg = PPOConfig(
        name="p", runs_dir=str(tmp_path), scale=1, num_envs=4, num_steps=8, minibatches=2, epochs=1,
        total_steps=4 * 8 * 10, eval_every_s=1e9, threads=1,
    )
    trainer = PPOTrainer(cfg)
    counters = trainer.train(max_updates=2)
    assert counters["update"] == 2 and counters["global_step"] == 64
    resumed = PPOTrainer(PPOConfig(name="p", runs_dir=str(tmp_path)), resume=True)
    assert resumed.counters["global_step"] == 64 and resumed.config.num_envs == 4
    assert _tensors_equal(trainer.agent.state_dict(), resumed.agent.state_dict())
    saved_opt, opt = trainer.optimizer.state_dict(), resumed.optimizer.state_dict()
    for key, st in saved_opt["state"].items():
        assert torch.equal(st["exp_avg"], opt["state"][key]["exp_avg"])
    assert resumed.reward_norm.state() == trainer.reward_norm.state()
    assert resumed.train(max_updates=1)["update"] == 3


def test_exact_eval_agrees_with_sampled_episodes() -> None:
    """P(cheese within 500 steps) and the mean episode length from the exact chain match
    episodes sampled in the real game (procgen's dynamics and observations)."""
    torch.manual_seed(3)
    policy = ImpalaPolicy(scale=1).eval()
    with torch.no_grad():  # sharper, square-dependent move probabilities than a fresh network's
        policy.fc_policy.weight.mul_(3.0)
    maze = place_cheese(Maze.from_seed(3), 5, np.random.default_rng(0))  # a 5x5 maze, P(cheese) ~0.5
    mp = MazeProbs([maze])
    probs = mp.probs(policy)[0]
    exact = exact_outcomes(maze, probs)
    assert 0.05 < exact.p_cheese < 0.95, exact  # an informative probability

    # Sample: the policy sees the game's real observation (facing included) at every step;
    # outputs are cached per distinct observation (the network is deterministic).
    episodes = 300
    env = MazeVecEnv(episodes, seed=0)
    obs = env.set_states([maze_to_state_bytes(maze)] * episodes)
    rng = np.random.default_rng(0)
    cache: dict[bytes, np.ndarray] = {}
    running = np.ones(episodes, dtype=bool)
    success = np.zeros(episodes, dtype=bool)
    length = np.zeros(episodes)
    while running.any():
        keys = [hashlib.sha1(o.tobytes()).digest() for o in obs]
        new = [i for i, k in enumerate(keys) if k not in cache]
        if new:
            with torch.no_grad():
                logits, _ = policy(observations_to_tensor(obs[new]))
            p = torch.softmax(logits.double(), dim=-1).numpy()
            for j, i in enumerate(new):
                cache[keys[i]] = p[j]
        actions = np.array([rng.choice(15, p=cache[k] / cache[k].sum()) for k in keys])
        obs, rew, terminated, truncated, info = env.step(actions)
        ended = running & (terminated | truncated)
        success[ended] = terminated[ended]
        length[ended] = info["lengths"][ended]
        running &= ~ended
    env.close()
    se = np.sqrt(exact.p_cheese * (1 - exact.p_cheese) / episodes)
    assert abs(success.mean() - exact.p_cheese) < 4.5 * se + 0.02
    se_len = length.std() / np.sqrt(episodes)
    assert abs(length.mean() - exact.expected_steps) < 4.5 * se_len + 5


def test_eval_summary_and_cli(capsys) -> None:  # noqa: ANN001
    from mazewb.cli import main

    assert main(["eval", "--seeds", "0:3", "--cheese-region", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ind = out["in_distribution"]
    assert ind["mazes"] == 3 and 0.0 <= ind["p_cheese"] <= 1.0
    assert set(out["off_distribution"]) >= {"p_cheese", "p_top_right", "p_cheese_move_at_decision"}
    by_size = ind["by_size"]
    assert sum(v["mazes"] for v in by_size.values()) == 3
    weighted = sum(v["mazes"] * v["p_cheese"] for v in by_size.values()) / 3
    assert weighted == pytest.approx(ind["p_cheese"])


def test_summary_of_a_perfect_policy(fork: Maze) -> None:
    """The shortest-path policy reaches the cheese with certainty and never the top-right first."""
    mp = MazeProbs([fork])
    from mazewb.maze.graph import optimal_moves
    from mazewb.policy.moves import MOVES

    best = optimal_moves(fork, fork.cheese)
    probs = np.full((len(fork.open_cells()), 5), 0.2)
    for i, cell in enumerate(fork.open_cells()):
        if cell in best:
            probs[i] = np.eye(5)[MOVES.index(best[cell])]
    s = summarize(mp, [probs], decision=True)
    assert s.p_cheese == pytest.approx(1.0) and s.p_top_right == pytest.approx(0.0)
    assert s.optimal_argmax == 1.0 and s.p_cheese_move_at_decision == pytest.approx(1.0)
    assert s.by_size == {"5": {"mazes": 1, "p_cheese": pytest.approx(1.0)}}


def test_bundled_checkpoint_loads_with_a_card() -> None:
    policy = load_policy(device="cpu")
    assert policy.card and "trained" in policy.card and policy.scale >= 1
    if policy.card["trained"]:
        assert {"method", "samples", "cheese_region", "eval"} <= set(policy.card)


def test_bundle_writes_checkpoint_and_card(tmp_path) -> None:  # noqa: ANN001
    from mazewb.policy import make_placeholder_checkpoint
    from mazewb.train.bundle import bundle

    source = make_placeholder_checkpoint(tmp_path / "src.pt")
    card = bundle(source, tmp_path / "agent.pt", seeds="0:2", region=5)
    assert "| initial weights | random (trained from scratch) |" in (tmp_path / "agent.md").read_text()
    bundle(source, tmp_path / "again.pt", seeds="0:1", region=5, initial_weights="from scratch, in three runs")
    assert "| initial weights | from scratch, in three runs |" in (tmp_path / "again.md").read_text()
    from mazewb.train.bundle import model_card_markdown

    one = model_card_markdown({"cheese_region": 1, "eval": {"seeds": "0:2", "cheese_region": 1}, "config": {}})
    assert "| cheese region (training) | the top-right square of the maze |" in one
    assert "the cheese moved to the top-right square." in one and "1 x 1" not in one
    loaded = load_policy(tmp_path / "agent.pt", device="cpu")
    assert loaded.card["eval"]["in_distribution"]["mazes"] == 2
    assert card["eval_command"].startswith("mazewb eval --checkpoint")
    text = (tmp_path / "agent.md").read_text()
    assert "P(cheese)" in text and "mazewb eval" in text
    assert card["file"] == "agent.pt" and card["sha256"] == loaded.card["sha256"]  # the written file's
    assert f'"sha256": "{loaded.card["sha256"]}"' in text


def test_stop_signal_ends_with_a_checkpoint(tmp_path) -> None:  # noqa: ANN001
    """SIGTERM stops the run after the step in progress and saves it; a second trainer on the
    same run is refused while the first holds the lock."""
    import os
    import signal
    import threading

    from mazewb.train.common import RunLock

    cfg = FastConfig(name="s", runs_dir=str(tmp_path), batch_squares=16, curriculum_start=5,
                     curriculum_samples=10**9, threads=1, eval_every_s=1e9)
    trainer = FastTrainer(cfg)
    timer = threading.Timer(8.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    counters = trainer.train(max_seconds=120)
    timer.cancel()
    assert 0 < counters["step"] and counters["seconds"] < 60
    resumed = FastTrainer(FastConfig(name="s", runs_dir=str(tmp_path)), resume=True)
    assert resumed.counters["step"] == counters["step"]
    with RunLock(tmp_path / "s"):
        (tmp_path / "s" / "lock").write_text("1")  # pid 1 is alive: another trainer
        with pytest.raises(RuntimeError, match="being trained"):
            resumed.train(max_steps=1)


def test_region_curve_reads_regions_and_evaluates_each_agent(tmp_path, capsys) -> None:  # noqa: ANN001
    from mazewb import plots
    from mazewb.cli import main
    from mazewb.train.evaluate import Evaluator, region_curve, training_region

    paths = []
    for region in (3, 1):  # Langosco et al.'s file names carry the region
        torch.manual_seed(region)
        paths.append(tmp_path / f"model_rand_region_{region}.pth")
        torch.save({"model_state_dict": ImpalaPolicy(scale=1).state_dict()}, paths[-1])
    policies = [load_policy(p) for p in paths]
    assert [training_region(p) for p in policies] == [3, 1]
    assert training_region(load_policy()) == 5  # the bundled agent's card
    seeds = range(0, 8)
    table = region_curve(policies, seeds, progress=False)
    assert list(table["region"]) == [1, 3] and list(table["file"]) == [p.name for p in reversed(paths)]
    direct = Evaluator(seeds, 3)(policies[0])
    row = table[table["region"] == 3].iloc[0]
    assert row["off_mazes"] == direct["off_distribution"]["mazes"] > 0
    assert row["off_p_cheese"] == pytest.approx(direct["off_distribution"]["p_cheese"])
    assert row["in_p_cheese"] == pytest.approx(direct["in_distribution"]["p_cheese"])
    assert len(plots.region_curve_figure(table).data) == 4

    bare = tmp_path / "agent.pt"
    torch.save(ImpalaPolicy(scale=1).state_dict(), bare)
    with pytest.raises(ValueError, match="training region is unknown"):
        region_curve([load_policy(bare)], seeds, progress=False)
    assert main(["eval-regions", str(bare), "--regions", "2", "--seeds", "0:4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["agents"][0]["region"] == 2 and out["agents"][0]["file"] == "agent.pt"
    assert main(["eval-regions", str(bare), "--seeds", "0:4"]) == 2
    assert "training region is unknown" in capsys.readouterr().err


def test_large_maze_bias_keeps_large_mazes_more_often() -> None:
    from mazewb.train.data import keep_probability

    assert keep_probability(25, 2.0) == 1.0 and keep_probability(13, 0.0) == 1.0
    assert keep_probability(13, 2.0) == pytest.approx((13 / 25) ** 2)
    assert keep_probability(7, 2.0) < keep_probability(19, 2.0) < 1.0


def test_shared_background_step_matches_the_full_pass() -> None:
    """The trainer's per-maze incremental forward (``forward_shared_background``) gives the full
    pass's logits and gradients on a real batch of several mazes of different sizes."""
    from mazewb.policy.incremental import activation_at_stop, forward_shared_background

    rng = np.random.default_rng(5)
    mazes = [place_cheese(Maze.from_seed(s), 25, rng) for s in (17, 3, 0, 8)]  # 25x25 down to small
    renderer = Renderer(batch=64)
    try:
        batch = build_batch(mazes, renderer, rng)
    finally:
        renderer.close()
    torch.manual_seed(0)
    # float64: the two passes sum in different orders, and in float32 the first conv's weight
    # gradient (a sum over every pixel with much cancellation) differs by ~4e-4 relative.
    policy = ImpalaPolicy(scale=1).double().train()
    x = observations_to_tensor(batch.obs).double()
    groups = torch.as_tensor(batch.groups)
    assert groups.tolist() == [k for k in range(len(mazes)) for _ in range(batch.starts[k + 1] - batch.starts[k])]
    plan, _, bases = activation_at_stop(policy, x, groups=groups)
    assert plan.stop is not None and len(plan.windowed) > len(x) // 2 and bases is not None and len(bases) >= 2

    def loss_and_grads(logits: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        policy.zero_grad()
        loss = torch.nn.functional.nll_loss(move_log_probs(logits), torch.as_tensor(batch.target))
        loss.backward()
        return logits.detach(), [p.grad.clone() for p in policy.parameters() if p.grad is not None]

    full_logits, full_grads = loss_and_grads(policy(x)[0])
    shared_logits, shared_grads = loss_and_grads(forward_shared_background(policy, x, groups)[0])
    assert (full_logits - shared_logits).abs().max().item() < 1e-10
    assert len(full_grads) == len(shared_grads) == len(list(policy.parameters())) - 2  # all but the value head
    for full, shared in zip(full_grads, shared_grads, strict=True):
        assert (full - shared).norm() <= 1e-9 * full.norm() + 1e-15


_FRAGMENTED_HEAP = """
import numpy as np
from mazewb.train.common import release_free_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

blocks = [np.ones(12_000) for _ in range(3_000)]  # ~96 KB each: below glibc's mmap threshold, on the heap
keep = blocks[-1]  # the heap's top stays in use, so free() alone cannot give the space back
del blocks
before = rss_mb()
print(release_free_memory(), before, rss_mb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_release_free_memory_returns_the_heap_a_trainer_freed() -> None:
    # A fresh interpreter, so the heap holds only what this script freed.
    out = subprocess.run([sys.executable, "-c", _FRAGMENTED_HEAP], capture_output=True, text=True, check=True)
    released, before, after = out.stdout.split()
    assert released == "True"
    assert float(before) - float(after) > 150, out.stdout  # ~280 MB freed; free() alone kept it
