"""Error types: every bad input raises a ValueError subclass whose message names the problem."""


class MazeError(ValueError):
    """An illegal maze, edit or maze JSON (cheese on a wall, square outside the maze, ...)."""


class StateFormatError(ValueError):
    """Bytes that are not a procgen 0.10.7 maze state."""
