"""Graph facts about a maze: neighbours, shortest paths, the decision square, distances.

All squares are ``(row, col)`` maze squares; moves are between 4-neighbouring open squares.
"""

from __future__ import annotations

import math
from collections import deque

from mazewb.maze.geometry import Square
from mazewb.maze.grid import Maze

# (drow, dcol) of each move, in the canonical move order LEFT, DOWN, UP, RIGHT (NOOP stays).
MOVE_DELTAS: dict[str, tuple[int, int]] = {
    "LEFT": (0, -1),
    "DOWN": (-1, 0),
    "UP": (1, 0),
    "RIGHT": (0, 1),
    "NOOP": (0, 0),
}
TOP_RIGHT_REGION = 5


def step(maze: Maze, square: Square, move: str) -> Square:
    """Where a move takes the mouse: blocked moves (wall or edge) leave it in place."""
    dr, dc = MOVE_DELTAS[move]
    nxt = (square[0] + dr, square[1] + dc)
    return nxt if maze.is_open(nxt) else square


def neighbours(maze: Maze, square: Square) -> list[Square]:
    """Open squares one move away."""
    out = []
    for move in ("LEFT", "DOWN", "UP", "RIGHT"):
        nxt = step(maze, square, move)
        if nxt != square:
            out.append(nxt)
    return out


def distances_from(maze: Maze, source: Square) -> dict[Square, int]:
    """Path distance (number of moves) from ``source`` to every square reachable from it."""
    dist = {source: 0}
    queue = deque([source])
    while queue:
        sq = queue.popleft()
        for nxt in neighbours(maze, sq):
            if nxt not in dist:
                dist[nxt] = dist[sq] + 1
                queue.append(nxt)
    return dist


def shortest_path(maze: Maze, start: Square, goal: Square) -> list[Square] | None:
    """A shortest path ``[start, ..., goal]`` through open squares, or None if unreachable."""
    if not (maze.is_open(start) and maze.is_open(goal)):
        return None
    parent: dict[Square, Square | None] = {start: None}
    queue = deque([start])
    while queue:
        sq = queue.popleft()
        if sq == goal:
            path = [sq]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])  # type: ignore[arg-type]
            return path[::-1]
        for nxt in neighbours(maze, sq):
            if nxt not in parent:
                parent[nxt] = sq
                queue.append(nxt)
    return None


def path_distance(maze: Maze, a: Square, b: Square) -> float:
    """Number of moves on a shortest path from a to b; ``inf`` when unreachable."""
    path = shortest_path(maze, a, b)
    return math.inf if path is None else float(len(path) - 1)


def euclidean(a: Square, b: Square) -> float:
    """Straight-line distance between square centres, in squares."""
    return math.hypot(a[0] - b[0], a[1] - b[1])


def cheese_reachable(maze: Maze) -> bool:
    """True when the maze has a cheese the mouse can reach."""
    return maze.cheese is not None and shortest_path(maze, maze.mouse, maze.cheese) is not None


def top_right_square(maze: Maze) -> Square:
    """The maze's own top-right square ``(size-1, size-1)``."""
    return maze.top_right


def top_right_region(maze: Maze, n: int = TOP_RIGHT_REGION) -> set[Square]:
    """Open squares of the maze's top-right ``n x n`` (rows and columns >= size - n)."""
    lo = maze.size - min(n, maze.size)
    return {(r, c) for r, c in maze.open_cells() if r >= lo and c >= lo}


def first_move_towards(maze: Maze, square: Square, goal: Square) -> str | None:
    """The move that is the first step of a shortest path from ``square`` to ``goal``
    (None if already there or unreachable)."""
    path = shortest_path(maze, square, goal)
    if path is None or len(path) < 2:
        return None
    delta = (path[1][0] - square[0], path[1][1] - square[1])
    return next(m for m, d in MOVE_DELTAS.items() if d == delta)


def optimal_moves(maze: Maze, goal: Square) -> dict[Square, str]:
    """For every square that can reach ``goal``, the first move of its shortest path there.

    One breadth-first search from the goal; ties (impossible in a tree maze) go to the first
    move in canonical order.
    """
    dist = distances_from(maze, goal)
    out: dict[Square, str] = {}
    for sq, d in dist.items():
        if d == 0:
            continue
        for move in ("LEFT", "DOWN", "UP", "RIGHT"):
            nxt = step(maze, sq, move)
            if nxt != sq and dist.get(nxt) == d - 1:
                out[sq] = move
                break
    return out


def decision_square(maze: Maze) -> Square | None:
    """The last square shared by the paths from the mouse to the cheese and to the top-right
    square; None when there is no cheese, a path is missing, or one path contains the other
    (the cheese on the way to the top-right square, or vice versa)."""
    if maze.cheese is None:
        return None
    to_cheese = shortest_path(maze, maze.mouse, maze.cheese)
    to_corner = shortest_path(maze, maze.mouse, maze.top_right)
    if to_cheese is None or to_corner is None:
        return None
    shared = 0
    while shared < min(len(to_cheese), len(to_corner)) and to_cheese[shared] == to_corner[shared]:
        shared += 1
    if shared == len(to_cheese) or shared == len(to_corner):
        return None
    return to_cheese[shared - 1]
