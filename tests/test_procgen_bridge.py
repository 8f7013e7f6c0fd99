"""The procgen bridge against the real game: state codec, Maze <-> state, pixel-exact rendering."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from mazewb import Maze, StateFormatError
from mazewb.maze import render_frame, render_observations
from mazewb.maze.bridge import level_state, maze_from_state, maze_to_state_bytes, procgen_env_class
from mazewb.maze.procgen_state import parse_state, write_state

SEEDS = range(0, 60, 3)


def _procgen_env(seed: int, render: bool = False):  # noqa: ANN202
    return procgen_env_class()(
        num=1,
        env_name="maze",
        distribution_mode="hard",
        start_level=seed,
        num_levels=1,
        render_mode="rgb_array" if render else None,
    )


def test_codec_round_trips_real_states_exactly() -> None:
    env = procgen_env_class()(num=8, env_name="maze", distribution_mode="hard", rand_seed=7)
    states = []
    for step in range(40):  # level starts and mid-episode states, several facings
        env.act(np.random.default_rng(step).integers(0, 15, 8).astype(np.int32))
        states.extend(env.callmethod("get_state"))
    for seed in SEEDS:
        states.append(level_state(seed))
    for data in states:
        st = parse_state(data)
        assert st.scalars["game_name"] == b"maze" and st.world_dim == 25
        assert write_state(st) == data


def test_codec_refuses_other_layouts() -> None:
    data = level_state(0)
    with pytest.raises(StateFormatError, match="truncated"):
        parse_state(data[:1000])
    with pytest.raises(StateFormatError, match="end marker"):
        parse_state(data[:-4] + struct.pack("<i", 7))
    with pytest.raises(StateFormatError, match="trailing"):
        parse_state(data + b"\0\0\0\0")
    with pytest.raises(StateFormatError, match="version"):
        parse_state(struct.pack("<i", 3) + data[4:])
    other = procgen_env_class()(num=1, env_name="heist", distribution_mode="hard").callmethod("get_state")[0]
    with pytest.raises(StateFormatError, match="heist"):
        parse_state(other)
    # A fork with five extra option ints after use_sequential_levels.
    st = parse_state(data)
    cut = 4 + 4 + 4 + 4 * 9
    forked = data[:cut] + b"\0" * 20 + data[cut:]
    with pytest.raises(StateFormatError):
        parse_state(forked)
    assert st.maze_dim >= 3


def test_maze_state_round_trip() -> None:
    for seed in SEEDS:
        data = level_state(seed)
        maze = maze_from_state(data)
        assert maze_from_state(maze_to_state_bytes(maze)) == maze
        # Writing a generated level back reproduces its grid exactly.
        assert parse_state(maze_to_state_bytes(maze)).grid == parse_state(data).grid


def test_observations_equal_the_game_pixel_for_pixel() -> None:
    for seed in SEEDS:
        env = _procgen_env(seed, render=True)
        _, obs, _ = env.observe()
        frame = env.get_info()[0]["rgb"]
        maze = Maze.from_seed(seed)
        np.testing.assert_array_equal(render_observations(maze, [maze.mouse])[0], obs["rgb"][0])
        np.testing.assert_array_equal(render_frame(maze), frame)


def test_edits_render_as_the_game_shows_them() -> None:
    env_cls = procgen_env_class()
    for seed in (0, 4, 8, 12):
        maze = Maze.from_seed(seed)
        env = env_cls(num=1, env_name="maze", distribution_mode="hard", start_level=seed, num_levels=1)
        target = maze.open_cells()[len(maze.open_cells()) // 2]
        mouse_sq = maze.open_cells()[-1] if maze.open_cells()[-1] != target else maze.open_cells()[1]
        edited = maze.with_cheese(target).with_mouse(mouse_sq)
        # The same edit made by hand on the game's own state.
        st = parse_state(env.callmethod("get_state")[0])
        m = (25 - maze.size) // 2
        st.grid = [100 if c == 2 else c for c in st.grid]
        st.set_cell(target[1] + m, target[0] + m, 2)
        st.entities[0]["x"], st.entities[0]["y"] = mouse_sq[1] + m + 0.5, mouse_sq[0] + m + 0.5
        env.callmethod("set_state", [write_state(st)])
        _, obs, _ = env.observe()
        np.testing.assert_array_equal(render_observations(edited, [edited.mouse])[0], obs["rgb"][0])


def test_render_every_square_moves_the_mouse_only() -> None:
    maze = Maze.from_seed(17)  # 25x25
    cells = maze.open_cells()
    obs = render_observations(maze, cells)
    assert obs.shape == (len(cells), 64, 64, 3) and obs.dtype == np.uint8
    # Each image differs from the first only near the two mouse positions.
    diff = (obs[1:] != obs[:1]).any(axis=-1)
    assert diff.any(axis=(1, 2)).all()
    assert diff.sum(axis=(1, 2)).max() < 60
    # Rendering the same squares in another order gives the same images.
    again = render_observations(maze, cells[::-1])[::-1]
    np.testing.assert_array_equal(obs, again)
    # Facing right changes the sprite slightly.
    right = render_observations(maze, cells[:5], facing_right=True)
    assert (right != obs[:5]).any()


def test_hand_made_maze_renders_and_plays(fork: Maze) -> None:
    obs = render_observations(fork)
    assert obs.shape == (len(fork.open_cells()), 64, 64, 3)
    with pytest.raises(ValueError, match="wall"):
        render_observations(fork, [(1, 1)])
    # Load the hand-made maze into the real game and walk to the cheese: UP x 4 wins.
    env = procgen_env_class()(num=1, env_name="maze", distribution_mode="hard")
    env.callmethod("set_state", [maze_to_state_bytes(fork)])
    rewards = []
    for _ in range(4):
        env.act(np.array([5], dtype=np.int32))
        rewards.append(float(env.observe()[0][0]))
    assert rewards == [0, 0, 0, 10]
