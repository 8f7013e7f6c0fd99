"""mazewb: a workbench for looking inside maze-solving reinforcement-learning agents.

    from mazewb import Maze, load_policy
    maze = Maze.from_seed(0)
    policy = load_policy()          # the bundled agent; load_policy(path) for any other
"""

from __future__ import annotations

import gymnasium as _gym

from mazewb.errors import MazeError, StateFormatError
from mazewb.maze import Maze

__version__ = "0.1.0"

if "mazewb/Maze-v0" not in _gym.registry:
    _gym.register(id="mazewb/Maze-v0", entry_point="mazewb.env:MazeEnv")


def load_policy(path=None, device=None):  # noqa: ANN001, ANN201 - re-exported below with types
    """Load a policy: the bundled agent with no path, else a Langosco et al. ``.pth`` file or a
    mazewb checkpoint. See :func:`mazewb.policy.checkpoint.load_policy`."""
    from mazewb.policy.checkpoint import load_policy as _load

    return _load(path, device=device)


__all__ = ["Maze", "MazeError", "StateFormatError", "load_policy", "__version__"]
