"""``Maze``: an immutable, hashable maze value (walls, cheese, mouse) with validated edits and JSON.

Squares are ``(row, col)`` in the maze's own grid, ``(0, 0)`` the bottom-left square, rows
growing upwards (see :mod:`mazewb.maze.geometry` for every other coordinate system).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mazewb.bounded_input import loads_bounded, read_file_bounded
from mazewb.errors import MazeError
from mazewb.maze.geometry import WORLD_DIM, Square

JSON_FORMAT = "mazewb-maze-v1"
MAX_SIZE = WORLD_DIM
MAX_JSON_BYTES = 64 * 1024
"""Largest maze JSON read (a 25x25 maze written by ``to_json`` is about 1.2 KB)."""
MAX_JSON_DEPTH = 8
"""Deepest nesting read (the format itself nests 2 deep)."""
NUM_BACKGROUNDS = 64  # procgen's background_index is small; anything sane is accepted

_WALL, _OPEN, _CHEESE, _MOUSE = "#", ".", "C", "M"


def _as_square(value: Any, what: str) -> Square:
    """Validate a JSON / user value as a ``(row, col)`` pair of ints."""
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise MazeError(f"{what} must be a (row, col) pair of integers, got {_short(value)}")


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a message stays short whatever the input."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Maze:
    """A maze of ``size x size`` squares inside procgen's 25x25 world.

    ``walls[row][col]`` is True for a wall (row 0 is the bottom row). ``cheese`` is a square or
    None; ``mouse`` is the mouse's square. ``background`` is procgen's background image index
    (visual only, kept so that a level renders exactly as the game draws it). ``seed`` records
    the procgen level a maze came from; it is provenance and takes no part in equality.
    """

    size: int
    walls: tuple[tuple[bool, ...], ...]
    cheese: Square | None
    mouse: Square = (0, 0)
    background: int = 0
    seed: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 1 <= self.size <= MAX_SIZE:
            raise MazeError(f"maze size must be an integer from 1 to {MAX_SIZE}, got {self.size!r}")
        if len(self.walls) != self.size or any(len(row) != self.size for row in self.walls):
            raise MazeError(
                f"walls must be {self.size} rows of {self.size} squares, got {[len(row) for row in self.walls]}"
            )
        # Normalise to plain bools so equal mazes hash equal whatever the caller passed.
        object.__setattr__(self, "walls", tuple(tuple(bool(v) for v in row) for row in self.walls))
        object.__setattr__(self, "mouse", _as_square(tuple(self.mouse), "mouse"))
        self._check_open(self.mouse, "mouse")
        if self.cheese is not None:
            object.__setattr__(self, "cheese", _as_square(tuple(self.cheese), "cheese"))
            self._check_open(self.cheese, "cheese")
            if self.cheese == self.mouse:
                raise MazeError(f"cheese and mouse cannot share square {self.cheese}")
        if not isinstance(self.background, int) or not 0 <= self.background < NUM_BACKGROUNDS:
            raise MazeError(f"background must be an integer from 0 to {NUM_BACKGROUNDS - 1}")

    # --- construction ---------------------------------------------------------------
    @classmethod
    def from_seed(cls, seed: int, distribution_mode: str = "hard") -> Maze:
        """The procgen ``maze`` level ``seed`` (hard distribution by default), as generated."""
        from mazewb.maze.bridge import maze_from_seed

        return maze_from_seed(seed, distribution_mode)

    @classmethod
    def from_strings(cls, rows: list[str] | str, background: int = 0) -> Maze:
        """Build a maze from text, top row first: ``#`` wall, ``.`` open, ``C`` cheese,
        ``M`` mouse (default mouse: the bottom-left square). Handy for tests and teaching."""
        if isinstance(rows, str):
            rows = [line.strip() for line in rows.strip().splitlines() if line.strip()]
        size = len(rows)
        if size == 0:
            raise MazeError("a maze needs at least one row")
        walls: list[tuple[bool, ...]] = []
        cheese: Square | None = None
        mouse: Square | None = None
        for i, text in enumerate(rows):
            row = size - 1 - i
            if len(text) != size:
                raise MazeError(f"row {i} from the top has {len(text)} squares, expected {size}")
            for col, ch in enumerate(text):
                if ch not in (_WALL, _OPEN, _CHEESE, _MOUSE):
                    raise MazeError(f"unknown character {ch!r} in row {i} from the top")
                if ch == _CHEESE:
                    if cheese is not None:
                        raise MazeError("a maze has at most one cheese")
                    cheese = (row, col)
                if ch == _MOUSE:
                    if mouse is not None:
                        raise MazeError("a maze has exactly one mouse")
                    mouse = (row, col)
            walls.append(tuple(ch == _WALL for ch in text))
        return cls(size, tuple(reversed(walls)), cheese, mouse or (0, 0), background)

    def to_strings(self) -> list[str]:
        """The maze as text, top row first (inverse of :meth:`from_strings`)."""
        out = []
        for row in range(self.size - 1, -1, -1):
            chars = []
            for col in range(self.size):
                sq = (row, col)
                if sq == self.cheese:
                    chars.append(_CHEESE)
                elif sq == self.mouse:
                    chars.append(_MOUSE)
                else:
                    chars.append(_WALL if self.walls[row][col] else _OPEN)
            out.append("".join(chars))
        return out

    # --- queries --------------------------------------------------------------------
    def in_bounds(self, square: Square) -> bool:
        return 0 <= square[0] < self.size and 0 <= square[1] < self.size

    def is_open(self, square: Square) -> bool:
        """True for a square inside the maze that is not a wall."""
        return self.in_bounds(square) and not self.walls[square[0]][square[1]]

    def open_cells(self) -> list[Square]:
        """Every open square, in row-major order from the bottom row."""
        return [(r, c) for r in range(self.size) for c in range(self.size) if not self.walls[r][c]]

    @property
    def top_right(self) -> Square:
        """The maze's own top-right square ``(size-1, size-1)`` (not the world corner)."""
        return (self.size - 1, self.size - 1)

    # --- edits (each returns a new Maze) -----------------------------------------------
    def _check_open(self, square: Square, what: str) -> None:
        if not self.in_bounds(square):
            raise MazeError(f"{what} square {square} is outside the {self.size}x{self.size} maze")
        if self.walls[square[0]][square[1]]:
            raise MazeError(f"{what} cannot be placed on a wall at {square}")

    def with_cheese(self, square: Square) -> Maze:
        return replace(self, cheese=_as_square(tuple(square), "cheese"))

    def without_cheese(self) -> Maze:
        return replace(self, cheese=None)

    def with_mouse(self, square: Square) -> Maze:
        return replace(self, mouse=_as_square(tuple(square), "mouse"))

    def with_wall(self, square: Square, wall: bool = True) -> Maze:
        """Set (``wall=True``) or clear a wall; the cheese's and mouse's squares cannot be walled."""
        square = _as_square(tuple(square), "wall")
        if not self.in_bounds(square):
            raise MazeError(f"wall square {square} is outside the {self.size}x{self.size} maze")
        if wall and square in (self.cheese, self.mouse):
            what = "cheese" if square == self.cheese else "mouse"
            raise MazeError(f"cannot put a wall on the {what} at {square}")
        rows = [list(r) for r in self.walls]
        rows[square[0]][square[1]] = bool(wall)
        return replace(self, walls=tuple(tuple(r) for r in rows))

    # --- JSON -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": JSON_FORMAT,
            "size": self.size,
            "rows": ["".join(_WALL if w else _OPEN for w in self.walls[r]) for r in range(self.size - 1, -1, -1)],
            "cheese": list(self.cheese) if self.cheese is not None else None,
            "mouse": list(self.mouse),
            "background": self.background,
            "seed": self.seed,
        }

    def to_json(self) -> str:
        """JSON text; ``rows`` lists the walls top row first (``#`` wall, ``.`` open)."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: Any) -> Maze:
        """A maze from its ``to_dict()`` form; every problem raises ``MazeError`` (one short line)."""
        if not isinstance(data, dict):
            raise MazeError(f"maze JSON must be an object, got {type(data).__name__}")
        if data.get("format") != JSON_FORMAT:
            raise MazeError(f"maze JSON 'format' must be {JSON_FORMAT!r}, got {_short(data.get('format'))}")
        missing = [k for k in ("size", "rows", "mouse") if k not in data]
        if missing:
            raise MazeError(f"maze JSON is missing {', '.join(missing)}")
        unknown = sorted(set(data) - {"format", "size", "rows", "cheese", "mouse", "background", "seed"})
        if unknown:
            shown = ", ".join(_short(k) for k in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise MazeError(f"maze JSON has unknown keys: {shown}{more}")
        size, rows = data["size"], data["rows"]
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_SIZE:
            raise MazeError(f"maze JSON 'size' must be an integer from 1 to {MAX_SIZE}, got {_short(size)}")
        if not isinstance(rows, list) or not all(isinstance(r, str) for r in rows):
            raise MazeError("maze JSON 'rows' must be a list of strings")
        if len(rows) != size or any(len(r) != size for r in rows):
            raise MazeError(f"maze JSON 'rows' must be {size} strings of length {size}")
        if any(ch not in (_WALL, _OPEN) for r in rows for ch in r):
            raise MazeError("maze JSON 'rows' may only contain '#' (wall) and '.' (open)")
        walls = tuple(tuple(ch == _WALL for ch in rows[size - 1 - r]) for r in range(size))
        cheese = data.get("cheese")
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise MazeError(f"maze JSON 'seed' must be an integer or null, got {_short(seed)}")
        background = data.get("background", 0)
        if not isinstance(background, int) or isinstance(background, bool):
            raise MazeError(f"maze JSON 'background' must be an integer, got {_short(background)}")
        return cls(
            size=size,
            walls=walls,
            cheese=None if cheese is None else _as_square(cheese, "cheese"),
            mouse=_as_square(data["mouse"], "mouse"),
            background=background,
            seed=seed,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Maze:
        """A maze from ``to_json()`` text. Size, nesting and integer lengths are checked before
        parsing; every problem raises ``MazeError`` with a one-line message."""
        data = loads_bounded(
            text, error=MazeError, what="maze JSON", max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH
        )
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> Maze:
        """A maze from a JSON file (read only up to ``MAX_JSON_BYTES``); problems raise ``MazeError``."""
        return cls.from_json(read_file_bounded(path, MAX_JSON_BYTES, MazeError, "maze file"))

    def __repr__(self) -> str:
        return (
            f"Maze(size={self.size}, cheese={self.cheese}, mouse={self.mouse}, "
            f"background={self.background}, seed={self.seed})"
        )
