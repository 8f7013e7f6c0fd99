"""The whole view of the workbench as one frozen value, and its URL encoding.

A ``ViewState`` says everything a link must reproduce: which checkpoint, which maze (a procgen
seed plus edits, or a whole imported maze), the open tab, display options, the layer and
channel, and the interventions as a *spec* (coefficients, source mazes, channels): the arrays
themselves are recomputed from the spec, so links stay short. ``to_query`` / ``from_query``
convert to and from a URL query string; parameters at their defaults are left out.

Squares are ``(row, col)`` maze squares (row 0 at the bottom), written ``row,col`` in URLs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

from mazewb.errors import (
    MazeError,
    StateError,  # noqa: F401 - re-exported
)
from mazewb.maze import Maze
from mazewb.maze.geometry import Square

TABS = ("behaviour", "activations", "steer", "shards", "stats", "model")
VIEWS = ("frame", "agent")
OVERLAYS = ("paths", "decision")
ARROWS = ("net", "moves")
HEATS = ("step_cheese", "step_top_right", "reach_cheese")
EPISODE_MODES = ("greedy", "sampled")
ABLATE_MODES = ("zero", "mean")
DEFAULT_LAYER = "embedder.block2.res1.resadd_out"
MAX_SEED = 2**31 - 1
MAX_COEFF = 100.0
MAX_STATS_MAZES = 100_000




@dataclass(frozen=True)
class SteerSpec:
    """Interventions as data the app can rebuild: which vectors, which channels, from where.

    ``*_source`` is ``None`` for "the maze on screen" or a procgen seed. A coefficient of 0
    switches a vector off; an empty channel tuple switches ablation / resampling off;
    ``retarget_square`` None switches retargeting off.
    """

    layer: str = DEFAULT_LAYER
    cheese_coeff: float = 0.0
    cheese_source: int | None = None
    top_right_coeff: float = 0.0
    top_right_source: int | None = None
    retarget_square: Square | None = None
    retarget_channels: tuple[int, ...] = ()
    retarget_value: float = 5.5
    ablate_channels: tuple[int, ...] = ()
    ablate_mode: str = "zero"
    resample_channels: tuple[int, ...] = ()
    resample_source: int = 1

    @property
    def active(self) -> bool:
        return bool(
            self.cheese_coeff
            or self.top_right_coeff
            or (self.retarget_square is not None and self.retarget_channels)
            or self.ablate_channels
            or self.resample_channels
        )


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


@lru_cache(maxsize=512)
def seed_maze(seed: int) -> Maze:
    """``Maze.from_seed(seed)``, memoised (a pure function of the seed; about 45 ms uncached)."""
    return Maze.from_seed(seed)


def maze_from_rows(rows: tuple[str, ...]) -> Maze:
    size = len(rows)
    walls = tuple(tuple(ch == "#" for ch in rows[size - 1 - r]) for r in range(size))
    open_squares = [(r, c) for r in range(size) for c in range(size) if not walls[r][c]]
    if not open_squares:
        raise MazeError("the maze has no open square")
    return Maze(size=size, walls=walls, cheese=None, mouse=open_squares[0])


def _rows(maze: Maze) -> list[str]:
    return ["".join("#" if maze.walls[r][c] else "." for c in range(maze.size)) for r in range(maze.size - 1, -1, -1)]


# --- URL encoding ----------------------------------------------------------------------
def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _fmt_square(sq: Square) -> str:
    return f"{sq[0]},{sq[1]}"


def _fmt_ints(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


def parse_int(text: Any, what: str, lo: int = 0, hi: int = MAX_SEED) -> int:
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        raise StateError(f"{what} must be a whole number, got {text!r}") from None
    if not lo <= value <= hi:
        raise StateError(f"{what} must be between {lo} and {hi}, got {value}")
    return value


def parse_float(text: Any, what: str, limit: float = MAX_COEFF) -> float:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        raise StateError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise StateError(f"{what} must be a finite number between -{limit:g} and {limit:g}, got {text!r}")
    return value


def parse_square(text: Any, what: str) -> Square:
    parts = str(text).replace(" ", "").strip("()[]").split(",")
    if len(parts) != 2:
        raise StateError(f"{what} must be a square written row,col (e.g. 3,4), got {text!r}")
    return parse_int(parts[0], f"{what} row", 0, 24), parse_int(parts[1], f"{what} column", 0, 24)


def parse_channels(text: Any, what: str, limit: int = 4096) -> tuple[int, ...]:
    """'55' or '8, 55, 77' or '' -> a sorted tuple of distinct channel numbers."""
    if text is None:
        return ()
    if isinstance(text, (list, tuple)):
        items = [str(t) for t in text]
    else:
        items = [t for t in str(text).replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    chans = sorted({parse_int(t, f"{what} channel", 0, limit) for t in items})
    if len(chans) > 512:
        raise StateError(f"{what}: at most 512 channels, got {len(chans)}")
    return tuple(chans)


def _parse_source(text: str, what: str) -> int | None:
    return None if text in ("", "this") else parse_int(text, f"{what} source seed")


def _choice(text: str, options: tuple[str, ...], what: str) -> str:
    if text not in options:
        raise StateError(f"{what} must be one of {', '.join(options)}, got {text!r}")
    return text


def _parse_rows(text: str) -> tuple[str, ...]:
    """``SIZE-HEX``: the walls row-major from the top row, one bit per square (1 = wall)."""
    try:
        size_text, hex_text = text.split("-", 1)
        size = int(size_text)
        if not 1 <= size <= 25:
            raise ValueError
        bits = bin(int(hex_text, 16))[2:].zfill(len(hex_text) * 4)
    except ValueError:
        raise StateError(f"maze parameter is not SIZE-HEX walls (got {text[:40]!r})") from None
    n = size * size
    if len(bits) < n:
        raise StateError(f"maze parameter has {len(bits)} bits, a {size}x{size} maze needs {n}")
    bits = bits[len(bits) - n :] if len(bits) - n < 4 else None  # type: ignore[assignment]
    if bits is None:
        raise StateError("maze parameter has too many bits for its size")
    return tuple("".join("#" if b == "1" else "." for b in bits[i * size : (i + 1) * size]) for i in range(size))


def _fmt_rows(rows: tuple[str, ...]) -> str:
    size = len(rows)
    bits = "".join("1" if ch == "#" else "0" for r in rows for ch in r)
    width = (len(bits) + 3) // 4
    return f"{size}-{int(bits, 2):0{width}x}"


def to_query(state: ViewState) -> str:
    """The URL query string (with the leading '?', or '' for the default view)."""
    d = ViewState()
    s, ds = state.steer, d.steer
    q: list[tuple[str, str]] = []

    def put(key: str, value: Any, default: Any, fmt=str) -> None:  # noqa: ANN001
        if value != default:
            q.append((key, fmt(value)))

    put("ckpt", state.checkpoint, d.checkpoint)
    put("seed", state.seed, d.seed)
    if state.maze_rows is not None:
        q.append(("maze", _fmt_rows(state.maze_rows)))
        put("bg", state.background, d.background)
    if state.cheese != "seed":
        q.append(("cheese", "none" if state.cheese is None else _fmt_square(state.cheese)))  # type: ignore[arg-type]
    put("mouse", state.mouse, None, _fmt_square)
    put("walls", state.walls, (), lambda w: "_".join(_fmt_square(sq) for sq in w))
    put("tab", state.tab, d.tab)
    put("view", state.view, d.view)
    put("show", state.overlays, d.overlays, lambda o: ",".join(o) or "none")
    put("arrows", state.arrows, d.arrows)
    put("heat", state.heat, d.heat)
    put("layer", state.layer, d.layer)
    put("ch", state.channel, d.channel)
    put("sl", s.layer, ds.layer)
    put("cv", s.cheese_coeff, ds.cheese_coeff, _fmt_num)
    put("cvsrc", s.cheese_source, ds.cheese_source)
    put("tv", s.top_right_coeff, ds.top_right_coeff, _fmt_num)
    put("tvsrc", s.top_right_source, ds.top_right_source)
    put("rt", s.retarget_square, ds.retarget_square, _fmt_square)
    put("rtch", s.retarget_channels, ds.retarget_channels, _fmt_ints)
    put("rtv", s.retarget_value, ds.retarget_value, _fmt_num)
    put("ab", s.ablate_channels, ds.ablate_channels, _fmt_ints)
    put("abm", s.ablate_mode, ds.ablate_mode)
    put("rs", s.resample_channels, ds.resample_channels, _fmt_ints)
    put("rssrc", s.resample_source, ds.resample_source)
    put("gc", state.grid_cheese, d.grid_cheese, lambda t: ",".join(_fmt_num(x) for x in t))
    put("gt", state.grid_top_right, d.grid_top_right, lambda t: ",".join(_fmt_num(x) for x in t))
    put("gn", state.grid_steps, d.grid_steps)
    put("ep", state.episode, d.episode)
    put("eps", state.episode_seed, d.episode_seed)
    put("sn", state.stats_mazes, d.stats_mazes)
    put("ss", state.stats_start, d.stats_start)
    return "?" + urlencode(q, safe=",_:/") if q else ""


def _pair(text: str, what: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise StateError(f"{what} must be two numbers lo,hi, got {text!r}")
    lo, hi = (parse_float(p, what) for p in parts)
    if lo > hi:
        raise StateError(f"{what}: the first number must not exceed the second, got {text!r}")
    return lo, hi


def from_query(search: str | None) -> ViewState:
    """Parse a URL query string (with or without '?'); raises StateError naming the bad part.

    Unknown parameters are an error too, so that a mistyped link does not silently show
    something other than what its author saw.
    """
    text = (search or "").lstrip("?")
    if len(text) > 20_000:
        raise StateError("the link's query string is too long")
    params = dict(parse_qsl(text, keep_blank_values=True))
    d = ViewState()
    st: dict[str, Any] = {}
    sp: dict[str, Any] = {}
    handlers = {
        "ckpt": lambda v: st.__setitem__("checkpoint", v),
        "seed": lambda v: st.__setitem__("seed", parse_int(v, "seed")),
        "maze": lambda v: st.__setitem__("maze_rows", _parse_rows(v)),
        "bg": lambda v: st.__setitem__("background", parse_int(v, "background", 0, 63)),
        "cheese": lambda v: st.__setitem__("cheese", None if v == "none" else parse_square(v, "cheese")),
        "mouse": lambda v: st.__setitem__("mouse", parse_square(v, "mouse")),
        "walls": lambda v: st.__setitem__("walls", tuple(sorted({parse_square(x, "wall") for x in v.split("_") if x}))),
        "tab": lambda v: st.__setitem__("tab", _choice(v, TABS, "tab")),
        "view": lambda v: st.__setitem__("view", _choice(v, VIEWS, "view")),
        "show": lambda v: st.__setitem__(
            "overlays",
            ()
            if v in ("", "none")
            else tuple(o for o in OVERLAYS if o in {_choice(x, OVERLAYS, "show") for x in v.split(",")}),
        ),
        "arrows": lambda v: st.__setitem__("arrows", _choice(v, ARROWS, "arrows")),
        "heat": lambda v: st.__setitem__("heat", _choice(v, HEATS, "heat")),
        "layer": lambda v: st.__setitem__("layer", v),
        "ch": lambda v: st.__setitem__("channel", parse_int(v, "channel", 0, 4095)),
        "sl": lambda v: sp.__setitem__("layer", v),
        "cv": lambda v: sp.__setitem__("cheese_coeff", parse_float(v, "cheese vector coefficient")),
        "cvsrc": lambda v: sp.__setitem__("cheese_source", _parse_source(v, "cheese vector")),
        "tv": lambda v: sp.__setitem__("top_right_coeff", parse_float(v, "top-right vector coefficient")),
        "tvsrc": lambda v: sp.__setitem__("top_right_source", _parse_source(v, "top-right vector")),
        "rt": lambda v: sp.__setitem__("retarget_square", parse_square(v, "retarget square")),
        "rtch": lambda v: sp.__setitem__("retarget_channels", parse_channels(v, "retarget")),
        "rtv": lambda v: sp.__setitem__("retarget_value", parse_float(v, "retarget value")),
        "ab": lambda v: sp.__setitem__("ablate_channels", parse_channels(v, "ablation")),
        "abm": lambda v: sp.__setitem__("ablate_mode", _choice(v, ABLATE_MODES, "ablation mode")),
        "rs": lambda v: sp.__setitem__("resample_channels", parse_channels(v, "resampling")),
        "rssrc": lambda v: sp.__setitem__("resample_source", parse_int(v, "resampling source seed")),
        "gc": lambda v: st.__setitem__("grid_cheese", _pair(v, "cheese coefficient range")),
        "gt": lambda v: st.__setitem__("grid_top_right", _pair(v, "top-right coefficient range")),
        "gn": lambda v: st.__setitem__("grid_steps", parse_int(v, "grid steps", 2, 11)),
        "ep": lambda v: st.__setitem__("episode", _choice(v, EPISODE_MODES, "episode mode")),
        "eps": lambda v: st.__setitem__("episode_seed", parse_int(v, "episode seed")),
        "sn": lambda v: st.__setitem__("stats_mazes", parse_int(v, "number of mazes", 10, MAX_STATS_MAZES)),
        "ss": lambda v: st.__setitem__("stats_start", parse_int(v, "first seed")),
    }
    unknown = sorted(set(params) - set(handlers))
    if unknown:
        raise StateError(f"the link has unknown parameter(s): {', '.join(unknown)}")
    for key, value in params.items():
        handlers[key](value)
    return replace(d, **st, steer=replace(d.steer, **sp))


def state_to_dict(state: ViewState) -> dict[str, Any]:
    """JSON-ready dict (for a dcc.Store)."""
    return asdict(state)


def state_from_dict(data: dict[str, Any]) -> ViewState:
    """Inverse of ``state_to_dict`` (JSON turns tuples into lists; this turns them back)."""

    def tup(v: Any) -> Any:
        return tuple(tup(x) for x in v) if isinstance(v, list) else v

    steer = SteerSpec(**{f.name: tup(data["steer"][f.name]) for f in fields(SteerSpec) if f.name in data["steer"]})
    values = {f.name: tup(data[f.name]) for f in fields(ViewState) if f.name in data and f.name != "steer"}
    return ViewState(**values, steer=steer)
