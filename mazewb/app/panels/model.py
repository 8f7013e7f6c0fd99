"""The Model tab: the loaded agent's model card (and the badges in the top bar: agent, device,
training region), loading another checkpoint by server path or by upload."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from dash import Dash, Input, Output, dcc, html, no_update

from mazewb.app import ids
from mazewb.app import widgets as w
from mazewb.app.guard import guarded
from mazewb.app.panel import Event, EventContext, Outcome, PageConfig, Panel, decode_upload, file_name
from mazewb.app.state import ViewState, from_slice, state_from_dict, to_query
from mazewb.app.zoo import ZooEntry
from mazewb.errors import CheckpointError, StateError

CKPT_PATH, CKPT_LOAD, CKPT_DEFAULT, CKPT_UPLOAD = "ckpt-path", "ckpt-load", "ckpt-default", "ckpt-upload"
CARD, PATH_OFF = "model-card", "ckpt-path-off"
AGENT_SELECT, ZOO_TABLE = "agent-select", "zoo-table"
FIELDS = ("checkpoint",)


def on_load(s: ViewState, _: Any, c: EventContext) -> Outcome:
    path = c.get(CKPT_PATH)
    path = path.strip() if isinstance(path, str) else ""
    if not path:
        raise StateError("type the path of a checkpoint file on the server first")
    if len(path) > 990 or not path.isprintable():
        raise StateError("that is not a file path")
    lp = c.services.policy(f"path:{path}")
    return Outcome(replace(s, checkpoint=lp.id), f"Loaded {lp.label}.")


def on_default(s: ViewState, _: Any, c: EventContext) -> Outcome:
    lp = c.services.policy("default")
    return Outcome(replace(s, checkpoint="default"), f"Loaded {lp.label}.")


def on_upload(s: ViewState, contents: Any, c: EventContext) -> ViewState | Outcome:
    if not contents:
        return s
    registry = c.services.registry
    data = decode_upload(contents, registry.max_bytes, CheckpointError)
    lp = registry.add_upload(data, file_name(c.get(CKPT_UPLOAD, "filename"), "upload"))
    return Outcome(replace(s, checkpoint=lp.id), f"Loaded {lp.label}.")


EVENTS = (
    Event(CKPT_LOAD, "n_clicks", on_load, states=((CKPT_PATH, "value"),)),
    Event(CKPT_DEFAULT, "n_clicks", on_default),
    Event(CKPT_UPLOAD, "contents", on_upload, states=((CKPT_UPLOAD, "filename"),), reset=True),
)


def layout(s: ViewState, config: PageConfig) -> html.Div:  # noqa: ARG001
    paths_off = (
        []
        if config.path_loading
        else [
            html.P(
                "Loading a file by its path on the server is switched off: this server can be reached from "
                "other machines (the operator can allow it with 'mazewb serve --allow-path-loading'). "
                "Upload the checkpoint instead.",
                id=PATH_OFF,
                className="hint",
            )
        ]
    )
    return html.Div(
        [
            html.H3("The zoo: agents trained with different cheese regions"),
            html.Div(id=ZOO_TABLE),
            html.H3("Loaded checkpoint"),
            html.Div(id=CARD),
            html.Div(
                [
                    html.H3("Load another checkpoint"),
                    html.Div(
                        [
                            w.field("File on the server", w.text(CKPT_PATH, "", "/path/to/model.pt", cls="wide")),
                            html.Button("Load", id=CKPT_LOAD, className="primary"),
                            html.Button("Back to the bundled agent", id=CKPT_DEFAULT),
                        ],
                        className="row",
                    ),
                    *paths_off,
                    dcc.Upload(
                        id=CKPT_UPLOAD,
                        children=html.Div(
                            [
                                "Or upload a checkpoint (.pt / .pth, up to 64 MB): drop it here or ",
                                html.B("choose a file"),
                            ]
                        ),
                        className="upload",
                        max_size=64 * 2**20,
                        multiple=False,
                    ),
                    html.P(
                        "Files are read with mazewb's own checkpoint reader: tensors and plain data, never arbitrary "
                        "pickled code. Langosco et al.'s .pth files and mazewb checkpoints are accepted.",
                        className="hint",
                    ),
                ],
                className="section",
            ),
            w.message(ids.message("model")),
        ],
        className="tab-content",
    )


def region_badge(region: int | None) -> str:
    if region is None:
        return "trained with: cheese region not stated"
    return f"trained with the cheese in the top-right {region}x{region}"


def agent_selector() -> html.Div:
    """The compact agent selector shown above the maze on every tab: the control of the view
    state's checkpoint (options: the server's zoo, and the current checkpoint)."""
    return html.Div(
        [
            html.Span("Agent", className="lbl"),
            dcc.Dropdown(
                id=AGENT_SELECT,
                options=[{"label": "default", "value": "default"}],
                value="default",
                clearable=False,
                style={"width": "340px"},
            ),
            html.Span("the zoo is on the Model tab", className="hint"),
        ],
        className="row agent-row",
    )


def agent_options(entries: list[ZooEntry], current: str, current_label: str) -> list[dict]:
    """The selector's options: every zoo agent, and the current checkpoint when it is not one."""
    options = [{"label": e.label, "value": e.checkpoint, "disabled": bool(e.error)} for e in entries]
    if current not in {e.checkpoint for e in entries}:
        options.append({"label": current_label, "value": current})
    return options


def _fmt(value: Any, pattern: str) -> str:
    return "not stated" if value is None else pattern.format(value)


def zoo_table(entries: list[ZooEntry], s: ViewState) -> html.Div:
    """The zoo as a table; "load" is a link to this same view under that agent."""
    head = html.Tr(
        [html.Th(h) for h in ("agent", "training cheese region", "in-distribution P(cheese)", "samples", "")]
    )
    rows = []
    for e in entries:
        if e.checkpoint == s.checkpoint:
            action: Any = html.B("loaded")
        elif e.error:
            action = html.Span(f"unreadable: {e.error}", className="hint")
        else:
            action = dcc.Link("load", href=to_query(replace(s, checkpoint=e.checkpoint)) or "?", className="zoo-load")
        region = "not stated" if e.region is None else f"top-right {e.region}x{e.region}"
        name = e.name + (" (UNTRAINED)" if e.untrained else "")
        rows.append(
            html.Tr(
                [
                    html.Td(name),
                    html.Td(region),
                    html.Td(_fmt(e.p_cheese, "{:.3f}")),
                    html.Td(_fmt(e.samples, "{:,}")),
                    html.Td(action),
                ],
                id=f"zoo-row-{e.name}",
            )
        )
    note = (
        html.P(
            "Only the default agent is installed: put agents trained on other cheese regions "
            "(mazewb checkpoints with a model card stating cheese_region) in the zoo folder, "
            "or start the server with 'mazewb serve --zoo DIR'.",
            className="hint",
        )
        if len(entries) < 2
        else html.P("The Compare agents tab shows one maze under two of them, and the region curve.", className="hint")
    )
    return html.Div([html.Table([head, *rows], className="outcomes zoo"), note])


def register(app: Dash, wb: Any) -> None:
    msg = ids.message("model")

    @app.callback(Output(AGENT_SELECT, "options"), Input(ids.slice_store("model"), "data"))
    def show_selector(data: Any) -> Any:
        # options only: the value is the checkpoint field's control, set by the view-state
        # callback (so setting it never fires a second view-state event)
        try:
            checkpoint = from_slice(data, FIELDS).checkpoint
        except Exception:  # noqa: BLE001 - a crafted store: keep the selector as it is
            return no_update
        try:
            label = wb.policy(checkpoint).label
        except Exception:  # noqa: BLE001 - the card callback reports it
            label = checkpoint
        return agent_options(wb.registry.zoo.entries(), checkpoint, label)

    @app.callback(
        Output(ZOO_TABLE, "children"),
        Input(ids.VIEW, "data"),
        Input(ids.TABS, "value"),
    )
    @guarded(1, 0)
    def show_zoo(data: Any, tab: Any) -> Any:
        if data is None or tab != "model":  # its links carry the whole view: drawn while shown
            return no_update
        s = state_from_dict(data)
        return zoo_table(wb.registry.zoo.entries(), s)

    @app.callback(
        Output(ids.MODEL_BADGE, "children"),
        Output(ids.MODEL_BADGE, "className"),
        Output(ids.DEVICE_BADGE, "children"),
        Output(ids.REGION_BADGE, "children"),
        Output(ids.UNTRAINED_BANNER, "children"),
        Output(CARD, "children"),
        Output(msg, "children"),
        Output(msg, "className"),
        Input(ids.slice_store("model"), "data"),
    )
    @guarded(8, 6, 7)
    def show(data: Any) -> tuple:
        if data is None:
            return (no_update,) * 6 + ("", "msg")
        lp = wb.policy(from_slice(data, FIELDS).checkpoint)
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
            html.Tr([html.Td("training cheese region"), html.Td(region_badge(lp.region))]),
        ]
        for k, v in lp.card.items():
            text = v if isinstance(v, str) else json.dumps(v, indent=1, default=str)
            rows.append(html.Tr([html.Td(k), html.Td(html.Pre(text, style={"margin": 0}) if "\n" in text else text)]))
        details: Any = html.Table(rows, className="card")
        if lp.markdown:
            details = html.Div(
                [
                    dcc.Markdown(lp.markdown.split("\n## Full card")[0], className="model-md"),
                    html.Details([html.Summary("every field of the card"), details]),
                ]
            )
        return (
            f"agent: {lp.label} · scale {lp.policy.scale}",
            "badge untrained" if lp.untrained else "badge",
            f"device: {lp.device}",
            region_badge(lp.region),
            banner,
            details,
            "",
            "msg",
        )


PANEL = Panel(name="model", label="Model", layout=layout, fields=FIELDS, events=EVENTS, register=register)
