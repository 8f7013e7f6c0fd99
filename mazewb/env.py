"""Gymnasium environments on procgen's maze: one env (``mazewb/Maze-v0``) and a vectorised form.

Both can move the cheese into the maze's top-right ``N x N`` region after every level start
(Langosco et al.'s ``rand_region``), and the single env can start from any given ``Maze``.
"""

from __future__ import annotations

import struct
from typing import Any

import gymnasium as gym
import numpy as np

from mazewb.errors import ConfigError, MazeError
from mazewb.maze.bridge import (
    DISTRIBUTION_MODES,
    get_game_state,
    make_procgen_env,
    maze_to_state_bytes,
    set_game_state,
)
from mazewb.maze.geometry import WORLD_DIM, margin
from mazewb.maze.grid import Maze
from mazewb.maze.procgen_state import GRID_CHEESE, GRID_OPEN, grid_cell_offset, parse_state, write_state

NUM_ACTIONS = 15
MAX_EPISODE_STEPS = 500  # procgen's own timeout for maze
CHEESE_REWARD = 10.0


def _maze_dim(state: bytes) -> int:
    return struct.unpack_from("<i", state, len(state) - 12)[0]


def place_cheese_in_region(state: bytes, region: int, rng: np.random.Generator) -> bytes:
    """Move the cheese of a level-start state to a uniformly random open square of the maze's
    top-right ``region x region`` (0: the top-right square itself), never the mouse's square.

    Works on the raw bytes (only grid cells change), so it costs microseconds per level.
    """
    dim = _maze_dim(state)
    m = margin(dim)
    n = max(1, min(region, dim)) if region > 0 else 1
    n_cells = WORLD_DIM * WORLD_DIM
    cells = np.frombuffer(
        state, dtype="<i4", count=n_cells, offset=grid_cell_offset(len(state), WORLD_DIM, WORLD_DIM, 0, 0)
    )
    grid = cells.reshape(WORLD_DIM, WORLD_DIM)  # [y, x], y = 0 at the bottom
    lo = m + dim - n
    hi = m + dim
    candidates = [
        (y, x)
        for y in range(lo, hi)
        for x in range(lo, hi)
        if grid[y, x] in (GRID_OPEN, GRID_CHEESE) and (y, x) != (m, m)
    ]
    if not candidates:  # a 1x1 maze has nowhere else to put the cheese
        return state
    y, x = candidates[int(rng.integers(len(candidates)))]
    buf = bytearray(state)
    for cy, cx in zip(*np.nonzero(grid == GRID_CHEESE), strict=True):
        struct.pack_into("<i", buf, grid_cell_offset(len(buf), WORLD_DIM, WORLD_DIM, int(cx), int(cy)), GRID_OPEN)
    struct.pack_into("<i", buf, grid_cell_offset(len(buf), WORLD_DIM, WORLD_DIM, x, y), GRID_CHEESE)
    return bytes(buf)


def _check_options(distribution_mode: str, cheese_region: int | None) -> None:
    if distribution_mode not in DISTRIBUTION_MODES:
        raise ConfigError(f"distribution_mode must be one of {DISTRIBUTION_MODES}, got {distribution_mode!r}")
    if cheese_region is not None and (not isinstance(cheese_region, int) or cheese_region < 0):
        raise ConfigError(f"cheese_region must be a non-negative integer or None, got {cheese_region!r}")


class MazeEnv(gym.Env):
    """procgen ``maze`` as a gymnasium env: uint8 (64, 64, 3) observations, ``Discrete(15)``.

    Rewards are procgen's (10 for the cheese, which terminates the episode); an episode is
    truncated after 500 steps (procgen's own limit). ``cheese_region=N`` re-places the cheese in
    the maze's top-right N x N at every level start. ``maze=`` (or ``reset(options={"maze": m})``)
    starts every episode from that maze instead of a generated level.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        distribution_mode: str = "hard",
        start_level: int = 0,
        num_levels: int = 0,
        cheese_region: int | None = None,
        maze: Maze | None = None,
        render_mode: str | None = None,
    ) -> None:
        _check_options(distribution_mode, cheese_region)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.distribution_mode = distribution_mode
        self.start_level = start_level
        self.num_levels = num_levels
        self.cheese_region = cheese_region
        self.maze = maze
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (64, 64, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self._env = None
        self._steps = 0
        self._obs: np.ndarray | None = None
        self._episode_over = True

    def _make(self, rand_seed: int) -> None:
        if self._env is not None:
            self._env.close()
        self._env = make_procgen_env(
            num=1,
            env_name="maze",
            distribution_mode=self.distribution_mode,
            start_level=self.start_level,
            num_levels=self.num_levels,
            rand_seed=rand_seed,
            render_mode="rgb_array" if self.render_mode else None,
        )

    def _start_episode(self, maze: Maze | None) -> None:
        assert self._env is not None
        if maze is not None:
            self._env.callmethod("set_state", [maze_to_state_bytes(maze)])
        elif self.cheese_region is not None:
            state = self._env.callmethod("get_state")[0]
            self._env.callmethod("set_state", [place_cheese_in_region(state, self.cheese_region, self.np_random)])
        self._steps = 0
        self._episode_over = False
        _, obs, _ = self._env.observe()
        self._obs = obs["rgb"][0].copy()

    def _skip_level(self) -> None:
        """End the current level early: procgen only advances to a new level when an episode
        ends, so put the mouse on the cheese (or anywhere, if there is none) and step once."""
        assert self._env is not None
        st = parse_state(self._env.callmethod("get_state")[0])
        goal = [i for i, code in enumerate(st.grid) if code == GRID_CHEESE]
        if goal:
            st.entities[0]["x"] = goal[0] % st.grid_w + 0.5
            st.entities[0]["y"] = goal[0] // st.grid_w + 0.5
        else:
            st.scalars["cur_time"] = MAX_EPISODE_STEPS  # let procgen's timeout end the episode
        self._env.callmethod("set_state", [write_state(st)])
        self._env.act(np.array([4], dtype=np.int32))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # noqa: ANN201
        super().reset(seed=seed)
        if self._env is None or seed is not None:
            # procgen's level sequence follows its rand_seed, so a seeded reset recreates it.
            self._make(int(self.np_random.integers(2**31 - 1)))
        elif not self._episode_over:
            self._skip_level()
        maze = (options or {}).get("maze", self.maze)
        if maze is not None and not isinstance(maze, Maze):
            raise MazeError(f"options['maze'] must be a Maze, got {type(maze).__name__}")
        self._start_episode(maze)
        return self._obs, {}

    def step(self, action):  # noqa: ANN001, ANN201
        if self._env is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in [0, {NUM_ACTIONS}), got {action!r}")
        self._env.act(np.array([int(action)], dtype=np.int32))
        rew, obs, first = self._env.observe()
        self._steps += 1
        reward = float(rew[0])
        terminated = reward > 0
        # procgen resets itself when an episode ends; `first` then marks the new level.
        truncated = bool(first[0]) and not terminated or self._steps >= MAX_EPISODE_STEPS
        self._obs = obs["rgb"][0].copy()
        self._episode_over = terminated or truncated
        return self._obs, reward, bool(terminated), bool(truncated), {"steps": self._steps}

    def get_state(self) -> bytes:
        """The procgen state bytes of the current game (for analysis and replays)."""
        if self._env is None:
            raise RuntimeError("call reset() first")
        return self._env.callmethod("get_state")[0]

    def render(self):  # noqa: ANN201
        if self.render_mode == "rgb_array" and self._env is not None:
            return self._env.get_info()[0]["rgb"].copy()
        return None

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


class MazeVecEnv:
    """``num`` procgen maze games stepped together (for training), procgen-style autoreset:
    when an episode ends, the returned observation is already the next level's first frame.

    ``step(actions)`` returns ``obs (N,64,64,3) uint8, rewards (N,), terminated (N,),
    truncated (N,), info`` where ``info["first"]`` marks envs whose new level just began.
    """

    def __init__(
        self,
        num: int,
        distribution_mode: str = "hard",
        start_level: int = 0,
        num_levels: int = 0,
        cheese_region: int | None = None,
        seed: int = 0,
    ) -> None:
        _check_options(distribution_mode, cheese_region)
        self.num = num
        self.cheese_region = cheese_region
        self.single_observation_space = gym.spaces.Box(0, 255, (64, 64, 3), dtype=np.uint8)
        self.single_action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self.rng = np.random.default_rng(seed)
        self._env = make_procgen_env(
            num=num,
            env_name="maze",
            distribution_mode=distribution_mode,
            start_level=start_level,
            num_levels=num_levels,
            rand_seed=seed,
        )
        self._steps = np.zeros(num, dtype=np.int64)

    def _place_cheese(self, which: np.ndarray) -> np.ndarray | None:
        """Re-place the cheese for envs in ``which``; returns fresh observations or None."""
        if self.cheese_region is None or not which.any():
            return None
        for i in np.nonzero(which)[0]:
            state = get_game_state(self._env, int(i))
            set_game_state(self._env, int(i), place_cheese_in_region(state, self.cheese_region, self.rng))
        return self._env.observe()[1]["rgb"]

    def reset(self) -> np.ndarray:
        placed = self._place_cheese(np.ones(self.num, dtype=bool))
        self._steps[:] = 0
        return placed if placed is not None else self._env.observe()[1]["rgb"]

    def step(self, actions: np.ndarray):  # noqa: ANN201
        self._env.act(np.asarray(actions, dtype=np.int32))
        rew, obs, first = self._env.observe()
        obs = obs["rgb"]
        self._steps += 1
        terminated = rew > 0
        truncated = (first & ~terminated) | (self._steps >= MAX_EPISODE_STEPS)
        lengths = self._steps.copy()
        self._steps[first] = 0
        placed = self._place_cheese(first)
        if placed is not None:
            obs = placed
        return obs, rew.astype(np.float32), terminated, truncated, {"first": first, "lengths": lengths}

    def get_states(self) -> list[bytes]:
        return self._env.callmethod("get_state")

    def set_states(self, states: list[bytes]) -> np.ndarray:
        """Put every game into the given states; returns their observations."""
        self._env.callmethod("set_state", list(states))
        self._steps[:] = 0
        return self._env.observe()[1]["rgb"]

    def close(self) -> None:
        self._env.close()
