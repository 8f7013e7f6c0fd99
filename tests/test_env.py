"""The gymnasium environments on the real procgen game."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mazewb  # noqa: F401 - registers mazewb/Maze-v0
from mazewb import Maze
from mazewb.env import MazeEnv, MazeVecEnv
from mazewb.maze import graph
from mazewb.maze.bridge import get_game_state, maze_from_state, set_game_state


def test_env_checker_passes() -> None:
    env = gym.make("mazewb/Maze-v0")
    check_env(env.unwrapped, skip_render_check=True)
    assert env.observation_space.shape == (64, 64, 3)
    assert env.action_space.n == 15


def test_seeded_resets_are_reproducible() -> None:
    a, b = MazeEnv(), MazeEnv()
    np.testing.assert_array_equal(a.reset(seed=5)[0], b.reset(seed=5)[0])
    for _ in range(3):
        np.testing.assert_array_equal(a.reset()[0], b.reset()[0])


@pytest.mark.parametrize("region", [0, 1, 5])
def test_cheese_region(region: int) -> None:
    env = MazeEnv(cheese_region=region)
    env.reset(seed=region)
    for _ in range(40):
        maze = maze_from_state(env.get_state())
        n = max(1, min(region, maze.size))
        r, c = maze.cheese
        assert r >= maze.size - n and c >= maze.size - n, (maze, region)
        env.reset()  # an unfinished episode: reset moves on to a new level


def test_start_from_a_maze_and_reach_the_cheese(fork: Maze) -> None:
    env = gym.make("mazewb/Maze-v0", maze=fork, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert env.render().shape == (512, 512, 3)
    total, terminated = 0.0, False
    for _ in range(4):
        obs, reward, terminated, truncated, _ = env.step(5)
        total += reward
    assert terminated and total == 10.0
    # Blocked moves leave the mouse in place; the episode times out at 500 steps.
    env.reset()
    steps = 0
    truncated = terminated = False
    while not (truncated or terminated):
        _, reward, terminated, truncated, info = env.step(1)  # LEFT into the wall
        steps += 1
    assert truncated and not terminated and steps == 500 and info["steps"] == 500


def test_vector_env_places_cheese_in_region() -> None:
    venv = MazeVecEnv(16, cheese_region=3, seed=1)
    venv.reset()
    rng = np.random.default_rng(0)
    seen_firsts = 0
    for _ in range(300):
        obs, rew, term, trunc, info = venv.step(rng.integers(0, 15, 16))
        assert obs.shape == (16, 64, 64, 3)
        seen_firsts += int(info["first"].sum())
    for state in venv.get_states():
        maze = maze_from_state(state)
        n = min(3, maze.size)
        assert maze.cheese[0] >= maze.size - n and maze.cheese[1] >= maze.size - n
        assert graph.cheese_reachable(maze)
    assert seen_firsts > 0


def test_single_game_state_access_touches_only_that_game() -> None:
    venv = MazeVecEnv(4, seed=2)
    venv.reset()
    states = venv.get_states()
    assert [get_game_state(venv._env, i) for i in range(4)] == states
    set_game_state(venv._env, 1, states[3])
    after = venv.get_states()
    assert after == [states[0], states[3], states[2], states[3]]
    obs = venv._env.observe()[1]["rgb"]
    assert np.array_equal(obs[1], obs[3]) and not np.array_equal(obs[0], obs[3])
