"""The whole view of the workbench as one frozen value, and the one table that declares it.

A ``ViewState`` says everything a link must reproduce: which checkpoint, which maze (a procgen
seed plus edits, or a whole imported maze), the open tab, display options, the layer and
channel, and the interventions as a *spec* (``SteerSpec``: coefficients, source mazes,
channels; the arrays are recomputed from it, so links stay short).

``FIELDS`` declares every field once: its name, its URL key, its type and bounds (a ``Kind``),
its default (the dataclass's) and the page control(s) that show it. Everything else derives
from that table:

- ``to_query`` / ``from_query``: the URL codec (parameters at their defaults are left out);
- ``state_to_dict`` / ``state_from_dict``: the page store, validated on every read;
- ``controls_from_state`` / ``apply_control``: what each control shows, and the state after
  a control changed;
- ``slice_of`` / ``from_slice``: the few fields one panel reads, validated the same way.

Every value that comes from a browser (URL, store, control) goes through a ``Kind``, which
returns a canonical value or raises ``StateError`` naming the field. Squares are ``(row, col)``
maze squares (row 0 at the bottom), written ``row,col`` in URLs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

from mazewb.analysis.spec import SteerSpec, seed_maze  # noqa: F401 - public names of this module
from mazewb.app import ids
from mazewb.errors import MazeError, StateError
from mazewb.maze import Maze
from mazewb.maze.geometry import Square

VIEWS = ("frame", "agent")
OVERLAYS = ("paths", "decision", "region")
ARROWS = ("net", "moves")
HEATS = ("step_cheese", "step_top_right", "reach_cheese")
EPISODE_MODES = ("greedy", "sampled")
ABLATE_MODES = ("zero", "mean")
DEFAULT_LAYER = "embedder.block2.res1.resadd_out"
MAX_SEED = 2**31 - 1
MAX_COEFF = 100.0
MAX_STATS_MAZES = 100_000
MAX_CHANNEL = 4095
MAX_GRID_STEPS = 11
MAX_QUERY_CHARS = 20_000
MAX_SIZE = 25
MAX_CURVE_MAZES = 2000


def tab_names() -> tuple[str, ...]:
    """The tabs of the page, in order (from the panel registry, ``mazewb.app.panels``)."""
    from mazewb.app.panels import TABS  # the registry is plain data: no import cycle

    return TABS


@lru_cache(maxsize=1)
def spatial_layers() -> tuple[str, ...]:
    """Hook points with a (C, H, W) map (the same names at every scale), input excluded."""
    from mazewb.policy import HOOK_NAMES
    from mazewb.policy.impala import ImpalaPolicy

    shapes = ImpalaPolicy(scale=1).hook_points()
    return tuple(n for n in HOOK_NAMES if len(shapes[n]) == 3 and n != "embedder.block1.conv_in0")


@dataclass(frozen=True)
class ViewState:
    """Everything a shared link reproduces. ``maze_rows`` is set only for mazes that did not
    come from a seed (imported); otherwise the maze is ``Maze.from_seed(seed)`` with ``edits``."""

    checkpoint: str = "default"
    seed: int = 0
    maze_rows: tuple[str, ...] | None = None  # top row first, '#' wall '.' open (imported mazes)
    background: int = 0  # procgen's background image of an imported maze (seed levels have their own)
    cheese: Square | None | str = "seed"  # "seed": as generated; None: removed; else a square
    mouse: Square | None = None  # None: as generated (bottom-left)
    walls: tuple[Square, ...] = ()  # squares whose wall/open state is flipped from the base
    tab: str = "behaviour"
    view: str = "frame"
    overlays: tuple[str, ...] = OVERLAYS
    arrows: str = "net"
    heat: str = "step_cheese"
    layer: str = DEFAULT_LAYER
    channel: int = 0
    steer: SteerSpec = field(default_factory=SteerSpec)
    grid_cheese: tuple[float, float] = (-2.0, 1.0)
    grid_top_right: tuple[float, float] = (0.0, 3.0)
    grid_steps: int = 5
    episode: str = "greedy"
    episode_seed: int = 0
    stats_mazes: int = 200
    stats_start: int = 0
    lesson: str = ""  # the lesson being played ('' none); its step below (mazewb/app/panels/lesson.py)
    lesson_step: int = 0
    compare: str | None = None  # agent B of the Compare tab (None: the first other zoo agent)
    curve_mazes: int = 100  # level seeds 0..N-1 of the region curve (Compare tab)

    # --- the maze ------------------------------------------------------------------
    def base_maze(self) -> Maze:
        """The maze before edits: the seed's level, or the imported walls (no cheese, the mouse
        on the lowest-leftmost open square)."""
        if self.maze_rows is not None:
            return replace(maze_from_rows(self.maze_rows), background=self.background)
        return seed_maze(self.seed)

    def maze(self, base: Maze | None = None) -> Maze:
        """The maze on screen: the base maze with the edits applied (raises MazeError when the
        edits do not make a valid maze, e.g. a link putting the cheese on a wall)."""
        base = self.base_maze() if base is None else base
        walls = [list(row) for row in base.walls]
        for sq in self.walls:
            if not base.in_bounds(sq):
                raise MazeError(f"wall edit {sq} is outside the {base.size}x{base.size} maze")
            walls[sq[0]][sq[1]] = not walls[sq[0]][sq[1]]
        cheese = base.cheese if self.cheese == "seed" else self.cheese
        mouse = base.mouse if self.mouse is None else tuple(self.mouse)
        for what, sq in (("cheese", cheese), ("mouse", mouse)):
            if sq is not None and not base.in_bounds(sq):  # type: ignore[arg-type]
                raise MazeError(f"the {what} square {tuple(sq)} is outside the {base.size}x{base.size} maze")  # type: ignore[arg-type]
        return Maze(
            size=base.size,
            walls=tuple(tuple(row) for row in walls),
            cheese=None if cheese is None else tuple(cheese),  # type: ignore[arg-type]
            mouse=mouse,  # type: ignore[arg-type]
            background=base.background,
            seed=base.seed,
        )

    def with_maze(self, maze: Maze) -> ViewState:
        """This view with its edits re-expressed so that ``self.maze()`` equals ``maze``
        (same base: the seed's level or the imported walls; sizes must match)."""
        base = self.base_maze()
        if base.size != maze.size:
            raise MazeError(f"cannot express a {maze.size}x{maze.size} maze as edits of a {base.size}x{base.size} one")
        flipped = tuple(
            (r, c) for r in range(maze.size) for c in range(maze.size) if maze.walls[r][c] != base.walls[r][c]
        )
        cheese: Square | None | str = "seed" if maze.cheese == base.cheese else maze.cheese
        mouse = None if maze.mouse == base.mouse else maze.mouse
        return replace(self, walls=flipped, cheese=cheese, mouse=mouse)

    def with_imported(self, maze: Maze) -> ViewState:
        """A view showing ``maze`` as an imported maze (its walls carried in the link)."""
        rows = tuple(_rows(maze))
        view = replace(self, maze_rows=rows, background=maze.background, walls=(), cheese="seed", mouse=None)
        return view.with_maze(maze)

    def with_seed(self, seed: int) -> ViewState:
        """This view on another procgen level, edits cleared."""
        return replace(self, seed=seed, maze_rows=None, walls=(), cheese="seed", mouse=None)


def maze_from_rows(rows: tuple[str, ...]) -> Maze:
    size = len(rows)
    walls = tuple(tuple(ch == "#" for ch in rows[size - 1 - r]) for r in range(size))
    open_squares = [(r, c) for r in range(size) for c in range(size) if not walls[r][c]]
    if not open_squares:
        raise MazeError("the maze has no open square")
    return Maze(size=size, walls=walls, cheese=None, mouse=open_squares[0])


def _rows(maze: Maze) -> list[str]:
    return ["".join("#" if maze.walls[r][c] else "." for c in range(maze.size)) for r in range(maze.size - 1, -1, -1)]


# --- checked conversions of browser values -------------------------------------------------------
def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def parse_int(value: Any, what: str, lo: int = 0, hi: int = MAX_SEED) -> int:
    """A whole number in [lo, hi] from an int, an integral float or text; StateError otherwise."""
    if isinstance(value, bool):
        raise StateError(f"{what} must be a whole number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise StateError(f"{what} must be a whole number, got {value!r}")
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 24:
            raise StateError(f"{what} must be a whole number between {lo} and {hi}, got {text[:24]!r}...")
        try:
            value = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise StateError(f"{what} must be a whole number, got {text!r}") from None
            return parse_int(number, what, lo, hi)
    elif not isinstance(value, int):
        raise StateError(f"{what} must be a whole number, got {_kind(value)}")
    if not lo <= value <= hi:
        raise StateError(f"{what} must be between {lo} and {hi}, got {value}")
    return value


def parse_float(value: Any, what: str, limit: float = MAX_COEFF) -> float:
    """A finite number in [-limit, limit] from a number or text; StateError otherwise."""
    if isinstance(value, bool):
        raise StateError(f"{what} must be a number, got {value!r}")
    if isinstance(value, str):
        if len(value) > 40:
            raise StateError(f"{what} must be a number, got {value[:40]!r}...")
        try:
            value = float(value.strip())
        except ValueError:
            raise StateError(f"{what} must be a number, got {value!r}") from None
    elif isinstance(value, int):
        if abs(value) > limit:
            raise StateError(f"{what} must be between -{limit:g} and {limit:g}, got {value}")
        value = float(value)
    elif not isinstance(value, float):
        raise StateError(f"{what} must be a number, got {_kind(value)}")
    if not math.isfinite(value) or abs(value) > limit:
        raise StateError(f"{what} must be a finite number between -{limit:g} and {limit:g}, got {value!r}")
    return float(value)


def parse_square(value: Any, what: str) -> Square:
    """A square from 'row,col' text or a [row, col] pair, both in 0..24."""
    if isinstance(value, str):
        if len(value) > 40:
            raise StateError(f"{what} must be a square written row,col (e.g. 3,4), got {value[:40]!r}...")
        parts: Sequence[Any] = value.replace(" ", "").strip("()[]").split(",")
    elif isinstance(value, (list, tuple)):
        parts = value
    else:
        raise StateError(f"{what} must be a square row,col, got {_kind(value)}")
    if len(parts) != 2:
        raise StateError(f"{what} must be a square written row,col (e.g. 3,4), got {_short(value)}")
    return parse_int(parts[0], f"{what} row", 0, MAX_SIZE - 1), parse_int(parts[1], f"{what} column", 0, MAX_SIZE - 1)


def parse_channels(value: Any, what: str, limit: int = MAX_CHANNEL) -> tuple[int, ...]:
    """'55' or '8, 55, 77' or '' (or a list) -> a sorted tuple of distinct channel numbers."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, str):
        if len(value) > 4000:
            raise StateError(f"{what} channels: the list is too long")
        items = [t for t in value.replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    else:
        raise StateError(f"{what} channels must be numbers like 8,55, got {_kind(value)}")
    if len(items) > 512:
        raise StateError(f"{what}: at most 512 channels, got {len(items)}")
    return tuple(sorted({parse_int(t, f"{what} channel", 0, limit) for t in items}))


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", type(None): "nothing"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _choice(value: Any, options: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in options:
        raise StateError(f"{what} must be one of {', '.join(options)}, got {_short(value)}")
    return value


# --- kinds: type and bounds of a field, with its URL, store and control forms --------------------
class Kind:
    """How one field is checked and written. ``check`` takes any browser value (from a store or a
    control) and returns the canonical value or raises StateError naming ``what``; ``parse``
    reads URL text; ``fmt`` writes it; ``to_json`` is the store form; ``to_controls`` the values
    of the field's controls (one per control) and ``from_control`` the field after control ``i``
    changed. ``typed``: the controls are text/number boxes (they also submit on Enter)."""

    typed = False

    def check(self, value: Any, what: str) -> Any:
        raise NotImplementedError

    def parse(self, text: str, what: str) -> Any:
        return self.check(text, what)

    def fmt(self, value: Any) -> str:
        return str(value)

    def to_json(self, value: Any) -> Any:
        return value

    def to_controls(self, value: Any) -> list[Any]:
        return [value]

    def from_control(self, old: Any, i: int, value: Any, what: str) -> Any:  # noqa: ARG002
        return self.check(value, what)


@dataclass(frozen=True)
class Int(Kind):
    lo: int = 0
    hi: int = MAX_SEED
    typed = True

    def check(self, value: Any, what: str) -> int:
        if value is None:
            raise StateError(f"{what}: enter a value")
        return parse_int(value, what, self.lo, self.hi)


@dataclass(frozen=True)
class Float(Kind):
    limit: float = MAX_COEFF
    typed = True

    def check(self, value: Any, what: str) -> float:
        if value is None:
            raise StateError(f"{what}: enter a value")
        return parse_float(value, what, self.limit)

    def fmt(self, value: Any) -> str:
        return _fmt_num(value)


@dataclass(frozen=True)
class Choice(Kind):
    options: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()

    def names(self) -> tuple[str, ...]:
        return self.options() if callable(self.options) else self.options

    def check(self, value: Any, what: str) -> str:
        return _choice(value, self.names(), what)


@dataclass(frozen=True)
class Layer(Kind):
    """A spatial hook point name (the same at every scale)."""

    def check(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or value not in spatial_layers():
            raise StateError(f"{what}: unknown layer {_short(value)}")
        return value


@dataclass(frozen=True)
class LessonName(Kind):
    """A lesson's name ('' for none): lower-case letters, digits, '-' and '_' (whether the server
    has it is the lesson panel's business)."""

    def check(self, value: Any, what: str) -> str:
        if value == "":
            return ""
        if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value):
            raise StateError(f"{what} must be a lesson name (lower-case letters, digits, - and _), got {_short(value)}")
        return value


@dataclass(frozen=True)
class Checkpoint(Kind):
    """'default', 'zoo:NAME', 'path:FILE' or 'upload:HEX16' (whether it loads is the registry's
    business); None too when ``optional``."""

    optional: bool = False

    def check(self, value: Any, what: str) -> str | None:
        if value is None and self.optional:
            return None
        if not isinstance(value, str) or not value or len(value) > 1000 or not value.isprintable():
            raise StateError(f"{what} must be 'default', 'zoo:NAME', 'path:FILE' or 'upload:HASH', got {_short(value)}")
        if value != "default" and not value.startswith(("zoo:", "path:", "upload:")):
            raise StateError(f"{what} must be 'default', 'zoo:NAME', 'path:FILE' or 'upload:HASH', got {_short(value)}")
        return value

    def from_control(self, old: Any, i: int, value: Any, what: str) -> Any:  # noqa: ARG002
        return old if value is None else self.check(value, what)  # a menu that lost its value


@dataclass(frozen=True)
class Multi(Kind):
    """A subset of ``options`` (kept in their order); 'none' in URLs for the empty set."""

    options: tuple[str, ...] = ()

    def check(self, value: Any, what: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)) or len(value) > len(self.options) * 2:
            raise StateError(f"{what} must be a list of {', '.join(self.options)}, got {_short(value)}")
        chosen = {_choice(v, self.options, what) for v in value}
        return tuple(o for o in self.options if o in chosen)

    def parse(self, text: str, what: str) -> tuple[str, ...]:
        return () if text in ("", "none") else self.check(text.split(","), what)

    def fmt(self, value: Any) -> str:
        return ",".join(value) or "none"

    def to_json(self, value: Any) -> Any:
        return list(value)

    def to_controls(self, value: Any) -> list[Any]:
        return [list(value)]


@dataclass(frozen=True)
class SquareKind(Kind):
    """A square, or None when ``optional``."""

    optional: bool = True

    def check(self, value: Any, what: str) -> Square | None:
        if value is None and self.optional:
            return None
        return parse_square(value, what)

    def fmt(self, value: Any) -> str:
        return f"{value[0]},{value[1]}"

    def to_json(self, value: Any) -> Any:
        return None if value is None else list(value)


@dataclass(frozen=True)
class Cheese(Kind):
    """'seed' (as generated), None (removed) or a square."""

    def check(self, value: Any, what: str) -> Square | None | str:
        if value is None or value == "seed":
            return value
        return parse_square(value, what)

    def parse(self, text: str, what: str) -> Square | None | str:
        return None if text == "none" else parse_square(text, what)

    def fmt(self, value: Any) -> str:
        return "none" if value is None else f"{value[0]},{value[1]}"

    def to_json(self, value: Any) -> Any:
        return value if value is None or value == "seed" else list(value)


@dataclass(frozen=True)
class Squares(Kind):
    """A sorted set of distinct squares ('r,c_r,c' in URLs)."""

    def check(self, value: Any, what: str) -> tuple[Square, ...]:
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)) or len(value) > MAX_SIZE * MAX_SIZE:
            raise StateError(f"{what} must be a list of at most {MAX_SIZE * MAX_SIZE} squares, got {_kind(value)}")
        return tuple(sorted({parse_square(sq, what) for sq in value}))

    def parse(self, text: str, what: str) -> tuple[Square, ...]:
        return self.check([x for x in text.split("_") if x], what)

    def fmt(self, value: Any) -> str:
        return "_".join(f"{r},{c}" for r, c in value)

    def to_json(self, value: Any) -> Any:
        return [list(sq) for sq in value]


@dataclass(frozen=True)
class Channels(Kind):
    typed = True

    def check(self, value: Any, what: str) -> tuple[int, ...]:
        return parse_channels(value, what)

    def fmt(self, value: Any) -> str:
        return ",".join(str(v) for v in value)

    def to_json(self, value: Any) -> Any:
        return list(value)

    def to_controls(self, value: Any) -> list[Any]:
        return [",".join(str(v) for v in value)]


@dataclass(frozen=True)
class Source(Kind):
    """A source maze: None (the maze on screen; '' or 'this') or a procgen seed."""

    typed = True

    def check(self, value: Any, what: str) -> int | None:
        if value is None or (isinstance(value, str) and value.strip() in ("", "this")):
            return None
        return parse_int(value, f"{what} source seed")

    def to_controls(self, value: Any) -> list[Any]:
        return ["" if value is None else str(value)]


@dataclass(frozen=True)
class Pair(Kind):
    """Two numbers lo <= hi, each in [-limit, limit] ('lo,hi' in URLs; two controls)."""

    limit: float = MAX_COEFF
    typed = True

    def check(self, value: Any, what: str) -> tuple[float, float]:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise StateError(f"{what} must be two numbers lo,hi, got {_short(value)}")
        lo, hi = (parse_float(v, what, self.limit) for v in value)
        if lo > hi:
            raise StateError(f"{what}: 'from' ({lo:g}) must not exceed 'to' ({hi:g})")
        return lo, hi

    def parse(self, text: str, what: str) -> tuple[float, float]:
        return self.check(text.split(","), what)

    def fmt(self, value: Any) -> str:
        return ",".join(_fmt_num(x) for x in value)

    def to_json(self, value: Any) -> Any:
        return list(value)

    def to_controls(self, value: Any) -> list[Any]:
        return list(value)

    def from_control(self, old: Any, i: int, value: Any, what: str) -> Any:
        if value is None:
            raise StateError(f"{what}: enter a value")
        pair = list(old)
        pair[i] = value
        return self.check(pair, what)


@dataclass(frozen=True)
class MazeRows(Kind):
    """The walls of an imported maze: rows top first ('#' wall, '.' open); URL 'SIZE-HEX'."""

    def check(self, value: Any, what: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_SIZE:
            raise StateError(f"{what} must be 1 to {MAX_SIZE} rows of '#' and '.', got {_kind(value)}")
        size = len(value)
        for row in value:
            if not isinstance(row, str) or len(row) != size or set(row) - {"#", "."}:
                raise StateError(f"{what}: every row must be {size} characters of '#' and '.'")
        if "." not in "".join(value):
            raise StateError(f"{what}: the maze has no open square")
        return tuple(value)

    def parse(self, text: str, what: str) -> tuple[str, ...] | None:
        try:
            size_text, hex_text = text.split("-", 1)
            size = int(size_text)
            if not 1 <= size <= MAX_SIZE or len(hex_text) > 200:
                raise ValueError
            bits = bin(int(hex_text, 16))[2:].zfill(len(hex_text) * 4)
        except ValueError:
            raise StateError(f"{what} parameter is not SIZE-HEX walls (got {text[:40]!r})") from None
        n = size * size
        if len(bits) < n:
            raise StateError(f"{what} parameter has {len(bits)} bits, a {size}x{size} maze needs {n}")
        if len(bits) - n >= 4:
            raise StateError(f"{what} parameter has too many bits for its size")
        bits = bits[len(bits) - n :]
        return self.check(
            [bits[i * size : (i + 1) * size].replace("1", "#").replace("0", ".") for i in range(size)], what
        )

    def fmt(self, value: Any) -> str:
        size = len(value)
        bits = "".join("1" if ch == "#" else "0" for r in value for ch in r)
        return f"{size}-{int(bits, 2):0{(len(bits) + 3) // 4}x}"

    def to_json(self, value: Any) -> Any:
        return None if value is None else list(value)


@dataclass(frozen=True)
class Field:
    """One row of the view-state table. ``name``: the ``ViewState`` attribute (``steer.x`` for
    the interventions); ``key``: its URL parameter; ``kind``: type and bounds; ``label``: how
    messages name it; ``controls``: the ids of the page controls that show it (a ``Pair`` has
    two); ``after``: a rule applied when a control changed it (e.g. a new seed clears the edits)."""

    name: str
    key: str
    kind: Kind
    label: str
    controls: tuple[str, ...] = ()
    after: Callable[[ViewState, ViewState], ViewState] | None = None

    @property
    def default(self) -> Any:
        return get_field(_DEFAULT, self.name)


def _new_seed(old: ViewState, new: ViewState) -> ViewState:  # noqa: ARG001
    return new.with_seed(new.seed)


FIELDS: tuple[Field, ...] = (
    Field("checkpoint", "ckpt", Checkpoint(), "checkpoint", ("agent-select",)),
    Field("seed", "seed", Int(0, MAX_SEED), "seed", ("seed",), after=_new_seed),
    Field("maze_rows", "maze", MazeRows(), "maze"),
    Field("background", "bg", Int(0, 63), "background"),
    Field("cheese", "cheese", Cheese(), "cheese"),
    Field("mouse", "mouse", SquareKind(), "mouse"),
    Field("walls", "walls", Squares(), "wall"),
    Field("tab", "tab", Choice(tab_names), "tab", (ids.TABS,)),
    Field("view", "view", Choice(VIEWS), "view", ("view",)),
    Field("overlays", "show", Multi(OVERLAYS), "show", ("overlays",)),
    Field("arrows", "arrows", Choice(ARROWS), "arrows", ("arrows",)),
    Field("heat", "heat", Choice(HEATS), "heat", ("heat",)),
    Field("layer", "layer", Layer(), "layer", ("layer",)),
    Field("channel", "ch", Int(0, MAX_CHANNEL), "channel", ("channel",)),
    Field("steer.layer", "sl", Layer(), "steering layer", ("steer-layer",)),
    Field("steer.cheese_coeff", "cv", Float(), "cheese vector coefficient", ("cv-coeff",)),
    Field("steer.cheese_source", "cvsrc", Source(), "cheese vector", ("cv-source",)),
    Field("steer.top_right_coeff", "tv", Float(), "top-right vector coefficient", ("tv-coeff",)),
    Field("steer.top_right_source", "tvsrc", Source(), "top-right vector", ("tv-source",)),
    Field("steer.retarget_square", "rt", SquareKind(), "retarget square"),
    Field("steer.retarget_channels", "rtch", Channels(), "retarget", ("rt-channels",)),
    Field("steer.retarget_value", "rtv", Float(), "retarget value", ("rt-value",)),
    Field("steer.ablate_channels", "ab", Channels(), "ablation", ("ab-channels",)),
    Field("steer.ablate_mode", "abm", Choice(ABLATE_MODES), "ablation mode", ("ab-mode",)),
    Field("steer.resample_channels", "rs", Channels(), "resampling", ("rs-channels",)),
    Field("steer.resample_source", "rssrc", Int(0, MAX_SEED), "resampling source seed", ("rs-source",)),
    Field("grid_cheese", "gc", Pair(), "cheese coefficient range", ("gc-lo", "gc-hi")),
    Field("grid_top_right", "gt", Pair(), "top-right coefficient range", ("gt-lo", "gt-hi")),
    Field("grid_steps", "gn", Int(2, MAX_GRID_STEPS), "grid steps", ("gn",)),
    Field("episode", "ep", Choice(EPISODE_MODES), "episode mode", ("episode-mode",)),
    Field("episode_seed", "eps", Int(0, MAX_SEED), "episode seed", ("episode-seed",)),
    Field("stats_mazes", "sn", Int(10, MAX_STATS_MAZES), "number of mazes", ("stats-n",)),
    Field("stats_start", "ss", Int(0, MAX_SEED), "first seed", ("stats-start",)),
    Field("lesson", "lesson", LessonName(), "lesson"),
    Field("lesson_step", "step", Int(0, 9999), "lesson step"),
    Field("compare", "cmp", Checkpoint(optional=True), "agent B", ("compare-agent",)),
    Field("curve_mazes", "cn", Int(10, MAX_CURVE_MAZES), "region curve level seeds", ("curve-n",)),
)
"""The view-state table: every field once, with its URL key, type and bounds, and controls."""

_DEFAULT = ViewState()
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}
BY_CONTROL: dict[str, tuple[Field, int]] = {c: (f, i) for f in FIELDS for i, c in enumerate(f.controls)}
CONTROL_IDS: tuple[str, ...] = tuple(BY_CONTROL)
TYPED_CONTROLS: tuple[str, ...] = tuple(c for c, (f, _) in BY_CONTROL.items() if f.kind.typed)
MAZE_FIELDS = ("checkpoint", "seed", "maze_rows", "background", "cheese", "mouse", "walls")
"""The fields that make the maze on screen (and the agent that looks at it)."""


def get_field(state: ViewState, name: str) -> Any:
    obj: Any = state
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def set_fields(state: ViewState, values: Mapping[str, Any]) -> ViewState:
    """``state`` with the named fields (``steer.x`` included) replaced."""
    top = {k: v for k, v in values.items() if "." not in k}
    steer = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("steer.")}
    if steer:
        top["steer"] = replace(state.steer, **steer)
    return replace(state, **top)


# --- the URL -------------------------------------------------------------------------------------
def to_query(state: ViewState) -> str:
    """The URL query string (with the leading '?', or '' for the default view)."""
    q = []
    for f in FIELDS:
        value = get_field(state, f.name)
        if value != f.default:
            q.append((f.key, f.kind.fmt(value)))
    return "?" + urlencode(q, safe=",_:/") if q else ""


def from_query(search: str | None) -> ViewState:
    """Parse a URL query string (with or without '?'); raises StateError naming the bad part.

    Unknown parameters are an error too, so that a mistyped link does not silently show
    something other than what its author saw."""
    if search is not None and not isinstance(search, str):
        raise StateError(f"the link's query must be text, got {_kind(search)}")
    text = (search or "").lstrip("?")
    if len(text) > MAX_QUERY_CHARS:
        raise StateError("the link's query string is too long")
    params = dict(parse_qsl(text, keep_blank_values=True))
    unknown = sorted(set(params) - set(BY_KEY))
    if unknown:
        raise StateError(f"the link has unknown parameter(s): {', '.join(_short(u) for u in unknown[:5])}")
    values = {BY_KEY[k].name: BY_KEY[k].kind.parse(v, BY_KEY[k].label) for k, v in params.items()}
    return set_fields(_DEFAULT, values)


# --- the page store ------------------------------------------------------------------------------
def state_to_dict(state: ViewState) -> dict[str, Any]:
    """JSON-ready dict (for a dcc.Store): the fields with ``steer`` nested, as ``asdict`` gives."""
    return _nest({f.name: f.kind.to_json(get_field(state, f.name)) for f in FIELDS})


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in flat.items():
        if name.startswith("steer."):
            out.setdefault("steer", {})[name[6:]] = value
        else:
            out[name] = value
    return out


def _flatten(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise StateError(f"the {what} must be an object, got {_kind(data)}")
    flat = {k: v for k, v in data.items() if k != "steer"}
    steer = data.get("steer", {})
    if steer is None:
        steer = {}
    if not isinstance(steer, dict):
        raise StateError(f"the {what}'s steer must be an object, got {_kind(steer)}")
    flat.update({f"steer.{k}": v for k, v in steer.items()})
    return flat


def state_from_dict(data: Any, names: Iterable[str] | None = None, what: str = "page state") -> ViewState:
    """The state a store holds, every value checked against the table (StateError naming the
    field otherwise). Missing fields take their defaults; unknown ones are refused. ``names``:
    only these fields are expected (a panel's slice)."""
    flat = _flatten(data, what)
    allowed = set(BY_NAME) if names is None else set(names)
    unknown = sorted(k for k in flat if k not in allowed)
    if unknown:
        raise StateError(f"the {what} has unknown field(s): {', '.join(_short(u) for u in unknown[:5])}")
    values = {k: BY_NAME[k].kind.check(v, BY_NAME[k].label) for k, v in flat.items()}
    return set_fields(_DEFAULT, values)


def slice_of(state: ViewState, names: Iterable[str]) -> dict[str, Any]:
    """The named fields of ``state`` in store form (a panel's slice)."""
    return _nest({n: BY_NAME[n].kind.to_json(get_field(state, n)) for n in names})


def from_slice(data: Any, names: Iterable[str]) -> ViewState:
    """A panel's slice back as a (validated) state; fields outside ``names`` are defaults."""
    return state_from_dict(data, names, what="panel state")


def asdict_state(state: ViewState) -> dict[str, Any]:
    return asdict(state)


# --- controls ------------------------------------------------------------------------------------
def controls_from_state(state: ViewState) -> dict[str, Any]:
    """The value each control shows for a state."""
    out: dict[str, Any] = {}
    for f in FIELDS:
        if not f.controls:
            continue
        for cid, value in zip(f.controls, f.kind.to_controls(get_field(state, f.name)), strict=True):
            out[cid] = value
    return out


def apply_control(state: ViewState, control: str, value: Any, layers: Mapping[str, tuple[int, ...]]) -> ViewState:
    """The state after one control changed to ``value`` (StateError naming the field when the
    value is not allowed); ``layers``: the loaded agent's hook shapes, for channel bounds."""
    if control not in BY_CONTROL:
        raise StateError(f"unknown control {_short(control)}")
    f, i = BY_CONTROL[control]
    new = set_fields(state, {f.name: f.kind.from_control(get_field(state, f.name), i, value, f.label)})
    if f.after is not None:
        new = f.after(state, new)
    if f.name == "layer" and new.layer in layers:
        new = replace(new, channel=min(new.channel, layers[new.layer][0] - 1))
    return check_layers(new, layers)


def check_layers(state: ViewState, layers: Mapping[str, tuple[int, ...]]) -> ViewState:
    """``state`` if its layers and channels exist in the loaded agent (StateError otherwise)."""
    if not layers:
        return state
    for name in ("layer", "steer.layer"):
        if get_field(state, name) not in layers:
            raise StateError(f"{BY_NAME[name].label}: the loaded agent has no layer {get_field(state, name)!r}")
    n = layers[state.layer][0]
    if not 0 <= state.channel < n:
        raise StateError(f"channel must be between 0 and {n - 1} in this layer, got {state.channel}")
    m = layers[state.steer.layer][0]
    for name in ("steer.retarget_channels", "steer.ablate_channels", "steer.resample_channels"):
        bad = [c for c in get_field(state, name) if c >= m]
        if bad:
            raise StateError(f"{BY_NAME[name].label} channel must be between 0 and {m - 1}, got {bad[0]}")
    return state


def check_state(state: ViewState) -> ViewState:
    """``state`` if its maze edits make a valid maze (MazeError otherwise)."""
    state.maze()
    return state


__all__ = [
    "FIELDS",
    "Field",
    "StateError",
    "SteerSpec",
    "ViewState",
    "apply_control",
    "controls_from_state",
    "from_query",
    "from_slice",
    "seed_maze",
    "slice_of",
    "state_from_dict",
    "state_to_dict",
    "to_query",
]
