"""The maze world: the ``Maze`` value, graph facts, procgen's state codec and rendering."""

from mazewb.maze.graph import decision_square, shortest_path, top_right_region
from mazewb.maze.grid import Maze
from mazewb.maze.render import Renderer, render_frame, render_observations

__all__ = [
    "Maze",
    "Renderer",
    "decision_square",
    "render_frame",
    "render_observations",
    "shortest_path",
    "top_right_region",
]
