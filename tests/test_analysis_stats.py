"""The analysis engine across many mazes: cheese-channel ranking, behavioural statistics and
their cache, the figures, and the command line (random scale-1 networks, small levels)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from mazewb import Maze, plots
from mazewb.analysis import (
    DEFAULT_LAYER,
    FEATURES,
    behaviour_batch,
    behaviour_regressions,
    behaviour_table,
    decision_probabilities,
    patch_effects,
    qualifying_sample,
    rank_cheese_channels,
    retargeting_map,
    sample_rollouts,
    steering_sweep,
    vector_field,
    vector_field_diff,
    zero_ablation,
)
from mazewb.analysis.cache import LRU, cached_table, clear_memory_cache, policy_identity, store_table
from mazewb.analysis.channels import channel_scores
from mazewb.analysis.stats import maze_features, qualifies, variance_inflation
from mazewb.cli import main
from mazewb.policy import ImpalaPolicy, make_placeholder_checkpoint


@pytest.fixture(scope="module")
def policy() -> ImpalaPolicy:
    torch.manual_seed(0)
    return ImpalaPolicy(scale=1).eval()


# --- finding cheese channels --------------------------------------------------------------------------


def test_channel_scores_find_a_planted_cheese_channel() -> None:
    rng = np.random.default_rng(0)
    m = 30
    acts = rng.normal(scale=0.1, size=(m, 4, 16, 16))
    cells = rng.integers(2, 14, size=(m, 2))
    acts[:, 2] = 0.0
    acts[np.arange(m), 2, cells[:, 0], cells[:, 1]] = 1.0  # channel 2: a one-hot blob on the cheese
    corr, hit, contrast = channel_scores(acts, cells)
    assert corr[2] == pytest.approx(1.0) and hit[2] == 1.0 and contrast[2] == pytest.approx(1 - 1 / 256)
    assert np.all(np.abs(corr[[0, 1, 3]]) < 0.3)


def test_rank_cheese_channels_runs_on_real_levels(policy: ImpalaPolicy) -> None:
    ranking = rank_cheese_channels(policy, DEFAULT_LAYER, seeds=range(12))
    assert len(ranking) == 32 and sorted(ranking["channel"]) == list(range(32))
    assert ranking["corr"].is_monotonic_decreasing
    assert ranking["argmax_hit"].between(0, 1).all() and ranking["corr"].between(-1, 1).all()
    assert 0 < ranking["n_mazes"].iloc[0] <= 12


# --- behavioural statistics ---------------------------------------------------------------------------


def test_features_by_hand(fork: Maze) -> None:
    assert qualifies(fork, region=2) and not qualifies(fork, region=5)  # the cheese is in the 5x5
    f = maze_features(fork, region=2)
    want = {
        "euc_ds_cheese": 4.0,
        "path_ds_cheese": 4.0,
        "euc_ds_tr": math.sqrt(32),
        "path_ds_tr": 8.0,
        "euc_ds_region": math.sqrt(18),
        "path_ds_region": 6.0,
        "euc_cheese_tr": 4.0,
        "path_cheese_tr": 12.0,
        "euc_cheese_region": 3.0,
        "path_cheese_region": 10.0,
        "size": 5.0,
    }
    assert set(f) == set(FEATURES)
    for key, value in want.items():
        assert f[key] == pytest.approx(value), key


def test_variance_inflation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 3))
    assert np.all(np.abs(variance_inflation(x) - 1) < 0.05)
    x = np.column_stack([x, x[:, 0] + x[:, 1]])
    vif = variance_inflation(x)
    assert np.isinf(vif[3]) and np.isinf(vif[0])
    y = np.column_stack([x[:, 0], x[:, 0] * 0.9 + 0.1 * x[:, 2]])
    r2 = 1 - 1 / variance_inflation(y)[0]
    assert r2 == pytest.approx(np.corrcoef(y.T)[0, 1] ** 2, abs=1e-9)


def test_regressions_recover_a_planted_effect() -> None:
    rng = np.random.default_rng(1)
    n = 400
    data = {name: rng.normal(size=n) for name in FEATURES}
    data["euc_cheese_tr"] = rng.normal(size=n) * 3 + 10
    signal = -(data["euc_cheese_tr"] - 10) / 3
    data["chooses_cheese"] = signal + 0.3 * rng.normal(size=n) > 0.5  # a minority class: baseline > 0.5
    data["logit_p_cheese_ds"] = 2 * signal + 0.1 * rng.normal(size=n)
    data["p_cheese_ds"] = 1 / (1 + np.exp(-data["logit_p_cheese_ds"]))
    data["p_top_right_ds"] = 1 - data["p_cheese_ds"]
    data["qualifies"] = True
    stats = behaviour_regressions(pd.DataFrame(data))
    assert stats.n_test == 100 and stats.baseline > 0.55
    assert stats.accuracy > stats.baseline + 0.15
    assert stats.coefficients.abs().idxmax() == "euc_cheese_tr" and stats.coefficients["euc_cheese_tr"] < 0
    assert stats.linear_coefficients["euc_cheese_tr"] == pytest.approx(-2.0, abs=0.1)
    assert stats.linear_r2_test > 0.95
    assert json.dumps(stats.to_dict(), default=float)


def test_behaviour_batch_and_its_cache(policy: ImpalaPolicy, tmp_path: Path) -> None:
    seeds = [26, 3, 1]  # 26 qualifies; 3 has its cheese in the top-right 5x5; 1 has no decision square
    batch = behaviour_batch(policy, seeds)
    assert list(batch["seed"]) == seeds and list(batch["qualifies"]) == [True, False, False]
    row = batch.iloc[0]
    choice = decision_probabilities(policy, [Maze.from_seed(26)])[0]
    assert row["p_cheese_ds"] == pytest.approx(choice.p_cheese, abs=1e-6)
    assert (row["ds_row"], row["ds_col"]) == choice.square
    assert row["chooses_cheese"] == (choice.p_cheese > choice.p_top_right)
    assert 0 <= row["p_cheese"] <= 1 and row["p_cheese"] + row["p_timeout"] == pytest.approx(1)
    assert row["logit_p_cheese_ds"] == pytest.approx(math.log(choice.p_cheese / (1 - choice.p_cheese)), abs=1e-5)

    first = behaviour_table(policy, seeds, seeds_per_batch=2, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.csv"))) == 2
    clear_memory_cache()
    again = behaviour_table(policy, seeds, seeds_per_batch=2, cache_dir=tmp_path, progress=False)
    pd.testing.assert_frame_equal(first, again, check_dtype=False)
    assert first["p_cheese_ds"].iloc[0] == again["p_cheese_ds"].iloc[0]  # CSV round-trips floats exactly
    calls: list[tuple[int, int]] = []
    sample = qualifying_sample(
        policy,
        2,
        start_seed=20,
        seeds_per_batch=8,
        with_outcomes=False,
        progress=False,
        on_batch=lambda found, n: calls.append((found, n)),
    )
    assert list(sample["seed"]) == [26, 27] and calls == [(0, 2), (2, 2)]


def test_lru_keeps_the_most_recently_used_entries() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # now the most recent
    lru.put("c", 3)  # drops "b", the least recently used
    assert "b" not in lru and lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3
    lru.put("a", 4)
    assert len(lru) == 2 and lru.get("a") == 4
    lru.clear()
    assert len(lru) == 0
    with pytest.raises(ValueError, match="positive"):
        LRU(0)


def test_table_cache_in_memory_is_bounded(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from mazewb.analysis import cache

    assert cache._TABLES.max_entries == cache.MAX_TABLES
    monkeypatch.setattr(cache, "_TABLES", LRU(2))
    tables = {k: pd.DataFrame({"x": [float(i)]}) for i, k in enumerate("abc")}
    for key, table in tables.items():
        store_table(key, table, tmp_path if key == "a" else None)
    assert cached_table("a", None) is None  # pushed out of memory by "c"
    pd.testing.assert_frame_equal(cached_table("a", tmp_path), tables["a"])  # still on disk
    assert cached_table("b", None) is None and len(cache._TABLES) == 2  # "a" came back, "b" went
    pd.testing.assert_frame_equal(cached_table("c", None), tables["c"])
    mine = cached_table("c", None)
    mine.loc[0, "x"] = -1.0  # callers get copies
    assert cached_table("c", None).loc[0, "x"] == 2.0


def test_policy_identity_follows_the_weights(policy: ImpalaPolicy) -> None:
    torch.manual_seed(0)
    twin = ImpalaPolicy(scale=1).eval()
    assert policy_identity(twin) == policy_identity(policy)
    with torch.no_grad():
        twin.fc_policy.bias[0] += 1e-3
    assert policy_identity(twin) != policy_identity(policy)


# --- figures ------------------------------------------------------------------------------------------


def test_every_figure_builds(policy: ImpalaPolicy, fork: Maze) -> None:
    maze = Maze.from_seed(26)
    base = vector_field(policy, maze)
    patched = vector_field(policy, maze, [zero_ablation(DEFAULT_LAYER, [0, 1])])
    maps = np.random.default_rng(0).normal(size=(32, 16, 16))
    sweep = steering_sweep(policy, [maze], [0.0, -1.0], [0.0, 1.0])
    retarget = retargeting_map(policy, Maze.from_seed(3), [1], 3.0, targets=[(4, 4), (0, 4)])
    effects = patch_effects(policy, maze, {"zero": [zero_ablation(DEFAULT_LAYER, [0])]})
    ranking = pd.DataFrame({"channel": [3, 1], "corr": [0.5, 0.1], "argmax_hit": [0.9, 0.2]})
    rng = np.random.default_rng(2)
    data = {name: rng.normal(size=40) for name in FEATURES}
    data.update(
        qualifies=True,
        chooses_cheese=rng.random(40) > 0.5,
        logit_p_cheese_ds=rng.normal(size=40),
        p_cheese_ds=rng.random(40),
        p_top_right_ds=rng.random(40),
    )
    stats = behaviour_regressions(pd.DataFrame(data))
    runs = sample_rollouts(np.tile([0.25, 0.25, 0.25, 0.25, 0.0], (len(fork.open_cells()), 1)), fork, 2, max_steps=5)
    figures = [
        plots.maze_figure(maze),
        plots.vector_field_figure(base, "moves"),
        plots.vector_field_figure(base, "net"),
        plots.vector_field_diff_figure(vector_field_diff(patched, base)),
        plots.square_heatmap_figure(maze, {maze.mouse: 0.5}),
        plots.channel_map_figure(maps[0], maze),
        plots.channel_map_figure(maps[0], maze, aligned=True),
        plots.channel_grid_figure(maps),
        plots.steering_grid_figure(sweep),
        plots.retargeting_figure(retarget),
        plots.patch_effects_figure(effects),
        plots.channel_ranking_figure(ranking),
        plots.behaviour_figure(stats),
        plots.trajectory_figure(fork, runs, animate=True),
    ]
    for fig in figures:
        assert isinstance(fig, go.Figure) and len(fig.data) > 0
        fig.to_json()  # serialisable, as the web app needs
    with pytest.raises(ValueError, match="mode"):
        plots.vector_field_figure(base, "sideways")


# --- command line -------------------------------------------------------------------------------------


def test_cli_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = str(make_placeholder_checkpoint(tmp_path / "placeholder.pt"))
    assert main(["vfield", "--checkpoint", ckpt, "--seed", "26", "--cheese-vector", "-1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["cells"]) == len(out["probs"]) == 30 and out["interventions"] == ["add_vector"]
    assert out["decision_square"]["square"] == [0, 2] and out["mean_tv_from_unpatched"] >= 0

    assert main(["outcomes", "--checkpoint", ckpt, "--seed", "3", "--json"]) == 0
    exact = json.loads(capsys.readouterr().out)["exact"]
    assert exact["p_cheese"] + exact["p_timeout"] == pytest.approx(1.0)

    args = [
        "stats",
        "--checkpoint",
        ckpt,
        "--mazes",
        "8",
        "--start-seed",
        "20",
        "--no-outcomes",
        "--json",
        "--csv",
        str(tmp_path / "table.csv"),
    ]
    assert main(args) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_train"] + stats["n_test"] == 8 and 0 <= stats["accuracy"] <= 1
    assert len(pd.read_csv(tmp_path / "table.csv")) == 8

    bench_args = ["--checkpoint", ckpt, "--seed", "26", "--variants", "2", "--repeats", "1", "--json"]
    assert main(["bench-reuse", *bench_args]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["reuse_exactly_equal"] is True and bench["vfield_over_forward"] > 0


def test_arrow_segments_draw_each_arrow_as_shaft_and_two_heads() -> None:
    # Arrays with NaN breaks (no per-element plotly validation): per arrow 9 points, shaft then two
    # heads at 25 degrees, each followed by a break; arrows shorter than 1e-3 are left out.
    x0, y0 = np.array([1.0, 2.0, 3.0]), np.array([0.0, 5.0, 1.0])
    dx, dy = np.array([0.5, 0.0, 1e-4]), np.array([0.0, -0.4, 0.0])
    xs, ys = plots._arrow_segments(x0, y0, dx, dy)
    assert xs.shape == ys.shape == (18,)
    assert np.isnan(xs[2::3]).all() and np.isnan(ys[2::3]).all()
    assert np.allclose(xs[[0, 1, 3, 6]], [1.0, 1.5, 1.5, 1.5]) and np.allclose(ys[[0, 1]], [0.0, 0.0])
    back = np.radians(180 - 25)  # a head of an arrow pointing right goes back up at 155 degrees
    assert np.isclose(xs[4], 1.5 + 0.3 * 0.5 * np.cos(back)) and np.isclose(abs(ys[4]), 0.3 * 0.5 * np.sin(back))
    assert np.isclose(ys[4], -ys[7])  # the two heads mirror each other
    assert np.allclose(xs[9:11], [2.0, 2.0]) and np.allclose(ys[9:11], [5.0, 4.6])
