"""The maze panel (left column): pick a level, edit it by clicking, import / export it.

Events: previous / next / random seed and the size filter, clicks on the maze (by the click
mode: move the cheese or the mouse, toggle a wall, set the retarget square), undo edits, remove
the cheese, import a maze JSON file. Callbacks: draw the maze (with the agent's training cheese
region outlined), export it.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from mazewb.app import ids
from mazewb.app import widgets as w
from mazewb.app.figures import legend_items, maze_panel_figure
from mazewb.app.guard import guarded
from mazewb.app.panel import Event, EventContext, Outcome, PageConfig, Panel, click_point, decode_upload, file_name
from mazewb.app.state import MAZE_FIELDS, ViewState, from_slice, parse_int, seed_maze
from mazewb.errors import MazeError, StateError
from mazewb.maze import Maze
from mazewb.maze.geometry import FRAME_PIXELS, pixel_to_square
from mazewb.maze.graph import decision_square

SEED_PREV, SEED_NEXT, SEED_RANDOM, SIZE = "seed-prev", "seed-next", "seed-random", "size"
RESET_EDITS, REMOVE_CHEESE, IMPORT_MAZE = "reset-edits", "remove-cheese", "import-maze"
EXPORT_MAZE, DOWNLOAD_MAZE = "export-maze", "download-maze"
MAZE_INFO, MAZE_KEY, REGION_INFO = "maze-info", "maze-key", "region-info"
MAX_SIZE_SEARCH = 400
MAX_MAZE_JSON = 200_000
SIZES = tuple(range(3, 26, 2))
CLICK_MODES = ("cheese", "mouse", "wall", "target")


# --- pure event handlers -------------------------------------------------------------------------
def parse_size(value: Any) -> int | None:
    """The size filter: None for 'any', else an odd size 3..25 (StateError otherwise)."""
    if value in (None, "any"):
        return None
    size = parse_int(value, "size", 3, 25)
    if size not in SIZES:
        raise StateError(f"size must be 'any' or an odd number from 3 to 25, got {size}")
    return size


def find_seed(start: int, size: int | None, step: int) -> int:
    """The first seed from ``start`` (inclusive) in direction ``step`` whose maze has ``size``."""
    seed = start
    for _ in range(MAX_SIZE_SEARCH):
        if seed < 0:
            raise StateError("no earlier seed with that size")
        if seed > 2**31 - 1:
            raise StateError("no later seed: this is the last level")
        if size is None or seed_maze(seed).size == size:
            return seed
        seed += step
    raise StateError(f"no {size}x{size} maze within {MAX_SIZE_SEARCH} seeds")


def navigate(s: ViewState, how: str, size: Any, rng: random.Random | None = None) -> ViewState:
    """prev / next / random / size: move to another seed (of the chosen size, if any)."""
    want = parse_size(size)
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
    return s.with_seed(seed)


def click_square(s: ViewState, mode: Any, square: tuple[int, int], maze: Maze | None = None) -> Outcome:
    """A click on a maze square, in a click mode (cheese / mouse / wall / target)."""
    maze = s.maze() if maze is None else maze
    square = (int(square[0]), int(square[1]))
    if mode not in CLICK_MODES:
        raise StateError(f"click mode must be one of {', '.join(CLICK_MODES)}")
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
    else:
        edited = maze.with_wall(square, not maze.walls[square[0]][square[1]])
    return Outcome(s.with_maze(edited))


def click(s: ViewState, mode: Any, x: float, y: float) -> Outcome:
    """A click at pixel (x, y) of the 512x512 maze picture, in a click mode."""
    if not (0 <= x <= FRAME_PIXELS and 0 <= y <= FRAME_PIXELS):
        return Outcome(s, "That click is outside the maze picture.", True)
    maze = s.maze()
    return click_square(s, mode, pixel_to_square(y, x, maze.size, FRAME_PIXELS), maze)


def on_maze_click(s: ViewState, data: Any, c: EventContext) -> ViewState | Outcome:
    point = click_point(data)
    if point is None:
        return s
    return click(s, c.get(ids.CLICK_MODE), *point)


def import_maze(s: ViewState, text: str) -> Outcome:
    maze = Maze.from_json(text)
    name = f"seed {maze.seed}" if maze.seed is not None else "an imported maze"
    return Outcome(s.with_imported(maze), f"Imported {maze.size}x{maze.size} maze ({name}).")


def on_import(s: ViewState, contents: Any, c: EventContext) -> ViewState | Outcome:
    if not contents:
        return s
    name = file_name(c.get(IMPORT_MAZE, "filename"), "the file")
    try:
        text = decode_upload(contents, MAX_MAZE_JSON, MazeError).decode("utf-8", errors="replace")
        return import_maze(s, text)
    except MazeError as exc:
        raise MazeError(f"Could not import {name}: {exc}") from None


def _nav(how: str):  # noqa: ANN202
    return lambda s, _v, c: navigate(s, how, c.get(SIZE))


EVENTS = (
    Event(SEED_PREV, "n_clicks", _nav("prev"), states=((SIZE, "value"),)),
    Event(SEED_NEXT, "n_clicks", _nav("next"), states=((SIZE, "value"),)),
    Event(SEED_RANDOM, "n_clicks", _nav("random"), states=((SIZE, "value"),)),
    Event(SIZE, "value", lambda s, v, c: navigate(s, "size", v)),
    Event(ids.MAZE_GRAPH, "clickData", on_maze_click, states=((ids.CLICK_MODE, "value"),), reset=True),
    Event(
        RESET_EDITS,
        "n_clicks",
        lambda s, v, c: Outcome(replace(s, walls=(), cheese="seed", mouse=None), "Edits undone."),
    ),
    Event(REMOVE_CHEESE, "n_clicks", lambda s, v, c: s.with_maze(s.maze().without_cheese())),
    Event(IMPORT_MAZE, "contents", on_import, states=((IMPORT_MAZE, "filename"),), reset=True),
)


# --- layout --------------------------------------------------------------------------------------
def layout(s: ViewState, config: PageConfig) -> html.Div:  # noqa: ARG001
    from mazewb.app.panels.model import agent_selector  # the agent of every view (zoo)

    return html.Div(
        [
            agent_selector(),
            html.Div(
                [
                    w.field("Level seed", w.num(**w.ctl(s, "seed"), min_=0)),
                    html.Button("◀ prev", id=SEED_PREV, title="previous seed (of the chosen size)"),
                    html.Button("next ▶", id=SEED_NEXT, title="next seed (of the chosen size)"),
                    html.Button("random", id=SEED_RANDOM),
                    w.field("Size", w.select(SIZE, [("any", "any")] + [(f"{n}x{n}", n) for n in SIZES], "any", 100)),
                ],
                className="row",
            ),
            html.Div(
                [
                    html.Span("Click to", className="lbl"),
                    w.pills(
                        ids.CLICK_MODE,
                        [
                            ("move cheese", "cheese"),
                            ("move mouse", "mouse"),
                            ("toggle wall", "wall"),
                            ("set retarget square", "target"),
                        ],
                        "cheese",
                    ),
                ],
                className="row",
            ),
            w.graph(ids.MAZE_GRAPH, 552),
            html.Div(id=MAZE_KEY, className="key"),
            html.Div(id=MAZE_INFO, className="info-line"),
            html.Div(id=REGION_INFO, className="info-line region-info"),
            html.Div(
                [
                    w.pills(
                        **w.ctl(s, "view"),
                        choices=[("game frame (512x512)", "frame"), ("agent's view (64x64)", "agent")],
                    ),
                    dcc.Checklist(
                        **{k.rstrip("_"): v for k, v in w.ctl(s, "overlays").items()},
                        options=w.options(
                            [("paths", "paths"), ("decision square", "decision"), ("training region", "region")]
                        ),
                        className="radio-pills",
                        inline=True,
                    ),
                ],
                className="row",
            ),
            html.Div(
                [
                    html.Button("Remove cheese", id=REMOVE_CHEESE),
                    html.Button("Undo all edits", id=RESET_EDITS),
                    html.Button("Export maze JSON", id=EXPORT_MAZE),
                    dcc.Download(id=DOWNLOAD_MAZE),
                ],
                className="row",
            ),
            dcc.Upload(
                id=IMPORT_MAZE,
                children=html.Div(["Import a maze: drop a maze JSON file here or ", html.B("choose one")]),
                className="upload",
                max_size=MAX_MAZE_JSON,
                multiple=False,
            ),
            w.message(ids.message("maze")),
        ],
        className="panel maze-col",
    )


# --- callbacks -----------------------------------------------------------------------------------
FIELDS = (*MAZE_FIELDS, "view", "overlays", "steer.retarget_square")


def region_text(region: int | None, maze: Maze) -> str:
    if region is None:
        return "Training cheese region: not stated in this agent's model card."
    n = max(1, min(region, maze.size))
    return (
        f"This agent was trained with the cheese always in the top-right {region}x{region} squares "
        f"(outlined; {n}x{n} of this maze). Elsewhere the maze is off its training distribution."
    )


def maze_view(wb: Any, maze: Maze, s: ViewState) -> tuple[Any, list, list, str]:
    """The maze panel for one state: the figure, the line under it, the colour key, the region line."""
    lp = wb.policy(s.checkpoint)
    region = lp.region
    shown = region if "region" in s.overlays else None
    fig = maze_panel_figure(
        maze,
        wb.background(maze, s.view),
        show_paths="paths" in s.overlays,
        show_decision="decision" in s.overlays,
        target=s.steer.retarget_square,
        region=shown,
    )
    ds = decision_square(maze)
    origin = f"seed {maze.seed}" if maze.seed is not None else "imported"
    if maze.cheese is None:
        fork = "no cheese"
    elif ds is None:
        fork = "no decision square (the cheese is on the way to the top-right)"
    else:
        fork = f"decision square {ds}"
    info = [
        html.B(f"{maze.size}x{maze.size} maze"),
        f" ({origin}) · cheese {maze.cheese if maze.cheese is not None else 'none'} · mouse {maze.mouse} · {fork}",
    ]
    key = [
        html.Span([html.Span(className="swatch", style={"background": color}), label])
        for color, label in legend_items(maze, shown)
    ]
    return fig, info, key, region_text(region, maze)


def register(app: Dash, wb: Any) -> None:
    msg = ids.message("maze")

    @app.callback(
        Output(ids.MAZE_GRAPH, "figure"),
        Output(MAZE_INFO, "children"),
        Output(MAZE_KEY, "children"),
        Output(REGION_INFO, "children"),
        Output(msg, "children"),
        Output(msg, "className"),
        Input(ids.slice_store("maze"), "data"),
    )
    @guarded(6, 4, 5)
    def draw(data: Any) -> tuple:
        if data is None:
            return (no_update,) * 4 + ("", "msg")
        s = from_slice(data, FIELDS)
        return (*maze_view(wb, s.maze(), s), "", "msg")

    @app.callback(
        Output(DOWNLOAD_MAZE, "data"),
        Output(msg, "children", allow_duplicate=True),
        Output(msg, "className", allow_duplicate=True),
        Input(EXPORT_MAZE, "n_clicks"),
        State(ids.slice_store("maze"), "data"),
        prevent_initial_call=True,
    )
    @guarded(3, 1, 2)
    def export(_: Any, data: Any) -> tuple:
        if data is None:
            return no_update, no_update, no_update
        maze = from_slice(data, FIELDS).maze()
        name = f"maze-seed{maze.seed}.json" if maze.seed is not None else "maze.json"
        return {"content": maze.to_json(), "filename": name, "type": "application/json"}, "", "msg"


PANEL = Panel(name="maze", label="Maze", layout=layout, fields=FIELDS, events=EVENTS, register=register)
