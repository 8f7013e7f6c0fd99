"""Thread safety: procgen envs and ``Maze.from_seed`` from many threads at once."""

from __future__ import annotations

import sys
import threading

from mazewb import Maze
from mazewb.maze.bridge import make_procgen_env


def test_from_seed_in_eight_threads_keeps_streams_and_results() -> None:
    out, err = sys.stdout, sys.stderr
    expected = {seed: Maze.from_seed(seed) for seed in range(8)}
    barrier = threading.Barrier(8)
    results: dict[int, Maze] = {}
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                results[seed] = Maze.from_seed(seed)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sys.stdout is out and sys.stderr is err
    assert results == expected


def test_env_creation_restores_replaced_streams() -> None:
    # Whatever happens inside env creation, the caller's streams are the ones left afterwards.
    out, err = sys.stdout, sys.stderr
    env = make_procgen_env(num=1, env_name="maze", distribution_mode="hard", start_level=3, num_levels=1)
    env.close()
    assert sys.stdout is out and sys.stderr is err
