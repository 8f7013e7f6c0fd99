"""Observations (64x64, what the agent sees) and display frames (512x512) drawn by real procgen.

Rendering puts a state into a procgen env with ``set_state`` and reads the observation back, so
every pixel is the game's own. A pool of envs is created once and reused; one maze state is
serialized once and only the mouse's position bytes are patched per square.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence

import numpy as np

from mazewb.errors import MazeError
from mazewb.maze.bridge import make_procgen_env, maze_to_state
from mazewb.maze.geometry import Square, square_to_world
from mazewb.maze.grid import Maze
from mazewb.maze.procgen_state import entity_field_offset, write_state


class Renderer:
    """A reusable pool of ``batch`` procgen envs; thread-safe. Observations and display frames
    use separate envs under separate locks, so the app's maze picture is not held up behind a
    vector field's rendering."""

    def __init__(self, batch: int = 64) -> None:
        self.batch = batch
        self._obs_lock = threading.Lock()
        self._frame_lock = threading.Lock()
        self._obs_env = None
        self._frame_env = None

    def _env(self, frame: bool):  # noqa: ANN202
        if frame:
            if self._frame_env is None:
                self._frame_env = make_procgen_env(
                    num=1,
                    env_name="maze",
                    distribution_mode="hard",
                    start_level=0,
                    num_levels=1,
                    render_mode="rgb_array",
                )
            return self._frame_env
        if self._obs_env is None:
            self._obs_env = make_procgen_env(
                num=self.batch, env_name="maze", distribution_mode="hard", start_level=0, num_levels=1
            )
        return self._obs_env

    def states(self, maze: Maze, cells: Sequence[Square], facing_right: bool | Sequence[bool] = False) -> list[bytes]:
        """Serialized states of ``maze`` with the mouse on each of ``cells``."""
        flags = [facing_right] * len(cells) if isinstance(facing_right, (bool, np.bool_)) else list(facing_right)
        if len(flags) != len(cells):
            raise MazeError(f"facing_right has {len(flags)} entries for {len(cells)} squares")
        st = maze_to_state(maze)
        base = write_state(st)
        off_x = entity_field_offset(st, 0, "x")
        off_y = entity_field_offset(st, 0, "y")
        off_r = entity_field_offset(st, 0, "is_reflected")
        out = []
        for square, flag in zip(cells, flags, strict=True):
            square = (int(square[0]), int(square[1]))
            if not maze.is_open(square):
                raise MazeError(f"cannot put the mouse at {square}: it is a wall or outside the maze")
            wrow, wcol = square_to_world(square, maze.size)
            buf = bytearray(base)
            struct.pack_into("<f", buf, off_x, wcol + 0.5)
            struct.pack_into("<f", buf, off_y, wrow + 0.5)
            struct.pack_into("<i", buf, off_r, int(bool(flag)))
            out.append(bytes(buf))
        return out

    def observations(
        self, maze: Maze, cells: Sequence[Square], facing_right: bool | Sequence[bool] = False
    ) -> np.ndarray:
        """uint8 (N, 64, 64, 3): the game's observation with the mouse on each square."""
        return self.observations_from_states(self.states(maze, cells, facing_right))

    def observations_from_states(self, states: Sequence[bytes]) -> np.ndarray:
        """uint8 (N, 64, 64, 3) observations of arbitrary serialized states."""
        out = np.empty((len(states), 64, 64, 3), dtype=np.uint8)
        with self._obs_lock:
            env = self._env(frame=False)
            for start in range(0, len(states), self.batch):
                chunk = list(states[start : start + self.batch])
                padded = chunk + [chunk[-1]] * (self.batch - len(chunk))
                env.callmethod("set_state", padded)
                _, obs, _ = env.observe()
                out[start : start + len(chunk)] = obs["rgb"][: len(chunk)]
        return out

    def frame(self, maze: Maze, facing_right: bool = False) -> np.ndarray:
        """uint8 (512, 512, 3): the game's human-view frame of the maze with its mouse."""
        state = self.states(maze, [maze.mouse], facing_right)[0]
        with self._frame_lock:
            env = self._env(frame=True)
            env.callmethod("set_state", [state])
            # set_state redraws at once; the human frame comes back through get_info.
            return env.get_info()[0]["rgb"].copy()

    def close(self) -> None:
        with self._obs_lock, self._frame_lock:
            for env in (self._obs_env, self._frame_env):
                if env is not None:
                    env.close()
            self._obs_env = self._frame_env = None


_default: Renderer | None = None
_default_lock = threading.Lock()


def default_renderer() -> Renderer:
    global _default
    with _default_lock:
        if _default is None:
            _default = Renderer()
        return _default


def render_observations(
    maze: Maze, cells: Sequence[Square] | None = None, facing_right: bool | Sequence[bool] = False
) -> np.ndarray:
    """uint8 (N, 64, 64, 3): the game's observation with the mouse on each of ``cells``
    (default: every open square). Batched over a reused pool of procgen envs."""
    return default_renderer().observations(maze, maze.open_cells() if cells is None else cells, facing_right)


def render_frame(maze: Maze, facing_right: bool = False) -> np.ndarray:
    """uint8 (512, 512, 3): the game's own display frame of ``maze``."""
    return default_renderer().frame(maze, facing_right)
