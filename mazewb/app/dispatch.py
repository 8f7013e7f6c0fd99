"""The one callback that owns the view state, built from the panels' declarations.

Its inputs are the URL, every control of the view-state table (``state.FIELDS``) and
every panel's ``Event``s; its outputs are the URL, the whole state (``ids.VIEW``), one store per
panel with the fields it reads, the notice line and every control's value. What happens is
``handle(old_state, trigger, values)``: a pure function, dispatched by trigger to the panels'
handlers, tested without a browser. The stored state is validated on every read; nothing a
browser sends is trusted.

Text and number boxes: Dash's ``dcc.Input`` remembers the last value it sent, not the value the
server gave it since, so after *next*, a preset or *Clear all* changed a box, typing that old
value (or the value shown) and pressing Enter sent nothing. So each box also reports what it
holds on Enter (and on leaving it, when that differs from its value) through a small
client-side callback into the ``ids.TYPED`` store, always as a new event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from dash import Dash, Input, Output, State, ctx, no_update

from mazewb.app import ids
from mazewb.app.guard import explain
from mazewb.app.panel import Event, EventContext, Outcome, Panel
from mazewb.app.state import (
    CONTROL_IDS,
    TYPED_CONTROLS,
    ViewState,
    apply_control,
    check_layers,
    check_state,
    controls_from_state,
    from_query,
    slice_of,
    state_from_dict,
    state_to_dict,
    to_query,
)
from mazewb.errors import CheckpointError, MazewbError, StateError

log = logging.getLogger("mazewb.app")

URL_KEY = f"{ids.URL}.search"
TYPED_KEY = f"{ids.TYPED}.data"

_TYPED_JS = """
function(nSubmit, nBlur, shown) {
    const ns = window.dash_clientside;
    const trig = (ns.callback_context.triggered[0] || {}).prop_id || "";
    const el = document.getElementById(%(id)s);
    if (!el || !trig) { return ns.no_update; }
    const raw = el.value;
    const value = el.type === "number" ? (raw === "" ? null : Number(raw)) : raw;
    if (trig.endsWith(".n_blur") && String(value ?? "") === String(shown ?? "")) { return ns.no_update; }
    return {control: %(id)s, value: value, at: Date.now()};
}
"""


def load_url(search: Any, services: Any = None) -> Outcome:
    """The state a link asks for, or the default view with a message saying why not; a
    checkpoint that does not load falls back to the bundled agent (with a message)."""
    try:
        state = check_state(from_query(search))
    except MazewbError as exc:
        reason = explain(exc)
        return Outcome(ViewState(), f"This link could not be read ({reason}); showing the default view instead.", True)
    if services is not None and state.checkpoint != "default":
        try:
            services.policy(state.checkpoint)
        except CheckpointError as exc:
            reason = explain(exc).rstrip(".")
            msg = f"Checkpoint {state.checkpoint!r} could not be loaded: {reason}. Showing the bundled agent."
            return Outcome(replace(state, checkpoint="default"), msg, True)
    if services is not None:
        try:
            check_layers(state, services.layer_shapes(state.checkpoint))
        except MazewbError as exc:
            return Outcome(
                ViewState(), f"This link could not be read ({explain(exc)}); showing the default view.", True
            )
    return Outcome(state)


class Dispatcher:
    """The panels' events by trigger (``"id.prop"``), and the pure transition ``handle``."""

    def __init__(self, panels: Sequence[Panel]) -> None:
        self.panels = tuple(panels)
        self.events: dict[str, Event] = {}
        for p in self.panels:
            for ev in p.events:
                if ev.key in self.events or ev.component in CONTROL_IDS or ev.key == URL_KEY:
                    raise ValueError(f"event {ev.key} of panel {p.name} is declared twice")
                self.events[ev.key] = ev
        self.state_keys = sorted({f"{c}.{p}" for ev in self.events.values() for c, p in ev.states})

    def open_link(self, search: Any, services: Any = None) -> Outcome:
        """``load_url``, then each panel's ``on_link`` (its message, if any, wins)."""
        out = load_url(search, services)
        for p in self.panels:
            if p.on_link is not None and not out.error:
                got = p.on_link(out.state, services)
                got = got if isinstance(got, Outcome) else Outcome(got)
                check_state(got.state)
                out = got if got.message else Outcome(got.state, out.message, out.error)
        return out

    def handle(self, old: ViewState | None, trigger: str, values: Mapping[str, Any], services: Any = None) -> Outcome:
        """The state after ``trigger`` (``"id.prop"``) fired with the page's ``values`` (by
        ``"id.prop"``). Raises only ``MazewbError`` for bad input (the caller shows it)."""
        if old is None or trigger == URL_KEY:
            return self.open_link(values.get(URL_KEY), services)
        cid, _, prop = trigger.partition(".")
        layers = services.layer_shapes(old.checkpoint) if services is not None else {}
        old = caught_up(old, trigger, values, layers)
        if trigger == TYPED_KEY:
            typed = values.get(TYPED_KEY)
            if not isinstance(typed, dict) or typed.get("control") not in TYPED_CONTROLS:
                raise StateError("the typed value was not understood")
            return Outcome(apply_control(old, typed["control"], typed.get("value"), layers))
        if cid in CONTROL_IDS and prop == "value":
            return Outcome(apply_control(old, cid, values.get(f"{cid}.value"), layers))
        ev = self.events.get(trigger)
        if ev is None:
            raise StateError(f"nothing on this page answers {trigger[:60]!r}")
        context = EventContext({k: values.get(k) for k in self.state_keys}, services)
        out = ev.handle(old, values.get(trigger), context)
        out = out if isinstance(out, Outcome) else Outcome(out)
        check_state(out.state)
        if services is not None:
            if out.state.checkpoint != old.checkpoint:  # another agent: keep the channel in its range
                shapes = services.layer_shapes(out.state.checkpoint)
                if out.state.layer in shapes and out.state.channel >= shapes[out.state.layer][0]:
                    out = replace(out, state=replace(out.state, channel=shapes[out.state.layer][0] - 1))
            else:
                check_layers(out.state, layers)
        return out


def caught_up(
    old: ViewState, trigger: str, values: Mapping[str, Any], layers: Mapping[str, tuple[int, ...]]
) -> ViewState:
    """``old`` with every control the page shows differently applied first (not the trigger's own).

    A control the user changed while an earlier event was still being answered sent its own
    event, and Dash drops the answer of a superseded request: the page (a new tab, a ticked box)
    is then ahead of the stored state, and this event would set the control back. Controls are
    never behind the store: only this callback writes them, together with the state."""
    shown = controls_from_state(old)
    state = old
    for c in CONTROL_IDS:
        key = f"{c}.value"
        value = values.get(key)
        if key == trigger or value is None or _same(value, shown[c]):
            continue
        try:
            state = apply_control(state, c, value, layers)
        except MazewbError:
            continue  # not a value this control can hold: its own event said so; nothing to catch up
    return state


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def register(app: Dash, wb: Any, panels: Sequence[Panel]) -> Dispatcher:
    """Wire the view-state callback for ``panels``; returns its dispatcher."""
    disp = Dispatcher(panels)
    sliced = [p for p in panels if p.fields]
    events = list(disp.events.values())
    inputs = (
        [Input(ids.URL, "search")]
        + [Input(c, "value") for c in CONTROL_IDS]
        + [Input(ids.TYPED, "data")]
        + [Input(ev.component, ev.prop) for ev in events]
    )
    input_keys = [f"{i.component_id}.{i.component_property}" for i in inputs]
    state_keys = disp.state_keys
    resets = [ev for ev in events if ev.reset]
    outputs = (
        [Output(ids.URL, "search"), Output(ids.VIEW, "data")]
        + [Output(ids.slice_store(p.name), "data") for p in sliced]
        + [Output(ids.NOTICE, "children"), Output(ids.NOTICE, "className")]
        + [Output(ev.component, ev.prop) for ev in resets]
        + [Output(c, "value") for c in CONTROL_IDS]
    )
    states = [State(*k.split(".", 1)) for k in state_keys] + [State(ids.VIEW, "data")]

    @app.callback(*outputs, *inputs, *states)
    def on_event(*args: Any) -> tuple:
        values = dict(zip(input_keys + state_keys, args[:-1], strict=True))
        stored = args[-1]
        trigger = next(iter(ctx.triggered_prop_ids), URL_KEY) if ctx.triggered_prop_ids else URL_KEY
        try:
            return respond(disp, wb, sliced, resets, trigger, values, stored)
        except Exception as exc:  # noqa: BLE001 - a bug: logged, the page says so and keeps its view
            notice = explain(exc)
            n_before = 2 + len(sliced)
            n_after = len(resets) + len(CONTROL_IDS)
            return (no_update,) * n_before + (notice, "notice error") + (no_update,) * n_after

    for c in TYPED_CONTROLS:
        app.clientside_callback(
            _TYPED_JS % {"id": json.dumps(c)},
            Output(ids.TYPED, "data", allow_duplicate=True),
            Input(c, "n_submit"),
            Input(c, "n_blur"),
            State(c, "value"),
            prevent_initial_call=True,
        )
    app.mazewb_dispatcher = disp  # type: ignore[attr-defined]
    return disp


def respond(
    disp: Dispatcher,
    wb: Any,
    sliced: Sequence[Panel],
    resets: Sequence[Event],
    trigger: str,
    values: Mapping[str, Any],
    stored: Any,
) -> tuple:
    """The view-state callback's outputs for one trigger (see ``register``)."""
    message, is_error = "", False
    old: ViewState | None = None
    if stored is not None and trigger != URL_KEY:
        try:
            old = check_state(state_from_dict(stored))
        except Exception as exc:  # noqa: BLE001 - a crafted or stale store: start from the link
            message, is_error = f"The page state was not understood ({explain(exc)}); reloaded from the link.", True
            trigger = URL_KEY
    try:
        out = disp.handle(old, trigger, values, wb)
        state = out.state
        message, is_error = (out.message, out.error) if out.message or not message else (message, is_error)
    except Exception as exc:  # noqa: BLE001 - the page shows the reason; the view stays as it was
        message, is_error = explain(exc), True
        state = old or ViewState()
    new_slices = {p.name: slice_of(state, p.fields) for p in sliced}
    old_slices = {p.name: slice_of(old, p.fields) for p in sliced} if old is not None else None
    for p in sliced:
        changed = old_slices is None or old_slices[p.name] != new_slices[p.name]
        if p.prefetch is not None and state.tab == p.name and changed:
            try:
                p.prefetch(wb, state)
            except Exception:  # noqa: BLE001 - the figure callbacks report it
                pass
    store_out = [
        new_slices[p.name] if old_slices is None or old_slices[p.name] != new_slices[p.name] else no_update
        for p in sliced
    ]
    wanted = controls_from_state(state)
    control_out = [
        no_update if _same(values.get(f"{c}.value"), wanted[c]) and not is_error else wanted[c] for c in CONTROL_IDS
    ]
    search = to_query(state)
    current = values.get(URL_KEY)
    return (
        search if search != (current if isinstance(current, str) else "") else no_update,
        state_to_dict(state),
        *store_out,
        message,
        ("notice error" if is_error else "notice info") if message else "notice",
        *[None if ev.key == trigger else no_update for ev in resets],
        *control_out,
    )
