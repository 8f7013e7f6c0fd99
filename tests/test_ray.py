"""The batch analyses on a local Ray (2 CPUs, started once for the module): the same tables as in
this process, a worker killed mid-job, and the install hint without Ray."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest
import ray  # the [ray] extra (installed by the test command); the local path never needs it

import mazewb
from mazewb import Maze, load_policy
from mazewb.analysis import behaviour_batch, qualifying_sample, rank_cheese_channels, steering_sweep
from mazewb.analysis.cache import clear_memory_cache
from mazewb.cli import main
from mazewb.executor import RAY_INSTALL_HINT, LocalExecutor, RayExecutor, chunked
from mazewb.policy import ImpalaPolicy
from mazewb.train.evaluate import evaluation_rows


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayExecutor]:
    # Functions defined here travel by value: Ray's workers cannot import a test module.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    executor = RayExecutor(num_cpus=2)
    yield executor
    ray.shutdown()


@pytest.fixture(scope="module")
def policy() -> ImpalaPolicy:
    return load_policy(device="cpu")


def test_stats_csv_is_the_same_on_ray(cluster: RayExecutor, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    common = ["stats", "--mazes", "8", "--start-seed", "20", "--seeds-per-chunk", "6", "--no-outcomes"]
    clear_memory_cache()  # each run computes its own tables
    assert main([*common, "--csv", str(tmp_path / "local.csv")]) == 0
    clear_memory_cache()
    assert main([*common, "--csv", str(tmp_path / "ray.csv"), "--ray"]) == 0
    capsys.readouterr()
    local, on_ray = (tmp_path / "local.csv").read_text(), (tmp_path / "ray.csv").read_text()
    assert local == on_ray and len(local.splitlines()) == 9  # header + 8 mazes


def test_channels_sweep_and_evaluation_are_the_same_on_ray(cluster: RayExecutor, policy: ImpalaPolicy) -> None:
    local = LocalExecutor()
    ranked = [rank_cheese_channels(policy, seeds=range(10), seeds_per_chunk=4, executor=e) for e in (local, cluster)]
    pd.testing.assert_frame_equal(*ranked, rtol=1e-9, atol=1e-12)
    assert ranked[0]["n_mazes"].iloc[0] > 3

    mazes = [Maze.from_seed(s) for s in (26, 27, 30)]
    sweeps = [
        steering_sweep(policy, mazes, [0.0, -1.0], [0.0, 1.0], executor=e, mazes_per_chunk=2) for e in (local, cluster)
    ]
    pd.testing.assert_frame_equal(*sweeps, rtol=1e-9, atol=1e-12)
    assert list(sweeps[1]["maze_index"].unique()) == [0, 1, 2]  # global indices across chunks
    one_batch = steering_sweep(policy, mazes, [0.0, -1.0], [0.0, 1.0])
    pd.testing.assert_frame_equal(sweeps[0], one_batch, rtol=1e-6, atol=1e-6)

    rows = [
        evaluation_rows(policy, range(6), 5, common_region=5, seeds_per_chunk=3, executor=e) for e in (local, cluster)
    ]
    # fp32 forward passes of 512 observations on 1 thread (a Ray worker) and on 2 (here) round
    # differently in the last bits; the exact chain carries that into the 7th digit.
    pd.testing.assert_frame_equal(*rows, rtol=1e-5, atol=1e-7)
    assert set(rows[1]["distribution"]) == {"in_distribution", "off_distribution", "common"}
    assert rows[1]["seed"][rows[1]["distribution"] == "in_distribution"].tolist() == list(range(6))


def _mazewb_file(policy: ImpalaPolicy, seeds: Sequence[int]) -> pd.DataFrame:
    return pd.DataFrame({"seed": list(seeds), "file": mazewb.__file__, "scale": policy.scale})


def test_workers_run_this_copy_of_mazewb_with_the_shipped_policy(cluster: RayExecutor, policy: ImpalaPolicy) -> None:
    (table,) = cluster.map(_mazewb_file, policy, [[1, 2]], progress=False)
    assert table["file"].iloc[0] == mazewb.__file__ and table["scale"].iloc[0] == policy.scale


def _dies_once(policy: ImpalaPolicy, seeds: Sequence[int], *, marker: str, **kwargs: object) -> pd.DataFrame:
    """``behaviour_batch``, except that the chunk starting at seed 24 kills its own worker
    process the first time it runs (the marker file remembers the first attempt)."""
    if seeds[0] == 24 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)  # the worker dies mid-job, no exception, no cleanup
    return behaviour_batch(policy, seeds, **kwargs)  # type: ignore[arg-type]


def test_a_killed_worker_loses_and_duplicates_no_maze(cluster: RayExecutor, policy: ImpalaPolicy, tmp_path) -> None:  # noqa: ANN001
    chunks = chunked(list(range(20, 32)), 4)  # 20-23, 24-27 (dies once), 28-31
    marker = tmp_path / "died"
    got = cluster.map(_dies_once, policy, chunks, progress=False, marker=str(marker), with_outcomes=False)
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker did die
    expected = LocalExecutor().map(behaviour_batch, policy, chunks, progress=False, with_outcomes=False)
    table, local = pd.concat(got, ignore_index=True), pd.concat(expected, ignore_index=True)
    assert table["seed"].tolist() == list(range(20, 32))  # every maze once, in order
    pd.testing.assert_frame_equal(table, local, rtol=1e-9, atol=1e-12)


def test_qualifying_sample_on_ray_is_the_local_sample(cluster: RayExecutor, policy: ImpalaPolicy) -> None:
    clear_memory_cache()
    local = qualifying_sample(policy, 4, 40, seeds_per_batch=5, with_outcomes=False, progress=False)
    clear_memory_cache()
    calls: list[tuple[int, int]] = []
    remote = qualifying_sample(
        policy, 4, 40, seeds_per_batch=5, with_outcomes=False, progress=False, executor=cluster,
        on_batch=lambda found, n: calls.append((found, n)),
    )
    pd.testing.assert_frame_equal(local, remote, rtol=1e-9, atol=1e-12)
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if not installed
    assert main(["stats", "--mazes", "10", "--ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mazewb stats: error: {RAY_INSTALL_HINT}" and "\n" not in err
