"""Dash callbacks: parse what the user did, call the analysis layer (through ``Workbench``), draw.

One callback (``on_event``) owns the view state: it turns every control change, click, upload
and URL change into a new ``ViewState`` (``mazewb.app.reducer``), writes it to the URL and to a
few small stores. Figure callbacks read only the stores they depend on, compute lazily (only
for the visible tab, only when their inputs changed) and never raise into the page: every
failure becomes a message next to the figure.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
from dataclasses import asdict, replace
from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from mazewb.analysis.cache import LRU
from mazewb.app import reducer, views
from mazewb.app.compute import Workbench
from mazewb.app.figures import legend_items, maze_panel_figure
from mazewb.app.state import (
    StateError,
    SteerSpec,
    ViewState,
    state_from_dict,
    state_to_dict,
    to_query,
)
from mazewb.errors import MazeError
from mazewb.maze import Maze
from mazewb.maze.graph import decision_square
from mazewb.policy import CheckpointError, InterventionError
from mazewb.policy.impala import ImpalaPolicy

log = logging.getLogger(__name__)

USER_ERRORS = (StateError, MazeError, CheckpointError, InterventionError, ValueError)
LAYER_SHAPES_SCALE1 = ImpalaPolicy(scale=1).hook_points()


def explain(exc: BaseException) -> str:
    """A message for the page: the error's own words for bad input, a short note otherwise
    (the traceback goes to the server log, never to the page)."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    log.exception("internal error in a callback", exc_info=exc)
    return f"Something went wrong on the server ({type(exc).__name__}: {exc}). The details are in the server log."


def guarded(n_outputs: int, message_index: int, message_class_index: int | None = None):  # noqa: ANN201
    """Wrap a callback so that any exception becomes a message output; others stay unchanged."""

    def wrap(fn):  # noqa: ANN001, ANN202
        @functools.wraps(fn)
        def inner(*args):  # noqa: ANN002, ANN202
            try:
                return fn(*args)
            except Exception as exc:  # noqa: BLE001
                out: list[Any] = [no_update] * n_outputs
                out[message_index] = explain(exc)
                if message_class_index is not None:
                    out[message_class_index] = "msg error"
                return tuple(out) if n_outputs > 1 else out[0]

        return inner

    return wrap


def _decode_upload(contents: str, limit: int) -> bytes:
    """The bytes of a dcc.Upload data URL (checked against a size limit)."""
    if not isinstance(contents, str) or "," not in contents:
        raise ValueError("the upload did not arrive as a file")
    head, data = contents.split(",", 1)
    if len(data) * 3 // 4 > limit:
        raise ValueError(f"the file is larger than the limit of {limit:,} bytes")
    try:
        return base64.b64decode(data, validate=False)
    except (ValueError, TypeError):
        raise ValueError("the upload is not valid base64 data") from None


def register(app: Dash, wb: Workbench) -> None:  # noqa: C901 - one place that wires the page
    layer_shapes_cache: LRU[str, dict[str, tuple[int, ...]]] = LRU(16)

    def layer_shapes(checkpoint: str) -> dict[str, tuple[int, ...]]:
        try:
            lp = wb.policy(checkpoint)
        except CheckpointError:
            return {k: v for k, v in LAYER_SHAPES_SCALE1.items() if len(v) == 3}
        shapes = layer_shapes_cache.get(lp.key)
        if shapes is None:
            shapes = {k: v for k, v in lp.policy.hook_points().items() if len(v) == 3}
            layer_shapes_cache.put(lp.key, shapes)
        return shapes

    # ------------------------------------------------------------------ the view state
    event_inputs = [
        Input("url", "search"),
        Input("seed-prev", "n_clicks"),
        Input("seed-next", "n_clicks"),
        Input("seed-random", "n_clicks"),
        Input("size", "value"),
        Input("maze-graph", "clickData"),
        Input("reset-edits", "n_clicks"),
        Input("remove-cheese", "n_clicks"),
        Input("import-maze", "contents"),
        Input("ckpt-load", "n_clicks"),
        Input("ckpt-default", "n_clicks"),
        Input("ckpt-upload", "contents"),
        Input("preset-cheese", "n_clicks"),
        Input("preset-top-right", "n_clicks"),
        Input("steer-clear", "n_clicks"),
        Input("rt-clear", "n_clicks"),
        Input("vf-graph", "clickData"),
        Input("heat-graph", "clickData"),
        Input("act-grid-graph", "clickData"),
    ]
    control_inputs = [Input(c, "value") for c in reducer.CONTROL_IDS]
    outputs = [
        Output("url", "search"),
        Output("st-view", "data"),
        Output("st-maze", "data"),
        Output("st-ckpt", "data"),
        Output("st-display", "data"),
        Output("st-behaviour", "data"),
        Output("st-act", "data"),
        Output("st-steer", "data"),
        Output("st-shards", "data"),
        Output("notice", "children"),
        Output("notice", "className"),
        Output("maze-graph", "clickData"),
        Output("import-maze", "contents"),
        Output("ckpt-upload", "contents"),
        Output("vf-graph", "clickData"),
        Output("heat-graph", "clickData"),
        Output("act-grid-graph", "clickData"),
        *[Output(c, "value") for c in reducer.CONTROL_IDS],
    ]
    n_fixed = 17

    def slices(s: ViewState) -> dict[str, Any]:
        maze = s.maze()
        return {
            "st-maze": {"checkpoint": s.checkpoint, "maze": maze.to_json()},
            "st-ckpt": {"checkpoint": s.checkpoint},
            "st-display": {"view": s.view, "overlays": list(s.overlays), "target": s.steer.retarget_square},
            "st-behaviour": {"arrows": s.arrows, "heat": s.heat},
            "st-act": {"layer": s.layer, "channel": s.channel},
            "st-steer": asdict(s.steer),
            "st-shards": {"cheese": list(s.grid_cheese), "top_right": list(s.grid_top_right), "steps": s.grid_steps},
        }

    @app.callback(
        *outputs,
        *event_inputs,
        *control_inputs,
        State("click-mode", "value"),
        State("ckpt-path", "value"),
        State("ckpt-upload", "filename"),
        State("import-maze", "filename"),
        State("st-view", "data"),
    )
    def on_event(*args):  # noqa: ANN002, ANN202
        n_ev = len(event_inputs)
        ev = dict(zip([i.component_id + "." + i.component_property for i in event_inputs], args[:n_ev], strict=True))
        controls = dict(zip(reducer.CONTROL_IDS, args[n_ev : n_ev + len(control_inputs)], strict=True))
        mode, ckpt_path, ckpt_name, maze_name, previous = args[n_ev + len(control_inputs) :]
        trigger = ctx.triggered_id
        old = state_from_dict(previous) if previous else None
        message, is_error = "", False
        try:
            if old is None or trigger == "url":
                result = reducer.load_url(ev["url.search"])
                state, message, is_error = result.state, result.message, result.error
                try:
                    wb.policy(state.checkpoint)
                except CheckpointError as exc:
                    if old is None or state.checkpoint != old.checkpoint:
                        reason = str(exc).rstrip(".")
                        message = (
                            f"Checkpoint {state.checkpoint!r} could not be loaded: {reason}. Showing the bundled agent."
                        )
                        is_error = True
                        state = replace(state, checkpoint="default")
            else:
                state = old
                if trigger in reducer.CONTROL_IDS:
                    state = reducer.apply_control(state, trigger, controls[trigger], layer_shapes(state.checkpoint))
                elif trigger in ("seed-prev", "seed-next", "seed-random"):
                    state = reducer.navigate(state, trigger.split("-")[1], ev["size.value"])
                elif trigger == "size":
                    state = reducer.navigate(state, "size", ev["size.value"])
                elif trigger == "maze-graph":
                    data = ev["maze-graph.clickData"]
                    if data and data.get("points"):
                        point = data["points"][0]
                        result = reducer.click(state, mode, float(point["x"]), float(point["y"]))
                        state, message, is_error = result.state, result.message, result.error
                elif trigger in ("vf-graph", "heat-graph"):
                    data = ev[f"{trigger}.clickData"]
                    if data and data.get("points"):
                        point = data["points"][0]
                        square = (round(float(point["y"])), round(float(point["x"])))
                        result = reducer.click_square(state, mode, square)
                        state, message, is_error = result.state, result.message, result.error
                elif trigger == "act-grid-graph":
                    data = ev["act-grid-graph.clickData"]
                    if data and data.get("points"):
                        channel = data["points"][0].get("customdata")
                        if isinstance(channel, (int, float)) and channel >= 0:
                            state = replace(state, channel=int(channel))
                elif trigger == "reset-edits":
                    state = replace(state, walls=(), cheese="seed", mouse=None)
                    message = "Edits undone."
                elif trigger == "remove-cheese":
                    state = state.with_maze(state.maze().without_cheese())
                elif trigger == "import-maze":
                    contents = ev["import-maze.contents"]
                    if contents:
                        text = _decode_upload(contents, 200_000).decode("utf-8", errors="replace")
                        try:
                            result = reducer.import_maze(state, text)
                        except MazeError as exc:
                            raise MazeError(f"Could not import {maze_name or 'the file'}: {exc}") from None
                        state, message = result.state, result.message
                elif trigger == "ckpt-load":
                    path = (ckpt_path or "").strip()
                    if not path:
                        raise StateError("type the path of a checkpoint file on the server first")
                    lp = wb.policy(f"path:{path}")
                    state = replace(state, checkpoint=lp.id)
                    message = f"Loaded {lp.label}."
                elif trigger == "ckpt-default":
                    lp = wb.policy("default")
                    state = replace(state, checkpoint="default")
                    message = f"Loaded {lp.label}."
                elif trigger == "ckpt-upload":
                    contents = ev["ckpt-upload.contents"]
                    if contents:
                        data = _decode_upload(contents, wb.registry.max_bytes)
                        lp = wb.registry.add_upload(data, ckpt_name or "upload")
                        state = replace(state, checkpoint=lp.id)
                        message = f"Loaded {lp.label}."
                elif trigger == "preset-cheese":
                    state = replace(state, steer=replace(state.steer, cheese_coeff=-1.0), tab="steer")
                elif trigger == "preset-top-right":
                    state = replace(state, steer=replace(state.steer, top_right_coeff=1.0), tab="steer")
                elif trigger == "steer-clear":
                    state = replace(state, steer=SteerSpec(layer=state.steer.layer))
                elif trigger == "rt-clear":
                    state = replace(state, steer=replace(state.steer, retarget_square=None))
            new_slices = slices(state)
        except Exception as exc:  # noqa: BLE001 - the page shows the reason; the view stays as it was
            message, is_error = explain(exc), True
            state = old or ViewState()
            try:
                new_slices = slices(state)
            except Exception:  # noqa: BLE001
                state = ViewState()
                new_slices = slices(state)
        old_slices = slices(old) if old is not None and trigger != "url" else None
        maze_changed = old_slices is None or old_slices["st-maze"] != new_slices["st-maze"]
        if maze_changed and state.tab in ("behaviour", "steer"):
            # start the forward pass now; the figure callbacks' requests arrive a round trip later
            wb.prefetch(state.checkpoint, state.maze(), state.steer if state.tab == "steer" else None)
        store_out = [
            new_slices[k] if old_slices is None or old_slices[k] != new_slices[k] else no_update
            for k in ("st-maze", "st-ckpt", "st-display", "st-behaviour", "st-act", "st-steer", "st-shards")
        ]
        wanted = reducer.controls_from_state(state)
        control_out = [
            no_update if _same(controls.get(c), wanted[c]) and not is_error else wanted[c] for c in reducer.CONTROL_IDS
        ]
        search = to_query(state)
        return (
            search if search != (ev["url.search"] or "") else no_update,
            state_to_dict(state),
            *store_out,
            message,
            ("notice error" if is_error else "notice info") if message else "notice",
            None if trigger == "maze-graph" else no_update,
            None if trigger == "import-maze" else no_update,
            None if trigger == "ckpt-upload" else no_update,
            None if trigger == "vf-graph" else no_update,
            None if trigger == "heat-graph" else no_update,
            None if trigger == "act-grid-graph" else no_update,
            *control_out,
        )

    assert n_fixed + len(reducer.CONTROL_IDS) == len(outputs)

    # ------------------------------------------------------------------ maze panel
    @app.callback(
        Output("maze-graph", "figure"),
        Output("maze-info", "children"),
        Output("maze-key", "children"),
        Output("maze-message", "children"),
        Output("maze-message", "className"),
        Input("st-maze", "data"),
        Input("st-display", "data"),
    )
    @guarded(5, 3, 4)
    def draw_maze(st_maze, st_display):  # noqa: ANN001, ANN202
        if not st_maze or not st_display:
            return no_update, no_update, no_update, "", "msg"
        maze = Maze.from_json(st_maze["maze"])
        fig, info, key = maze_panel(wb, maze, st_display)
        return fig, info, key, "", "msg"

    # ------------------------------------------------------------------ model
    @app.callback(
        Output("model-badge", "children"),
        Output("model-badge", "className"),
        Output("device-badge", "children"),
        Output("untrained-banner", "children"),
        Output("model-card", "children"),
        Output("model-message", "children"),
        Output("model-message", "className"),
        Input("st-ckpt", "data"),
    )
    @guarded(7, 5, 6)
    def show_model(st_maze):  # noqa: ANN001, ANN202
        if not st_maze:
            return (no_update,) * 5 + ("", "msg")
        lp = wb.policy(st_maze["checkpoint"])
        card = lp.card
        badge = f"agent: {lp.label} · scale {lp.policy.scale}"
        banner = (
            html.Div(
                "This agent is UNTRAINED: its weights are random, so its arrows and numbers are noise, "
                "not the behaviour of a maze-solving policy. Load a trained checkpoint on the Model tab.",
                className="banner untrained",
            )
            if lp.untrained
            else None
        )
        rows = [
            html.Tr([html.Td("checkpoint"), html.Td(lp.label)]),
            html.Tr([html.Td("link id"), html.Td(lp.id)]),
            html.Tr([html.Td("device"), html.Td(lp.device)]),
            html.Tr([html.Td("status"), html.Td("UNTRAINED (random weights)" if lp.untrained else "trained")]),
        ]
        for k, v in card.items():
            text = v if isinstance(v, str) else json.dumps(v, indent=1, default=str)
            rows.append(html.Tr([html.Td(k), html.Td(html.Pre(text, style={"margin": 0}) if "\n" in text else text)]))
        details = html.Table(rows, className="card")
        if lp.markdown:
            details = html.Div(
                [
                    dcc.Markdown(lp.markdown.split("\n## Full card")[0], className="model-md"),
                    html.Details([html.Summary("every field of the card"), details]),
                ]
            )
        return (
            badge,
            "badge untrained" if lp.untrained else "badge",
            f"device: {lp.device}",
            banner,
            details,
            "",
            "msg",
        )

    # ------------------------------------------------------------------ exports
    @app.callback(
        Output("download-maze", "data"),
        Input("export-maze", "n_clicks"),
        State("st-maze", "data"),
        prevent_initial_call=True,
    )
    def export_maze(_, st_maze):  # noqa: ANN001, ANN202
        if not st_maze:
            return no_update
        maze = Maze.from_json(st_maze["maze"])
        name = f"maze-seed{maze.seed}.json" if maze.seed is not None else "maze.json"
        return {"content": maze.to_json(), "filename": name, "type": "application/json"}

    app.clientside_callback(
        """
        function(n1, n2) {
            const trig = (window.dash_clientside.callback_context.triggered[0] || {}).prop_id || "";
            if (!trig.startsWith("export-")) { return window.dash_clientside.no_update; }
            const format = trig.startsWith("export-svg") ? "svg" : "png";
            const graphs = Array.from(document.querySelectorAll(".js-plotly-plot"))
                .filter(g => g.offsetParent !== null);
            graphs.forEach((gd, i) => {
                const holder = gd.closest("[id]");
                const name = "mazewb-" + ((holder && holder.id) || ("figure" + i));
                Plotly.downloadImage(gd, {format: format, filename: name, scale: format === "png" ? 2 : 1});
            });
            return "exported " + graphs.length + " figure(s) as " + format;
        }
        """,
        Output("export-dummy", "children"),
        Input("export-png", "n_clicks"),
        Input("export-svg", "n_clicks"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        """
        function(search) { return window.location.origin + window.location.pathname + (search || ""); }
        """,
        Output("share-url", "children"),
        Input("url", "search"),
    )

    views.register(app, wb, guarded)


def maze_panel(wb: Workbench, maze: Maze, display: dict[str, Any]) -> tuple[Any, list, list]:
    """The maze panel for one maze: the figure, the line under it, and the colour key."""
    target = tuple(display["target"]) if display.get("target") else None
    fig = maze_panel_figure(
        maze,
        wb.background(maze, display["view"]),
        show_paths="paths" in display["overlays"],
        show_decision="decision" in display["overlays"],
        target=target,  # type: ignore[arg-type]
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
        for color, label in legend_items(maze)
    ]
    return fig, info, key


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return list(a) == list(b)
    return a == b


__all__ = ["register", "maze_panel"]
