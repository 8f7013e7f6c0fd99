"""State transitions of the view: (state, what the user did) -> (new state, message).

Pure functions of plain values, so they are tested without a browser. The Dash callback in
``mazewb.app.callbacks`` only collects the event and the control values and calls ``reduce``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from mazewb.app.state import (
    ABLATE_MODES,
    ARROWS,
    EPISODE_MODES,
    HEATS,
    OVERLAYS,
    TABS,
    VIEWS,
    StateError,
    ViewState,
    from_query,
    parse_channels,
    parse_float,
    parse_int,
    seed_maze,
)
from mazewb.errors import MazeError
from mazewb.maze import Maze
from mazewb.maze.geometry import FRAME_PIXELS, pixel_to_square

# control id -> how its value is read into the state, and written back from it
CONTROL_IDS = (
    "seed", "view", "overlays", "arrows", "heat", "tabs", "layer", "channel",
    "steer-layer", "cv-coeff", "cv-source", "tv-coeff", "tv-source",
    "rt-channels", "rt-value", "ab-channels", "ab-mode", "rs-channels", "rs-source",
    "gc-lo", "gc-hi", "gt-lo", "gt-hi", "gn",
    "episode-mode", "episode-seed", "stats-n", "stats-start",
)  # fmt: skip

MAX_SIZE_SEARCH = 400
_CHANNEL_FIELDS = {
    "rt-channels": ("retarget", "retarget_channels"),
    "ab-channels": ("ablation", "ablate_channels"),
    "rs-channels": ("resampling", "resample_channels"),
}


@dataclass(frozen=True)
class Outcome:
    state: ViewState
    message: str = ""
    error: bool = False


def controls_from_state(s: ViewState) -> dict[str, Any]:
    """The value each control shows for a state."""
    sp = s.steer
    return {
        "seed": s.seed,
        "view": s.view,
        "overlays": list(s.overlays),
        "arrows": s.arrows,
        "heat": s.heat,
        "tabs": s.tab,
        "layer": s.layer,
        "channel": s.channel,
        "steer-layer": sp.layer,
        "cv-coeff": sp.cheese_coeff,
        "cv-source": "" if sp.cheese_source is None else str(sp.cheese_source),
        "tv-coeff": sp.top_right_coeff,
        "tv-source": "" if sp.top_right_source is None else str(sp.top_right_source),
        "rt-channels": ",".join(map(str, sp.retarget_channels)),
        "rt-value": sp.retarget_value,
        "ab-channels": ",".join(map(str, sp.ablate_channels)),
        "ab-mode": sp.ablate_mode,
        "rs-channels": ",".join(map(str, sp.resample_channels)),
        "rs-source": sp.resample_source,
        "gc-lo": s.grid_cheese[0],
        "gc-hi": s.grid_cheese[1],
        "gt-lo": s.grid_top_right[0],
        "gt-hi": s.grid_top_right[1],
        "gn": s.grid_steps,
        "episode-mode": s.episode,
        "episode-seed": s.episode_seed,
        "stats-n": s.stats_mazes,
        "stats-start": s.stats_start,
    }


def _source(text: Any, what: str) -> int | None:
    text = "" if text is None else str(text).strip()
    return None if text in ("", "this") else parse_int(text, f"{what} source seed")


def _pick(value: Any, options: tuple[str, ...], what: str) -> str:
    if value not in options:
        raise StateError(f"{what} must be one of {', '.join(options)}")
    return value


def apply_control(s: ViewState, control: str, value: Any, layers: dict[str, tuple[int, ...]]) -> ViewState:
    """The state after one control changed to ``value`` (raises StateError / MazeError)."""
    sp = s.steer
    if value is None and control not in (
        "overlays",
        "cv-source",
        "tv-source",
        "rt-channels",
        "ab-channels",
        "rs-channels",
    ):
        raise StateError(f"{control.replace('-', ' ')}: enter a value")
    match control:
        case "seed":
            seed = parse_int(value, "seed")
            return replace(s, seed=seed, maze_rows=None, walls=(), cheese="seed", mouse=None)
        case "view":
            return replace(s, view=_pick(value, VIEWS, "view"))
        case "overlays":
            chosen = set(value or ())
            return replace(s, overlays=tuple(o for o in OVERLAYS if o in chosen))
        case "arrows":
            return replace(s, arrows=_pick(value, ARROWS, "arrows"))
        case "heat":
            return replace(s, heat=_pick(value, HEATS, "heatmap"))
        case "tabs":
            return replace(s, tab=_pick(value, TABS, "tab"))
        case "layer":
            if value not in layers:
                raise StateError(f"unknown layer {value!r}")
            channels = layers[value][0]
            return replace(s, layer=value, channel=min(s.channel, channels - 1))
        case "channel":
            shape = layers.get(s.layer)
            hi = (shape[0] - 1) if shape else 4095
            return replace(s, channel=parse_int(value, f"channel (0 to {hi} in this layer)", 0, hi))
        case "steer-layer":
            if value not in layers:
                raise StateError(f"unknown layer {value!r}")
            return replace(s, steer=replace(sp, layer=value))
        case "cv-coeff":
            return replace(s, steer=replace(sp, cheese_coeff=parse_float(value, "cheese vector coefficient")))
        case "cv-source":
            return replace(s, steer=replace(sp, cheese_source=_source(value, "cheese vector")))
        case "tv-coeff":
            return replace(s, steer=replace(sp, top_right_coeff=parse_float(value, "top-right vector coefficient")))
        case "tv-source":
            return replace(s, steer=replace(sp, top_right_source=_source(value, "top-right vector")))
        case "rt-channels" | "ab-channels" | "rs-channels":
            shape = layers.get(sp.layer)
            hi = (shape[0] - 1) if shape else 4095
            what, field = _CHANNEL_FIELDS[control]
            return replace(s, steer=replace(sp, **{field: parse_channels(value, what, hi)}))
        case "rt-value":
            return replace(s, steer=replace(sp, retarget_value=parse_float(value, "retarget value")))
        case "ab-mode":
            return replace(s, steer=replace(sp, ablate_mode=_pick(value, ABLATE_MODES, "ablation mode")))
        case "rs-source":
            return replace(s, steer=replace(sp, resample_source=parse_int(value, "resampling source seed")))
        case "gc-lo" | "gc-hi" | "gt-lo" | "gt-hi":
            x = parse_float(value, "grid coefficient")
            attr = "grid_cheese" if control.startswith("gc") else "grid_top_right"
            lo, hi = getattr(s, attr)
            lo, hi = (x, hi) if control.endswith("lo") else (lo, x)
            if lo > hi:
                raise StateError("grid range: 'from' must not exceed 'to'")
            return replace(s, **{attr: (lo, hi)})
        case "gn":
            return replace(s, grid_steps=parse_int(value, "grid steps", 2, 11))
        case "episode-mode":
            return replace(s, episode=_pick(value, EPISODE_MODES, "episode mode"))
        case "episode-seed":
            return replace(s, episode_seed=parse_int(value, "episode seed"))
        case "stats-n":
            return replace(s, stats_mazes=parse_int(value, "number of mazes", 10, 100_000))
        case "stats-start":
            return replace(s, stats_start=parse_int(value, "first seed"))
    raise StateError(f"unknown control {control!r}")


def find_seed(start: int, size: int | None, step: int) -> int:
    """The first seed from ``start`` (inclusive) in direction ``step`` whose maze has ``size``."""
    seed = start
    for _ in range(MAX_SIZE_SEARCH):
        if seed < 0:
            raise StateError("no earlier seed with that size")
        if size is None or seed_maze(seed).size == size:
            return seed
        seed += step
    raise StateError(f"no {size}x{size} maze within {MAX_SIZE_SEARCH} seeds")


def navigate(s: ViewState, how: str, size: Any, rng: random.Random | None = None) -> ViewState:
    """prev / next / random / size: move to another seed (of the chosen size, if any)."""
    want = None if size in (None, "any") else int(size)
    if how == "prev":
        if s.seed == 0:
            raise StateError("seed 0 is the first level")
        seed = find_seed(s.seed - 1, want, -1)
    elif how == "next":
        seed = find_seed(s.seed + 1, want, +1)
    elif how == "random":
        seed = find_seed((rng or random.Random()).randrange(0, 100_000), want, +1)
    elif how == "size":
        if want is None:
            return s
        seed = find_seed(s.seed, want, +1)
    else:
        raise StateError(f"unknown navigation {how!r}")
    return replace(s, seed=seed, maze_rows=None, walls=(), cheese="seed", mouse=None)


def click(s: ViewState, mode: str, x: float, y: float) -> Outcome:
    """A click at pixel (x, y) of the 512x512 maze picture, in a click mode."""
    maze = s.maze()
    return click_square(s, mode, pixel_to_square(y, x, maze.size, FRAME_PIXELS), maze)


def click_square(s: ViewState, mode: str, square: tuple[int, int], maze: Maze | None = None) -> Outcome:
    """A click on a maze square, in a click mode (cheese / mouse / wall / target)."""
    maze = s.maze() if maze is None else maze
    square = (int(square[0]), int(square[1]))
    if not maze.in_bounds(square):
        return Outcome(s, "That is the wall padding around the maze: click inside the maze.", True)
    if mode == "target":
        if not maze.is_open(square):
            return Outcome(s, f"The retarget square must be open; {square} is a wall.", True)
        msg = f"Retarget square set to {square}."
        if not s.steer.retarget_channels:
            msg += " Choose channels to set on the Steer & patch tab."
        return Outcome(replace(s, steer=replace(s.steer, retarget_square=square)), msg)
    if mode == "cheese":
        edited = maze.without_cheese() if square == maze.cheese else maze.with_cheese(square)
    elif mode == "mouse":
        edited = maze.with_mouse(square)
    elif mode == "wall":
        edited = maze.with_wall(square, not maze.walls[square[0]][square[1]])
    else:
        return Outcome(s, f"unknown click mode {mode!r}", True)
    return Outcome(s.with_maze(edited))


def import_maze(s: ViewState, text: str) -> Outcome:
    maze = Maze.from_json(text)
    name = f"seed {maze.seed}" if maze.seed is not None else "an imported maze"
    return Outcome(s.with_imported(maze), f"Imported {maze.size}x{maze.size} maze ({name}).")


def load_url(search: str | None) -> Outcome:
    try:
        state = from_query(search)
        state.maze()  # check the maze edits make a valid maze
        return Outcome(state)
    except (StateError, MazeError) as exc:
        return Outcome(ViewState(), f"This link could not be read ({exc}); showing the default view instead.", True)
