"""mazewb: a workbench for looking inside maze-solving reinforcement-learning agents.

from mazewb import Maze, load_policy
maze = Maze.from_seed(0)
policy = load_policy()          # the bundled agent; load_policy(path) for any other
"""

from __future__ import annotations

import gymnasium as _gym

from mazewb.errors import MazeError, MazewbError, StateFormatError
from mazewb.maze import Maze

__version__ = "0.1.0"

if "mazewb/Maze-v0" not in _gym.registry:
    _gym.register(id="mazewb/Maze-v0", entry_point="mazewb.env:MazeEnv")


def __getattr__(name: str) -> object:
    # torch is imported on first use of load_policy, not by `import mazewb`: the CLI's parser and
    # `--help` then start in about a second instead of several (torch's import is ~2 CPU s here).
    if name == "load_policy":
        from mazewb.policy import load_policy

        return load_policy
    raise AttributeError(f"module 'mazewb' has no attribute {name!r}")


__all__ = ["Maze", "MazeError", "MazewbError", "StateFormatError", "load_policy", "__version__"]
