"""What a panel is: its layout, the view-state fields it reads, its events and its callbacks.

A panel module (``mazewb/app/panels/NAME.py``) defines ``PANEL = Panel(...)``:

- ``layout(state, config)``: its components for the first view (layout as data);
- ``fields``: the view-state fields its callbacks read; the view-state callback keeps them
  in the panel's own store (``ids.slice_store(name)``), written only when they changed;
- ``events``: what the user can do in it that changes the view state, each an ``Event``:
  a component property that triggers it and a pure handler ``(state, value, ctx) -> state``
  (or an ``Outcome`` with a message). The one view-state callback dispatches on the trigger;
  handlers are tested without a browser;
- ``register(app, wb)``: its figure callbacks (read its store, draw, never raise into the page).

See docs/app.md for an example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dash import Dash, Input, Output, State, no_update

from mazewb.app import ids
from mazewb.app.guard import guarded
from mazewb.app.state import ViewState, from_slice, slice_of
from mazewb.errors import StateError


@dataclass(frozen=True)
class Outcome:
    """A new state, and a message for the notice line (``error``: shown as an error)."""

    state: ViewState
    message: str = ""
    error: bool = False


class Services(Protocol):
    """What event handlers may ask of the server (the ``Workbench``, or a fake in tests)."""

    def layer_shapes(self, checkpoint: str) -> dict[str, tuple[int, ...]]: ...

    def policy(self, checkpoint: str) -> Any: ...


@dataclass(frozen=True)
class EventContext:
    """The extra page values an event declared (``states``, by ``"id.prop"``) and the server's
    services."""

    states: Mapping[str, Any] = field(default_factory=dict)
    services: Any = None

    def get(self, component: str, prop: str = "value") -> Any:
        return self.states.get(f"{component}.{prop}")


Handler = Callable[[ViewState, Any, EventContext], "ViewState | Outcome"]


@dataclass(frozen=True)
class Event:
    """A component property that changes the view state, and the pure handler that says how.

    ``states``: other page values the handler reads (``(id, prop)``); ``reset``: the property is
    set back to None after each event (clicks, uploads), so that the same value fires again."""

    component: str
    prop: str
    handle: Handler
    states: tuple[tuple[str, str], ...] = ()
    reset: bool = False

    @property
    def key(self) -> str:
        return f"{self.component}.{self.prop}"


@dataclass(frozen=True)
class PageConfig:
    """Server settings the layout shows (e.g. whether checkpoints load by server path)."""

    path_loading: bool = True


@dataclass(frozen=True)
class Panel:
    """One panel of the page (see the module docstring)."""

    name: str
    label: str
    layout: Callable[[ViewState, PageConfig], Any]
    fields: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    register: Callable[[Dash, Any], None] | None = None
    prefetch: Callable[[Any, ViewState], None] | None = None
    """Called (with the workbench and the new state) when this panel's fields changed while it
    is shown: start the work its figure callbacks will ask for a round trip later."""
    on_link: Callable[[ViewState, Any], ViewState | Outcome] | None = None
    """Called (with the state a link asks for and the server's services) when a link is opened:
    may return another state, e.g. the lesson panel opens the step ``?lesson=NAME&step=K`` names."""


def lazy_view(
    app: Dash,
    wb: Any,
    name: str,
    panel: Panel,
    outputs: Sequence[Output],
    draw: Callable[[Any, ViewState], tuple],
    extra_inputs: Sequence[Input] = (),
    key_fields: Sequence[str] | None = None,
) -> None:
    """Register ``draw(loaded_policy, state)`` as a panel's lazy figure callback: it runs only
    while the panel's tab is shown and only when the panel's fields (or ``extra_inputs``)
    changed since it last drew (kept in ``ids.key_store(name)``); ``state`` is the panel's store,
    validated against the view-state table. It returns the values of ``outputs``; any failure
    becomes a message in ``ids.message(name)`` (``draw`` may return two more values, its own
    message and its class, e.g. "msg info"). ``key_fields``: only these of the panel's
    fields decide whether to redraw (default: all)."""
    n = len(outputs) + 3

    @app.callback(
        *outputs,
        Output(ids.message(name), "children"),
        Output(ids.message(name), "className"),
        Output(ids.key_store(name), "data"),
        Input(ids.slice_store(panel.name), "data"),
        Input(ids.TABS, "value"),
        *extra_inputs,
        State(ids.key_store(name), "data"),
    )
    @guarded(n, n - 3, n - 2)
    def show(data: Any, tab: Any, *rest: Any) -> tuple:
        *extra, last = rest
        if data is None or tab != panel.name:
            return (no_update,) * n
        state = from_slice(data, panel.fields)
        key = [slice_of(state, key_fields) if key_fields is not None else data, *extra]
        if key == last:
            return (no_update,) * n
        out = tuple(draw(wb.policy(state.checkpoint), state, *extra))
        if len(out) == len(outputs):
            out = (*out, "", "msg")
        return (*out, key)


def click_point(data: Any) -> tuple[float, float] | None:
    """(x, y) of a Plotly ``clickData`` value, or None when there is no point. Anything that is
    not a click on a point with finite numeric x and y is a StateError."""
    import math

    if data is None:
        return None
    if not isinstance(data, dict):
        raise StateError("the click was not understood (no point data)")
    points = data.get("points")
    if not points:
        return None
    if not isinstance(points, list) or not isinstance(points[0], dict):
        raise StateError("the click was not understood (no point data)")
    point = points[0]
    try:
        x, y = point["x"], point["y"]
    except KeyError:
        raise StateError("the click was not understood (no x and y)") from None
    for v in (x, y):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > 1e6:
            raise StateError("the click was not understood (its coordinates are not finite numbers)")
    return float(x), float(y)


def click_custom(data: Any) -> Any:
    """The ``customdata`` of a Plotly click (None when there is none)."""
    if not isinstance(data, dict) or not isinstance(data.get("points"), list) or not data["points"]:
        return None
    point = data["points"][0]
    return point.get("customdata") if isinstance(point, dict) else None


__all__ = ["Event", "EventContext", "Outcome", "PageConfig", "Panel", "click_point", "lazy_view"]


def decode_upload(contents: Any, limit: int, error: type[Exception] = StateError) -> bytes:
    """The bytes of a dcc.Upload data URL (``error``, a MazewbError, when it is not one or is
    over ``limit`` bytes)."""
    import base64
    import binascii

    if not isinstance(contents, str) or "," not in contents[:300]:
        raise error("the upload did not arrive as a file")
    data = contents.split(",", 1)[1]
    if len(data) * 3 // 4 > limit:
        raise error(f"the file is larger than the limit of {limit:,} bytes")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise error("the upload is not valid base64 data") from None


def file_name(value: Any, default: str) -> str:
    """An upload's file name as the page reports it (printable, at most 120 characters)."""
    if not isinstance(value, str) or not value.strip():
        return default
    return "".join(ch for ch in value if ch.isprintable())[:120] or default
